//! Who acts: a signed-in user in a role, or the system itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Staff,
    Admin,
    /// Validators, workers and schedulers. Never a signed-in person.
    System,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Customer, Role::Staff, Role::Admin, Role::System];
    /// The roles a person can hold.
    pub const PEOPLE: [Role; 3] = [Role::Customer, Role::Staff, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Staff => "staff",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }

    /// Staff and admins work tickets; admins additionally run the system.
    pub fn works_tickets(self) -> bool {
        matches!(self, Role::Staff | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: expected customer, staff or admin"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub role: Role,
}

impl Actor {
    pub fn user(user_id: Uuid, role: Role) -> Actor {
        Actor {
            user_id: Some(user_id),
            role,
        }
    }

    pub const SYSTEM: Actor = Actor {
        user_id: None,
        role: Role::System,
    };
}
