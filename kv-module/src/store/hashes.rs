//! [`KvHashes`]: Redis hashes (a key holding field → value pairs) on any
//! store, reached through [`KvStore::hashes`](crate::KvStore::hashes).

use async_trait::async_trait;

use crate::error::Result;
use crate::store::Ttl;

/// Hashes: one key holding a map of fields to raw values, with Redis's
/// semantics on every backend. Reached as `store.hashes()`.
///
/// Keys are caller keys (the store prefixes them) and take part in
/// [`keys`](crate::KvStore::keys), [`delete`](crate::KvStore::delete),
/// [`expire`](crate::KvStore::expire), [`ttl`](crate::KvStore::ttl) and
/// [`persist`](crate::KvStore::persist) like any other key.
///
/// # Contract
///
/// | method | Redis | missing key | reply |
/// |---|---|---|---|
/// | [`set`](Self::set) | `HSET k f v` | created, persistent | whether the field is new |
/// | [`set_many`](Self::set_many) | `HSET k f v …` (+ `PEXPIRE`/`PERSIST`, in one script) | created | number of new fields |
/// | [`get`](Self::get) | `HGET` | `None` | the value or `None` |
/// | [`get_many`](Self::get_many) | `HMGET` | all `None` | in the order asked |
/// | [`get_all`](Self::get_all) | `HGETALL` | empty | every pair, in no set order |
/// | [`delete`](Self::delete) | `HDEL` | 0 | fields removed; the key vanishes with its last field |
/// | [`incr_by`](Self::incr_by) | `HINCRBY` | created | the new value; a missing field counts as 0 |
/// | [`exists`](Self::exists) | `HEXISTS` | `false` | |
/// | [`len`](Self::len) | `HLEN` | 0 | |
///
/// * Writing a field keeps the key's expiry (only
///   [`set_many`](Self::set_many) with `Some(ttl)` changes it).
/// * Every method on a key holding another type is
///   [`KvError::WrongType`](crate::KvError::WrongType) naming the store
///   and key, and changes nothing.
/// * [`incr_by`](Self::incr_by) on a field that is not a decimal `i64` is
///   [`KvError::NotAnInteger`](crate::KvError::NotAnInteger), past `i64`
///   [`KvError::Overflow`](crate::KvError::Overflow); nothing changes.
/// * Each call is one command (or one script), so it is atomic on every
///   topology: all the fields of a hash live in its key's slot.
/// * Fields are UTF-8 text; a field that is not (written by another
///   client) reads back with its invalid bytes replaced by U+FFFD.
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvStore, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("profiles", "app"));
/// let hashes = store.hashes();
/// assert!(hashes.set("user:1", "name", b"Ada").await?);
/// assert_eq!(hashes.incr_by("user:1", "logins", 1).await?, 1);
/// assert_eq!(hashes.get("user:1", "name").await?.as_deref(), Some(&b"Ada"[..]));
/// assert_eq!(hashes.len("user:1").await?, 2);
/// assert_eq!(hashes.delete("user:1", &["name", "logins"]).await?, 2);
/// assert!(!store.exists("user:1").await?, "an empty hash vanishes");
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait KvHashes: Send + Sync {
    /// The name of the store these operations belong to (for errors).
    fn store_name(&self) -> &str;

    /// Sets `field` of the hash at `key` (`HSET`); returns whether the
    /// field is new.
    async fn set(&self, key: &str, field: &str, value: &[u8]) -> Result<bool>;

    /// Sets every `(field, value)` of the hash at `key` in one atomic step
    /// (`HSET` with many pairs; a field listed twice takes its last value)
    /// and returns how many fields are new. With `ttl` `Some`, the key's
    /// expiry is set (`Ttl::After`) or removed (`Ttl::Never`) in the same
    /// step (one script running `HSET` then `PEXPIRE`/`PERSIST`, which
    /// changes nothing when `HSET` fails); with `None` it is
    /// kept. An empty batch changes nothing (not even the expiry) and
    /// sends nothing.
    async fn set_many(&self, key: &str, fields: &[(&str, &[u8])], ttl: Option<Ttl>) -> Result<u64>;

    /// The value of `field` (`HGET`), `None` when the field or the key is
    /// missing.
    async fn get(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>>;

    /// The values of `fields`, in order, `None` for missing ones (`HMGET`);
    /// an empty list sends nothing.
    async fn get_many(&self, key: &str, fields: &[&str]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Every `(field, value)` of the hash (`HGETALL`), in no set order;
    /// empty for a missing key.
    async fn get_all(&self, key: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// Removes `fields` (`HDEL`); returns how many existed. The key
    /// vanishes with its last field. An empty list sends nothing.
    async fn delete(&self, key: &str, fields: &[&str]) -> Result<u64>;

    /// Adds `delta` to the integer in `field` (`HINCRBY`; a missing field
    /// or key counts as 0) and returns the new value.
    async fn incr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64>;

    /// Whether `field` exists (`HEXISTS`).
    async fn exists(&self, key: &str, field: &str) -> Result<bool>;

    /// Number of fields (`HLEN`); 0 for a missing key.
    async fn len(&self, key: &str) -> Result<u64>;
}
