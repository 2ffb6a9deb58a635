//! The identities of the desk's records, one type each: a ticket's id
//! cannot be passed where a cluster's is expected. Each is a UUID in the
//! database, the API and URLs.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
            sqlx::Type,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, random id.
            pub fn new() -> $name {
                $name(Uuid::new_v4())
            }

            pub const fn from_uuid(uuid: Uuid) -> $name {
                $name(uuid)
            }

            pub fn uuid(self) -> Uuid {
                self.0
            }

            /// The id that is nobody's: what a customer without a
            /// subscription is scoped to, so they see nothing.
            pub const fn nil() -> $name {
                $name(Uuid::nil())
            }
        }

        impl Default for $name {
            fn default() -> $name {
                $name::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> $name {
                $name(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl PartialEq<Uuid> for $name {
            fn eq(&self, other: &Uuid) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<$name, uuid::Error> {
                Uuid::parse_str(text.trim()).map($name)
            }
        }
    };
}

id_type!(
    /// A restore request.
    TicketId
);
id_type!(
    /// A restore job: one per approved ticket.
    JobId
);
id_type!(
    /// A database cluster, a source or one a restore made.
    ClusterId
);
id_type!(
    /// A person who signs in.
    UserId
);
id_type!(
    /// A customer account.
    SubscriptionId
);
id_type!(
    /// A place notices are posted to: a signed webhook or a team chat.
    EndpointId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_write_as_their_uuid() {
        let uuid = Uuid::from_u128(42);
        let ticket = TicketId::from(uuid);
        assert_eq!(ticket.to_string(), uuid.to_string());
        assert_eq!(ticket.to_string().parse::<TicketId>().unwrap(), ticket);
        assert_eq!(
            serde_json::to_string(&ticket).unwrap(),
            format!("\"{uuid}\"")
        );
        assert_ne!(TicketId::new(), TicketId::new());
        assert!("nope".parse::<ClusterId>().is_err());
    }
}
