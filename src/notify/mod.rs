//! Email: composing notices from templates, and delivering the outbox.

pub mod compose;
