//! Argon2id password hashes. Hashing is deliberately slow, so it runs off
//! the async threads.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords need at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("hashing the password failed: {0}")]
    Hashing(String),
}

pub const MIN_PASSWORD_CHARS: usize = 4;

/// A PHC string: `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
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
