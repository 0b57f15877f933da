//! The HTTP handlers, one file per resource.

pub mod auth;
pub mod health;
pub mod metrics;
pub mod session;
pub mod users;
