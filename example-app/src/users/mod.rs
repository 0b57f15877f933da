//! Users: the model and its SQLite repository.

mod model;
mod repository;

pub use model::{
    MAX_NAME_CHARS, NewUser, PublicUser, User, UserPatch, validate_email, validate_name,
};
pub use repository::{UserRepository, UsersError};
