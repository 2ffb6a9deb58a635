//! Who acts: a signed-in user in a role, or the system itself.

use super::ids::UserId;

string_enum! {
    /// What someone may do: a person's role, or the desk's own.
    pub enum Role ("role") {
        Customer = "customer",
        Staff = "staff",
        Admin = "admin",
        /// Validators, workers and schedulers. Never a signed-in person.
        System = "system",
    }
}

impl Role {
    /// The roles a person can hold.
    pub const PEOPLE: [Role; 3] = [Role::Customer, Role::Staff, Role::Admin];

    /// Staff and admins work tickets; admins additionally run the system.
    pub fn works_tickets(self) -> bool {
        matches!(self, Role::Staff | Role::Admin)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub role: Role,
}

impl Actor {
    pub fn user(user_id: UserId, role: Role) -> Actor {
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
