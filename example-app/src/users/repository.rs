//! [`UserRepository`]: users in SQLite.

use rusqlite::{OptionalExtension, params};

use super::model::{NewUser, User, UserPatch};
use crate::db::Database;

/// What can go wrong with the users table.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// Another user has this email.
    #[error("a user with this email already exists")]
    DuplicateEmail,
    /// No user has this id.
    #[error("no user {0}")]
    NotFound(i64),
    /// The database failed.
    #[error("database error")]
    Database(#[from] rusqlite::Error),
}

/// The users table.
#[derive(Clone)]
pub struct UserRepository {
    db: Database,
}

fn map_unique(e: rusqlite::Error) -> UsersError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            UsersError::DuplicateEmail
        }
        _ => UsersError::Database(e),
    }
}

impl UserRepository {
    /// The repository over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Inserts a user.
    pub async fn create(&self, new: NewUser) -> Result<User, UsersError> {
        self.db
            .run(move |c| {
                c.query_row(
                    "INSERT INTO users (name, email) VALUES (?1, ?2) RETURNING id, name, email",
                    params![new.name.trim(), new.email],
                    |r| {
                        Ok(User {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            email: r.get(2)?,
                        })
                    },
                )
            })
            .await
            .map_err(map_unique)
    }

    /// The user `id`, if any.
    pub async fn get(&self, id: i64) -> Result<Option<User>, UsersError> {
        Ok(self
            .db
            .run(move |c| {
                c.query_row(
                    "SELECT id, name, email FROM users WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok(User {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            email: r.get(2)?,
                        })
                    },
                )
                .optional()
            })
            .await?)
    }

    /// Applies `patch`; [`UsersError::NotFound`] when there is no such user.
    pub async fn update(&self, id: i64, patch: UserPatch) -> Result<User, UsersError> {
        let updated = self
            .db
            .run(move |c| {
                c.query_row(
                    "UPDATE users SET name = COALESCE(?2, name), email = COALESCE(?3, email)
                     WHERE id = ?1 RETURNING id, name, email",
                    params![id, patch.name.as_deref().map(str::trim), patch.email],
                    |r| {
                        Ok(User {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            email: r.get(2)?,
                        })
                    },
                )
                .optional()
            })
            .await
            .map_err(map_unique)?;
        updated.ok_or(UsersError::NotFound(id))
    }

    /// Deletes the user; whether it existed.
    pub async fn delete(&self, id: i64) -> Result<bool, UsersError> {
        Ok(self
            .db
            .run(move |c| c.execute("DELETE FROM users WHERE id = ?1", params![id]))
            .await?
            > 0)
    }
}

/// The cache-aside component's view of the users table.
impl kv_module::cache_aside::Repository for UserRepository {
    type Key = i64;
    type Value = User;
    type New = NewUser;
    type Update = UserPatch;
    type Error = UsersError;

    async fn create(&self, new: NewUser) -> Result<(i64, User), UsersError> {
        let user = UserRepository::create(self, new).await?;
        Ok((user.id, user))
    }

    async fn load(&self, id: &i64) -> Result<Option<User>, UsersError> {
        self.get(*id).await
    }

    async fn update(&self, id: &i64, patch: UserPatch) -> Result<User, UsersError> {
        UserRepository::update(self, *id, patch).await
    }

    async fn delete(&self, id: &i64) -> Result<bool, UsersError> {
        UserRepository::delete(self, *id).await
    }
}
