//! The desk's secret key, and what is derived from it rather than stored:
//! endpoint signing secrets, and the one-click verdict links of emails.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::ids::{EndpointId, TicketId};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `message` under `key`, in hex.
pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The key secrets are derived from.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    pub fn new(text: &str) -> SecretKey {
        SecretKey(text.as_bytes().to_vec())
    }

    /// A fresh random key, as text.
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        hex::encode(bytes)
    }

    /// The secret of `version` of endpoint `id`: the same every time it is
    /// derived, so it need not be stored; a new version after a rotation.
    pub fn endpoint_secret(&self, id: EndpointId, version: i64) -> String {
        let derived = hmac_hex(
            &self.0,
            format!("endpoint {id} secret v{version}").as_bytes(),
        );
        format!("whsec_{derived}")
    }

    /// The token of a ticket's one-click verdict link. Only the emailed
    /// link carries it; it works until a verdict is given.
    pub fn verdict_token(&self, ticket_id: TicketId) -> String {
        hmac_hex(&self.0, format!("ticket {ticket_id} verdict").as_bytes())[..40].to_string()
    }

    /// Whether `token` is the verdict token of `ticket_id`, compared in
    /// constant time.
    pub fn verdict_token_matches(&self, ticket_id: TicketId, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.verdict_token(ticket_id);
        expected.len() == token.len() && bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_derived_again_the_same_and_changes_with_its_version() {
        let key = SecretKey::new("desk key");
        let id = EndpointId::new();
        assert_eq!(key.endpoint_secret(id, 1), key.endpoint_secret(id, 1));
        assert_ne!(key.endpoint_secret(id, 1), key.endpoint_secret(id, 2));
        assert_ne!(
            key.endpoint_secret(id, 1),
            SecretKey::new("other").endpoint_secret(id, 1)
        );
        assert!(key.endpoint_secret(id, 1).starts_with("whsec_"));
    }

    #[test]
    fn a_verdict_token_is_the_tickets_own() {
        let key = SecretKey::new("desk key");
        let ticket = TicketId::new();
        let token = key.verdict_token(ticket);
        assert!(key.verdict_token_matches(ticket, &token));
        assert!(!key.verdict_token_matches(TicketId::new(), &token));
        assert!(!key.verdict_token_matches(ticket, &token[..39]));
        assert!(!SecretKey::new("other").verdict_token_matches(ticket, &token));
    }
}
