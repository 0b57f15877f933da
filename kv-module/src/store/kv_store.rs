//! [`KvStore`]: the contract every backend implements.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::store::{
    KeyTtl, KvHashes, KvLists, KvSets, KvSortedSets, KvTransactions, Script, ScriptValue, Ttl,
    Unsupported,
};

/// A key-value store: the contract shared by the Redis and in-memory
/// backends (and any backend an application adds).
///
/// The trait is object safe and is normally held as `Arc<dyn KvStore>`.
/// It works on raw bytes; the typed (serde JSON) helpers `get`, `set`,
/// `set_if_absent`, `get_many` and `set_many` live in
/// [`KvStoreExt`](crate::KvStoreExt), implemented for every store.
///
/// # Keys and prefixes
///
/// Every store has a prefix. The key stored in the backend is
/// `{prefix}:{key}`; with an empty prefix it is `key` as given. Callers
/// always use their own keys: [`keys`](Self::keys) returns keys with the
/// prefix removed, and a store never sees keys outside its prefix (a store
/// with prefix `app` does not see `application:x` nor unprefixed keys).
///
/// # Semantics
///
/// * Reading a missing or expired key is `Ok(None)`, never an error.
/// * Expiry has millisecond precision; an expired key is invisible at once.
/// * Batch operations ([`delete_keys`](Self::delete_keys),
///   [`get_many_bytes`](Self::get_many_bytes),
///   [`set_many_bytes`](Self::set_many_bytes)) are one round trip each (on
///   a cluster, one per slot, sent concurrently).
/// * Errors carry the store name and key; see [`KvError`](crate::KvError).
///
/// # Atomicity, on one server and on a Redis Cluster
///
/// A Redis Cluster spreads keys over hash slots (see
/// [`key_slot`](crate::store::key_slot)); keys sharing a hash tag
/// (`user:{42}:a`, `user:{42}:b`) share a slot.
///
/// | operation | one server, memory | Redis Cluster |
/// |---|---|---|
/// | single-key operations, `incr_by`, `set_bytes_if_absent` | atomic | atomic |
/// | [`incr_by_with_ttl`](Self::incr_by_with_ttl) | each increment atomic, the expiry set at creation (memory: all under one lock) | the same |
/// | [`run_script`](Self::run_script) | atomic | atomic when all keys share a slot; otherwise [`KvError::CrossSlot`](crate::KvError::CrossSlot) before anything is sent |
/// | [`set_many_bytes`](Self::set_many_bytes) | atomic (one `MULTI`) | atomic per slot: one `MULTI` per slot, sent concurrently |
/// | [`get_many_bytes`](Self::get_many_bytes) | one `MGET` | one `MGET` per slot, concurrently; each part a snapshot of its slot |
/// | [`delete_keys`](Self::delete_keys) | one `UNLINK` | one `UNLINK` per slot, concurrently |
/// | [`keys`](Self::keys) | `SCAN` | `SCAN` of every primary; a key moving during a resharding may be missed |
/// | data-type operations (one key each) | atomic | atomic |
/// | [`KvTransactions::run`](crate::KvTransactions::run) | atomic, all or nothing | atomic when all keys share a slot; otherwise [`KvError::CrossSlot`](crate::KvError::CrossSlot) before anything is sent |
///
/// Put one hash tag in the keys of a batch that must land together.
///
/// # Data types
///
/// Beside strings, a store holds hashes, lists, sets and sorted sets, each
/// behind a small trait of its own reached through an accessor
/// ([`hashes`](Self::hashes), [`lists`](Self::lists), [`sets`](Self::sets),
/// [`sorted_sets`](Self::sorted_sets)), and runs all-or-nothing batches
/// over all of them ([`transactions`](Self::transactions)). Each trait
/// documents its contract (Redis's semantics, reply orders, atomicity).
/// Whatever the type, a key takes part in `keys`, `exists`, `delete`,
/// `delete_keys`, `expire`, `ttl` and `persist`; a key of one type used as
/// another is [`KvError::WrongType`](crate::KvError::WrongType) (except
/// that `set_bytes` replaces any type, and `get_many_bytes` reads a
/// collection as missing, as `SET` and `MGET` do); an empty collection
/// vanishes.
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvStore, KvStoreExt, MemoryStore, Ttl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("demo", "app"));
/// store.set("user:1", &"Ada", Ttl::secs(60)).await?;
/// let name: Option<String> = store.get("user:1").await?;
/// assert_eq!(name.as_deref(), Some("Ada"));
/// assert_eq!(store.keys("user:*").await?, vec!["user:1".to_string()]);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The store's name (its service name), used in errors and logs.
    fn name(&self) -> &str;

    /// The configured prefix (without the `:` separator); may be empty.
    fn prefix(&self) -> &str;

    /// The raw bytes at `key`, or `None` when missing or expired.
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Stores raw bytes at `key` with the given expiry, replacing any value
    /// and any previous expiry.
    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()>;

    /// Stores raw bytes only if `key` does not exist (`SET NX`); returns
    /// whether it was set.
    async fn set_bytes_if_absent(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool>;

    /// The raw values of `keys`, in order, `None` for missing ones (`MGET`,
    /// one round trip; an empty batch makes none).
    async fn get_many_bytes(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Stores every `(key, value, ttl)` entry in one atomic round trip
    /// (`MULTI` of `SET`s; on a Redis Cluster one per hash slot, each
    /// atomic); an empty batch makes none.
    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> Result<()>;

    /// Deletes `key`; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Deletes every key of the batch in one round trip; returns how many
    /// existed. An empty batch is a no-op.
    async fn delete_keys(&self, keys: &[&str]) -> Result<u64>;

    /// The keys matching a Redis glob `pattern` (relative to the prefix),
    /// with the prefix removed and without duplicates, in no set order.
    ///
    /// Uses `SCAN`, never `KEYS`, so it does not block the server; it still
    /// walks the whole database, so keep it off hot paths.
    async fn keys(&self, pattern: &str) -> Result<Vec<String>>;

    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Sets the expiry of an existing key; returns whether the key exists.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// The expiry state of `key`: missing, persistent, or remaining time.
    async fn ttl(&self, key: &str) -> Result<KeyTtl>;

    /// Removes the expiry of `key`; returns whether an expiry was removed.
    async fn persist(&self, key: &str) -> Result<bool>;

    /// Atomically adds `delta` to the integer at `key` (a missing key counts
    /// as 0) and returns the new value. The key keeps its expiry. A value
    /// that is not a decimal `i64` (as `set` of an integer stores it) is
    /// [`KvError::NotAnInteger`](crate::KvError::NotAnInteger) and an
    /// overflow is [`KvError::Overflow`](crate::KvError::Overflow); in both
    /// cases nothing changes.
    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64>;

    /// [`incr_by`](Self::incr_by), and `ttl` for the key when it has no
    /// expiry (it is new, or was written without one), in one round trip;
    /// returns the new value and the key's expiry after the call (exactly
    /// `ttl` when the call set it). A counter made this way has its expiry
    /// from the moment it exists, and later increments never push it back:
    /// a fixed window whose clock is the store's. Errors are those of
    /// `incr_by`, and then nothing changes; a zero `ttl` or one above
    /// [`MAX_TTL`](crate::store::MAX_TTL) is
    /// [`KvError::InvalidArgument`](crate::KvError::InvalidArgument).
    ///
    /// Redis sends `INCRBY`, `PEXPIRE key ttl NX` and `PTTL` in one
    /// pipeline (cheaper for the server than a `MULTI` or a script, and
    /// than creating the key first with `SET … PX … NX`): each increment
    /// is atomic, and `PEXPIRE … NX` gives the key its expiry when it has
    /// none (it is new, or was written without one) and never re-arms
    /// it. The pipeline is one write of a few dozen bytes, which the
    /// server runs as it comes; only a connection lost between `INCRBY`
    /// and `PEXPIRE` (the pipeline read in two parts) can leave a counter
    /// without expiry, and the next call on the key gives it one. When
    /// `INCRBY` fails on a key that had no expiry, the expiry that
    /// `PEXPIRE … NX` gave it is taken back (`PERSIST`, a second round
    /// trip), so a failed call changes nothing. `PEXPIRE … NX` needs
    /// Redis 7.0 or later: an older server fails every call, saying so
    /// (after `INCRBY` has counted).
    /// The memory backend does it all under its lock. The default
    /// implementation, for stores that do not override it, runs one script
    /// through [`run_script`](Self::run_script) (its errors are script
    /// errors).
    async fn incr_by_with_ttl(
        &self,
        key: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<(i64, KeyTtl)> {
        crate::store::incr_with_ttl::by_script(self, key, delta, ttl).await
    }

    /// Runs `script` as one atomic step: its Lua on Redis (`EVALSHA`, loaded
    /// on `NOSCRIPT`), its Rust twin under the database lock in memory.
    /// `keys` are caller keys (the store prefixes them; the script sees
    /// stored keys); `args` are passed as given. A script error is
    /// [`KvError::Backend`](crate::KvError::Backend).
    ///
    /// `keys` must hold every key the script touches, all in one Redis
    /// Cluster slot (one hash tag, [`SlotTag`](crate::store::SlotTag)): a
    /// cluster refuses anything else, and so does the memory backend for a
    /// key the script was not given.
    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;

    /// The store's hashes ([`KvHashes`]): `store.hashes().set(key, field,
    /// value)`.
    ///
    /// Both backends provide every data type. The defaults of these
    /// accessors (for stores written before they existed) fail every call
    /// with [`KvError::Unsupported`](crate::KvError::Unsupported), so a
    /// store that wraps another must forward all five to it.
    fn hashes(&self) -> &dyn KvHashes {
        &Unsupported
    }

    /// The store's sets ([`KvSets`]): `store.sets().add(key, members)`.
    fn sets(&self) -> &dyn KvSets {
        &Unsupported
    }

    /// The store's sorted sets ([`KvSortedSets`]):
    /// `store.sorted_sets().add(key, &[(score, member)])`.
    fn sorted_sets(&self) -> &dyn KvSortedSets {
        &Unsupported
    }

    /// The store's lists ([`KvLists`]), blocking pops included:
    /// `store.lists().push(key, End::Back, values)`.
    fn lists(&self) -> &dyn KvLists {
        &Unsupported
    }

    /// The store's transactions ([`KvTransactions`]): all-or-nothing
    /// batches over every type (`store.transactions().run(&tx)`) and
    /// compare-and-set `update`.
    fn transactions(&self) -> &dyn KvTransactions {
        &Unsupported
    }

    /// Releases the store's resources (connections, background tasks).
    /// Operations after `close` fail with
    /// [`KvError::Unavailable`](crate::KvError::Unavailable).
    async fn close(&self);
}

impl std::fmt::Debug for dyn KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("name", &self.name())
            .field("prefix", &self.prefix())
            .finish_non_exhaustive()
    }
}
