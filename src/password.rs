//! Passwords: the rules for a new one (NIST SP 800-63B: long enough, not a
//! known common one, not made of the account's own name) and Argon2id
//! hashes. Hashing is deliberately slow, so it runs off the async threads.

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords need at least {MIN_HASHED_CHARS} characters")]
    TooShort,
    #[error("hashing the password failed: {0}")]
    Hashing(String),
}

/// The shortest password a person may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: enough for any passphrase, short of a hashing burden.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// The shortest anything is hashed at all (the demo's seeded passwords).
const MIN_HASHED_CHARS: usize = 4;

/// Why a new password is refused, in words for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("A password has at least {MIN_PASSWORD_CHARS} characters; a few words make a good one")]
    TooShort,
    #[error("A password has at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("That password is one of the most common ones and easily guessed: choose another")]
    Common,
    #[error("That password repeats a few characters over and over: choose another")]
    Repetitive,
    #[error("A password must not contain the account's email name: choose another")]
    ContainsAccountName,
}

fn common() -> &'static HashSet<&'static str> {
    static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();
    COMMON.get_or_init(|| {
        include_str!("common-passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Checks a password a person chose for the account `email`.
pub fn check_new(password: &str, email: &str) -> Result<(), WeakPassword> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(WeakPassword::TooLong);
    }
    let lower = password.to_lowercase();
    // A common word dressed with digits and signs ("sunshine2024!") is as
    // common as the word.
    let core =
        lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ');
    if common().contains(lower.as_str()) || (core.chars().count() >= 4 && common().contains(core)) {
        return Err(WeakPassword::Common);
    }
    let symbols: Vec<char> = lower.chars().collect();
    let repeats = (1..=4).any(|unit| {
        symbols.len().is_multiple_of(unit)
            && symbols.chunks(unit).all(|chunk| chunk == &symbols[..unit])
    });
    if repeats {
        return Err(WeakPassword::Repetitive);
    }
    let name = email.split('@').next().unwrap_or_default().to_lowercase();
    if name.chars().count() >= 4 && lower.contains(&name) {
        return Err(WeakPassword::ContainsAccountName);
    }
    Ok(())
}

/// A PHC string: `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_HASHED_CHARS {
        return Err(PasswordError::TooShort);
    }
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hashing(e.to_string()))?
}

/// True when `password` matches the stored hash. A malformed hash never matches.
pub async fn verify(password: &str, stored_hash: &str) -> bool {
    let password = password.to_string();
    let stored_hash = stored_hash.to_string();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), stored_hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::{WeakPassword, check_new};

    #[test]
    fn new_passwords_follow_the_rules() {
        let email = "alice.liddell@contoso.example";
        for (password, expected) in [
            ("correct horse battery staple", Ok(())),
            ("Tr0ub4dor&3-extended", Ok(())),
            ("short", Err(WeakPassword::TooShort)),
            ("elevenchars", Err(WeakPassword::TooShort)),
            ("qwerty123456", Err(WeakPassword::Common)),
            ("QWERTY123456", Err(WeakPassword::Common)),
            ("sunshine2024!", Err(WeakPassword::Common)),
            ("!!password123", Err(WeakPassword::Common)),
            ("aaaaaaaaaaaa", Err(WeakPassword::Repetitive)),
            ("abcabcabcabc", Err(WeakPassword::Repetitive)),
            ("alice.liddell-2026", Err(WeakPassword::ContainsAccountName)),
        ] {
            assert_eq!(check_new(password, email), expected, "{password:?}");
        }
        assert_eq!(
            check_new(&"x1".repeat(600), email),
            Err(WeakPassword::TooLong)
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let a = super::hash("correct horse").await.unwrap();
        let b = super::hash("correct horse").await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(super::verify("correct horse", &a).await);
        assert!(!super::verify("wrong horse", &a).await);
        assert!(!super::verify("correct horse", "garbage").await);
    }
}
