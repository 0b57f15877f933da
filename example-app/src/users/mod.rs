//! Users: the model and its SQLite repository.

mod model;
mod repository;

pub use model::{NewUser, User, UserPatch, validate};
pub use repository::{UserRepository, UsersError};
