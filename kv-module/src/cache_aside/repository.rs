//! [`Repository`]: the application's system of record, as the cache sees
//! it.

use std::fmt::Display;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The application's database (or any other source of truth) for one kind
/// of record, implemented once by the application and wrapped by a
/// [`KvCachedRepository`](super::KvCachedRepository).
///
/// Implement the methods as `async fn`s; their futures must be `Send` (a
/// load runs on its own tokio task, shared by every concurrent miss).
/// Errors are the application's own type and reach the callers unchanged.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use kv_module::cache_aside::Repository;
///
/// #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
/// struct User { id: u64, name: String }
///
/// /// What `POST /users` takes.
/// struct NewUser { name: String }
///
/// /// What `PUT /users/{id}` may change.
/// struct UserPatch { name: Option<String> }
///
/// #[derive(Debug, thiserror::Error)]
/// enum DbError {
///     #[error("no user {0}")]
///     NoSuchUser(u64),
/// }
///
/// struct Users { rows: Mutex<HashMap<u64, User>> }
///
/// impl Repository for Users {
///     type Key = u64;
///     type Value = User;
///     type New = NewUser;
///     type Update = UserPatch;
///     type Error = DbError;
///
///     async fn load(&self, id: &u64) -> Result<Option<User>, DbError> {
///         Ok(self.rows.lock().unwrap().get(id).cloned())
///     }
///
///     async fn create(&self, new: NewUser) -> Result<(u64, User), DbError> {
///         let mut rows = self.rows.lock().unwrap();
///         let id = rows.keys().max().map_or(1, |max| max + 1);
///         let user = User { id, name: new.name };
///         rows.insert(id, user.clone());
///         Ok((id, user))
///     }
///
///     async fn update(&self, id: &u64, patch: UserPatch) -> Result<User, DbError> {
///         let mut rows = self.rows.lock().unwrap();
///         let user = rows.get_mut(id).ok_or(DbError::NoSuchUser(*id))?;
///         if let Some(name) = patch.name {
///             user.name = name;
///         }
///         Ok(user.clone())
///     }
///
///     async fn delete(&self, id: &u64) -> Result<bool, DbError> {
///         Ok(self.rows.lock().unwrap().remove(id).is_some())
///     }
/// }
/// ```
pub trait Repository: Send + Sync + 'static {
    /// What identifies a record. Its `Display` form names the cache entry
    /// (`{key_prefix}:{key}`), so two different keys must display
    /// differently.
    type Key: Clone + Display + Send + Sync + 'static;
    /// A record, cached as JSON.
    type Value: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// What a create takes: the fields of a new record (its key is usually
    /// assigned by the database).
    type New: Send + 'static;
    /// What an update takes: often `Self::Value` itself, or a patch that
    /// the database applies atomically (`UPDATE … RETURNING`).
    type Update: Send + 'static;
    /// The application's error, passed through unchanged.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The record at `key`, or `None` when there is none (cached as "not
    /// found" for the negative TTL).
    fn load(
        &self,
        key: &Self::Key,
    ) -> impl Future<Output = Result<Option<Self::Value>, Self::Error>> + Send;

    /// Inserts a new record; returns its key and the record as stored.
    /// Reached through [`KvCachedRepository::create`](super::KvCachedRepository::create),
    /// which then clears whatever the cache remembers of the key (a
    /// cached "not found" above all).
    fn create(
        &self,
        new: Self::New,
    ) -> impl Future<Output = Result<(Self::Key, Self::Value), Self::Error>> + Send;

    /// Applies `update` to the record at `key` and returns the record as
    /// stored (what write-through caches). A missing record is the
    /// application's error to report.
    fn update(
        &self,
        key: &Self::Key,
        update: Self::Update,
    ) -> impl Future<Output = Result<Self::Value, Self::Error>> + Send;

    /// Deletes the record at `key`; returns whether it existed.
    fn delete(&self, key: &Self::Key) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}
