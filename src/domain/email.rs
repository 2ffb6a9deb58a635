//! Email addresses, parsed once where they come in: trimmed, lowercase,
//! with a local part and a dotted domain, no space or control character.
//! Everything past the edge holds an `Email`, so it never checks again.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An email address that passed `Email::parse`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[serde(try_from = "String", into = "String")]
#[sqlx(transparent)]
pub struct Email(String);

/// Why text is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Enter an email address such as ana@example.com")]
pub struct NotAnEmail;

impl Email {
    pub fn parse(text: &str) -> Result<Email, NotAnEmail> {
        let email = text.trim().to_lowercase();
        let well_formed = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if well_formed {
            Ok(Email(email))
        } else {
            Err(NotAnEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What comes before the `@`: a default display name, and what a
    /// password must not contain.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl TryFrom<String> for Email {
    type Error = NotAnEmail;
    fn try_from(text: String) -> Result<Email, NotAnEmail> {
        Email::parse(&text)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl std::ops::Deref for Email {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq<str> for Email {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Email {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Email> for String {
    fn eq(&self, other: &Email) -> bool {
        *self == other.0
    }
}

impl PartialEq<Email> for &str {
    fn eq(&self, other: &Email) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_once_into_one_form() {
        let email = Email::parse("  Ana.Lee@Example.COM ").unwrap();
        assert_eq!(email, "ana.lee@example.com");
        assert_eq!(email.local_part(), "ana.lee");
        for bad in [
            "",
            "ana",
            "@example.com",
            "ana@example",
            "ana@@example.com",
            "a na@x.io",
            "ana@x.io\0",
            "ana@.io",
            "ana@io.",
        ] {
            assert_eq!(Email::parse(bad), Err(NotAnEmail), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
        let json = serde_json::to_string(&email).unwrap();
        assert_eq!(json, "\"ana.lee@example.com\"");
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }
}
