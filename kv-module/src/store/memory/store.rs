//! [`MemoryStore`]: the in-memory implementation of [`KvStore`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::config::MemoryConfig;
use super::core::Core;
use super::glob::glob_match;
use super::script_ops::DbOps;
use super::server::{Db, DbIndex, MemoryServer};
use super::value::Value;
use crate::error::{KvError, Result};
use crate::store::{
    KeySpace, KeyTtl, KvHashes, KvLists, KvSets, KvSortedSets, KvStore, KvTransactions, Script,
    ScriptValue, Ttl, duration_millis,
};

/// A [`KvStore`] on a [`MemoryServer`] (service type `kvstore_memory`):
/// the same semantics as [`RedisStore`](crate::RedisStore) on one
/// `redis-server`, in process.
///
/// Every operation takes its database's lock once, for a few map
/// operations, so each one (batches included) is atomic, as a Redis
/// command or `MULTI` is. [`keys`](KvStore::keys) is the exception in cost:
/// it walks the whole database under the lock, so keep it off hot paths,
/// as with `SCAN` on Redis.
///
/// Stores opened on one server share its databases: two stores with
/// different prefixes on one database see only their own keys, and an
/// unprefixed store on that database sees everything.
///
/// ```
/// use kv_module::{KvStore, KvStoreExt, MemoryConfig, MemoryServer, MemoryStore, Ttl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let server = MemoryServer::new();
/// let users = MemoryStore::open("users", &server, MemoryConfig::new().with_prefix("users"))?;
/// let sessions =
///     MemoryStore::open("sessions", &server, MemoryConfig::new().with_prefix("sessions"))?;
///
/// users.set("42", "Ada", Ttl::Never).await?; // stored as `users:42`
/// sessions.set("42", "token", Ttl::secs(3600)).await?; // stored as `sessions:42`
///
/// assert_eq!(users.get::<String>("42").await?.as_deref(), Some("Ada"));
/// assert_eq!(sessions.keys("*").await?, vec!["42".to_string()]);
/// assert_eq!(server.len(0), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    pub(super) core: Core,
}

impl MemoryStore {
    /// A store named `name` on a fresh [`MemoryServer`] of its own
    /// (database 0), with keys stored as `{prefix}:{key}` (as given for an
    /// empty prefix).
    ///
    /// The server's purge task runs on the current Tokio runtime, if any;
    /// see [`MemoryServer`].
    pub fn new(name: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            core: Core {
                name: Arc::from(name.into()),
                space: KeySpace::new(prefix),
                server: MemoryServer::new(),
                db: DbIndex::default(),
                closed: AtomicBool::new(false),
            },
        }
    }

    /// A store named `name` on database `config.db` of `server`, with
    /// prefix `config.prefix`.
    ///
    /// Fails with [`KvError::Config`] when `config.db` is not below
    /// [`MemoryServer::DATABASES`].
    pub fn open(
        name: impl Into<String>,
        server: &MemoryServer,
        config: MemoryConfig,
    ) -> Result<Self> {
        let name: Arc<str> = Arc::from(name.into());
        let Some(db) = DbIndex::new(config.db) else {
            return Err(KvError::Config {
                store: name,
                reason: format!(
                    "db must be between 0 and {}, got {}",
                    MemoryServer::DATABASES - 1,
                    config.db
                ),
            });
        };
        Ok(Self {
            core: Core {
                name,
                space: KeySpace::new(config.prefix),
                server: server.clone(),
                db,
                closed: AtomicBool::new(false),
            },
        })
    }

    /// The server this store's data lives on.
    pub fn server(&self) -> &MemoryServer {
        &self.core.server
    }

    /// Shared by `set_bytes` and `set_bytes_if_absent` (`SET [NX] [PX]`).
    fn write(&self, key: &str, value: &[u8], ttl: Ttl, only_if_absent: bool) -> Result<bool> {
        let millis = ttl.to_millis(&self.core.name, key)?;
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let value = Value::String(Arc::from(value));
        let replaced = {
            let mut db = self.core.lock();
            let now = Instant::now();
            if only_if_absent && db.get(&stored, now).is_some() {
                return Ok(false);
            }
            let expires_at = self.core.deadline(now, millis, key)?;
            db.insert(stored, value, expires_at, now)
        };
        // Freed here, not under the lock.
        drop(replaced);
        Ok(true)
    }
}

#[async_trait]
impl KvStore for MemoryStore {
    fn name(&self) -> &str {
        &self.core.name
    }

    fn prefix(&self) -> &str {
        self.core.space.prefix()
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let value = match self.core.lock().get(&stored, Instant::now()) {
            None => None,
            Some(entry) => match entry.value.as_string() {
                Some(bytes) => Some(Arc::clone(bytes)),
                None => return Err(self.core.wrong_type(key)),
            },
        };
        Ok(value.map(|value| value.to_vec()))
    }

    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.write(key, value, ttl, false).map(drop)
    }

    async fn set_bytes_if_absent(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        self.write(key, value, ttl, true)
    }

    async fn get_many_bytes(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.core.ensure_open()?;
        let stored: Vec<String> = keys
            .iter()
            .map(|key| self.core.space.stored_key(key))
            .collect();
        let values: Vec<Option<Arc<[u8]>>> = {
            let db = self.core.lock();
            let now = Instant::now();
            stored
                .iter()
                // `MGET` reads a key of another type as missing.
                .map(|key| {
                    db.get(key, now)
                        .and_then(|entry| entry.value.as_string().map(Arc::clone))
                })
                .collect()
        };
        Ok(values
            .into_iter()
            .map(|value| value.map(|value| value.to_vec()))
            .collect())
    }

    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // Every TTL is checked before anything is written: the batch is
        // all or nothing, like the Redis store's `MULTI`, which is never
        // sent when one of its `SET`s is invalid.
        let mut batch = Vec::with_capacity(entries.len());
        for (key, value, ttl) in entries {
            let millis = ttl.to_millis(&self.core.name, key)?;
            batch.push(BatchEntry {
                key,
                stored: self.core.space.stored_key(key),
                value: Value::String(Arc::from(*value)),
                millis,
                expires_at: None,
            });
        }
        self.core.ensure_open()?;
        let mut db = self.core.lock();
        let now = Instant::now();
        for entry in &mut batch {
            entry.expires_at = self.core.deadline(now, entry.millis, entry.key)?;
        }
        for entry in batch {
            db.insert(entry.stored, entry.value, entry.expires_at, now);
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let removed = self.core.lock().remove(&stored, Instant::now());
        Ok(removed.is_some())
    }

    async fn delete_keys(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.core.ensure_open()?;
        let stored: Vec<String> = keys
            .iter()
            .map(|key| self.core.space.stored_key(key))
            .collect();
        let mut db = self.core.lock();
        let now = Instant::now();
        // In order, so a key listed twice counts once, as with `DEL k k`.
        let removed = stored
            .iter()
            .filter(|key| db.remove(key, now).is_some())
            .count();
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        self.core.ensure_open()?;
        // Matched against whole stored keys with the escaped prefix in
        // front, exactly the pattern the Redis store sends to `SCAN`.
        let pattern = self.core.space.stored_pattern(pattern);
        let db = self.core.lock();
        let now = Instant::now();
        Ok(db
            .keys(now)
            .filter_map(|stored| {
                let key = self.core.space.caller_key(stored)?;
                glob_match(&pattern, stored).then(|| key.to_owned())
            })
            .collect())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        Ok(self.core.lock().get(&stored, Instant::now()).is_some())
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let millis = duration_millis(ttl, &self.core.name, key)?;
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let mut db = self.core.lock();
        let now = Instant::now();
        let expires_at = self.core.deadline(now, Some(millis), key)?;
        Ok(db.set_expiry(&stored, expires_at, now).is_some())
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let db = self.core.lock();
        let now = Instant::now();
        Ok(remaining_ttl(
            db.get(&stored, now).map(|entry| entry.expires_at()),
            now,
        ))
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let previous = self.core.lock().set_expiry(&stored, None, Instant::now());
        Ok(matches!(previous, Some(Some(_))))
    }

    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let outcome = incr_locked(&mut self.core.lock(), stored, delta, Instant::now());
        outcome.map_err(|error| self.incr_error(key, error))
    }

    async fn incr_by_with_ttl(
        &self,
        key: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<(i64, KeyTtl)> {
        let millis = duration_millis(ttl, &self.core.name, key)?;
        self.core.ensure_open()?;
        let stored = self.core.space.stored_key(key);
        let (outcome, left) = {
            let mut db = self.core.lock();
            let now = Instant::now();
            let expires_at = self.core.deadline(now, Some(millis), key)?;
            let outcome = incr_locked(&mut db, stored.clone(), delta, now);
            // A failed increment changes nothing, expiry included.
            let left = match db.get(&stored, now).map(|entry| entry.expires_at()) {
                Some(None) if outcome.is_ok() => {
                    db.set_expiry(&stored, expires_at, now);
                    KeyTtl::ExpiresIn(Duration::from_millis(millis))
                }
                expiry => remaining_ttl(expiry, now),
            };
            (outcome, left)
        };
        outcome
            .map(|value| (value, left))
            .map_err(|error| self.incr_error(key, error))
    }

    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue> {
        self.core.ensure_open()?;
        let stored: Vec<String> = keys.iter().map(|k| self.core.space.stored_key(k)).collect();
        let outcome = {
            let mut db = self.core.lock();
            let mut ops = DbOps {
                db: &mut db,
                now: Instant::now(),
            };
            script.run_memory(&mut ops, &stored, args)
        };
        outcome.map_err(|message| KvError::Backend {
            store: self.core.name.clone(),
            op: "script",
            key: keys.first().map(|k| (*k).to_owned()),
            source: message.into(),
        })
    }

    async fn ping(&self) -> Result<()> {
        self.core.ensure_open()
    }

    fn hashes(&self) -> &dyn KvHashes {
        &self.core
    }

    fn transactions(&self) -> &dyn KvTransactions {
        &self.core
    }

    fn lists(&self) -> &dyn KvLists {
        &self.core
    }

    fn sorted_sets(&self) -> &dyn KvSortedSets {
        &self.core
    }

    fn sets(&self) -> &dyn KvSets {
        &self.core
    }

    /// Marks the store closed; later operations fail with
    /// [`KvError::Unavailable`]. The data stays on the server for the other
    /// stores sharing it, and the server (with its purge task) is freed
    /// when its last store or handle is dropped.
    async fn close(&self) {
        self.core.closed.store(true, Ordering::Release);
    }
}

/// One entry of a `set_many_bytes` batch, checked and ready to write.
struct BatchEntry<'a> {
    key: &'a str,
    stored: String,
    value: Value,
    millis: Option<u64>,
    expires_at: Option<Instant>,
}

/// Why an `incr_by` changed nothing; made into a [`KvError`] after the lock
/// is released.
enum IncrError {
    NotAnInteger,
    Overflow,
    WrongType,
}

impl MemoryStore {
    /// The [`KvError`] of a failed increment of the caller's `key`.
    fn incr_error(&self, key: &str, error: IncrError) -> KvError {
        let (store, key) = (self.core.name.clone(), key.to_owned());
        match error {
            IncrError::NotAnInteger => KvError::NotAnInteger { store, key },
            IncrError::Overflow => KvError::Overflow { store, key },
            IncrError::WrongType => KvError::WrongType { store, key },
        }
    }
}

/// `INCRBY` on a locked database: the value must be an integer as Redis
/// reads one, and the key keeps its expiry; a missing (or expired) key
/// counts as 0 and is created without expiry.
fn incr_locked(
    db: &mut Db,
    stored: String,
    delta: i64,
    now: Instant,
) -> std::result::Result<i64, IncrError> {
    match db.value_mut(&stored, now) {
        Some(Value::String(value)) => match parse_integer(value) {
            None => Err(IncrError::NotAnInteger),
            Some(current) => match current.checked_add(delta) {
                None => Err(IncrError::Overflow),
                Some(next) => {
                    *value = Arc::from(format_integer(next).as_bytes());
                    Ok(next)
                }
            },
        },
        Some(_) => Err(IncrError::WrongType),
        None => {
            let value = Value::String(Arc::from(format_integer(delta).as_bytes()));
            db.insert(stored, value, None, now);
            Ok(delta)
        }
    }
}

/// What `PTTL` answers for a key of expiry `expiry` (`None`: missing):
/// whole milliseconds, truncated; zero at the very deadline, where Redis
/// still has the key too.
fn remaining_ttl(expiry: Option<Option<Instant>>, now: Instant) -> KeyTtl {
    match expiry {
        None => KeyTtl::Missing,
        Some(None) => KeyTtl::Persistent,
        Some(Some(at)) => {
            let remaining = at.saturating_duration_since(now).as_millis();
            KeyTtl::ExpiresIn(Duration::from_millis(
                u64::try_from(remaining).unwrap_or(u64::MAX),
            ))
        }
    }
}

/// Reads an `i64` the way Redis's `string2ll` does, which is what `INCRBY`
/// accepts: an optional `-`, then digits without leading zeros (`0` alone
/// is fine, `-0` is not), nothing else (no `+`, no spaces), at most 20
/// bytes, within `i64`.
pub(super) fn parse_integer(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0_i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// An `i64` in decimal ASCII, as Redis stores a counter, without a heap
/// allocation.
pub(super) fn format_integer(n: i64) -> IntegerText {
    let mut text = IntegerText {
        buf: [0; 20],
        start: 20,
    };
    let mut rest = n.unsigned_abs();
    loop {
        text.start -= 1;
        // `rest % 10` is a single digit.
        text.buf[text.start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        text.start -= 1;
        text.buf[text.start] = b'-';
    }
    text
}

/// The decimal text of an `i64`: at most 19 digits and a sign.
pub(super) struct IntegerText {
    buf: [u8; 20],
    start: usize,
}

impl IntegerText {
    pub(super) fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KvStoreExt;

    fn open(server: &MemoryServer, name: &str, db: u8, prefix: &str) -> MemoryStore {
        let config = MemoryConfig::new().with_db(db).with_prefix(prefix);
        match MemoryStore::open(name, server, config) {
            Ok(store) => store,
            Err(e) => panic!("open {name}: {e}"),
        }
    }

    fn sorted(mut keys: Vec<String>) -> Vec<String> {
        keys.sort();
        keys
    }

    #[test]
    fn integers_parse_as_redis_string2ll() {
        let valid: &[(&str, i64)] = &[
            ("0", 0),
            ("1", 1),
            ("-1", -1),
            ("42", 42),
            ("-99", -99),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (text, value) in valid {
            assert_eq!(parse_integer(text.as_bytes()), Some(*value), "{text:?}");
        }
        let invalid = [
            "",
            "-",
            "-0",
            "00",
            "007",
            "+1",
            " 1",
            "1 ",
            "1.5",
            "1e3",
            "0x10",
            "abc",
            "٣",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "99999999999999999999",
            "123456789012345678901",
        ];
        for text in invalid {
            assert_eq!(parse_integer(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(parse_integer(b"1\0"), None);
    }

    #[test]
    fn integers_format_as_decimal_ascii() {
        for n in [0, 1, -1, 10, -10, 1234, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(format_integer(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    #[tokio::test]
    async fn open_rejects_databases_past_15() {
        let server = MemoryServer::new();
        let config = MemoryConfig::new().with_db(16);
        let err = MemoryStore::open("bad_db", &server, config).unwrap_err();
        assert!(matches!(err, KvError::Config { .. }), "{err:?}");
        assert_eq!(err.store(), "bad_db");
        assert!(err.to_string().contains("16"), "{err}");
        let store = open(&server, "last_db", 15, "");
        store.set("k", &1, Ttl::Never).await.unwrap();
        assert_eq!(server.len(15), 1);
    }

    #[tokio::test]
    async fn new_uses_a_fresh_server_and_reports_its_settings() {
        let a = MemoryStore::new("a", "app");
        let b = MemoryStore::new("b", "app");
        a.set("k", &1, Ttl::Never).await.unwrap();
        assert_eq!(b.get::<i32>("k").await.unwrap(), None, "separate servers");
        assert_eq!(a.name(), "a");
        assert_eq!(a.prefix(), "app");
        assert_eq!(a.server().len(0), 1);
        let debug = format!("{a:?}");
        assert!(debug.contains("MemoryStore"), "{debug}");
    }

    #[tokio::test]
    async fn prefixes_share_a_database_without_crossing() {
        let server = MemoryServer::new();
        let users = open(&server, "users", 0, "users");
        let user = open(&server, "user", 0, "user");
        let bare = open(&server, "bare", 0, "");
        users.set("1", "u", Ttl::Never).await.unwrap();
        user.set("s:1", "x", Ttl::Never).await.unwrap();
        bare.set("users", "b", Ttl::Never).await.unwrap();

        assert_eq!(users.keys("*").await.unwrap(), vec!["1".to_string()]);
        assert_eq!(user.keys("*").await.unwrap(), vec!["s:1".to_string()]);
        assert_eq!(
            sorted(bare.keys("*").await.unwrap()),
            vec!["user:s:1", "users", "users:1"]
        );
        assert_eq!(
            bare.keys("users:*").await.unwrap(),
            vec!["users:1".to_string()]
        );
        // The stored key is reachable through the bare store, and a write
        // there is seen through the prefixed one.
        bare.set("users:2", "via bare", Ttl::Never).await.unwrap();
        assert_eq!(
            users.get::<String>("2").await.unwrap().as_deref(),
            Some("via bare")
        );
        assert!(bare.delete("users:1").await.unwrap());
        assert!(!users.exists("1").await.unwrap());
        assert_eq!(server.len(0), 3);
    }

    #[tokio::test]
    async fn databases_are_isolated() {
        let server = MemoryServer::new();
        let db0 = open(&server, "db0", 0, "app");
        let db1 = open(&server, "db1", 1, "app");
        db0.set("k", &0, Ttl::Never).await.unwrap();
        assert_eq!(db1.get::<i32>("k").await.unwrap(), None);
        assert_eq!(db1.incr_by("k", 5).await.unwrap(), 5);
        assert_eq!(db0.get::<i32>("k").await.unwrap(), Some(0));
        assert_eq!(db1.keys("*").await.unwrap(), vec!["k".to_string()]);
        assert_eq!((server.len(0), server.len(1), server.len(2)), (1, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_follows_redis_to_the_millisecond() {
        let store = MemoryStore::new("ttl", "app");
        store.set("k", &1, Ttl::millis(100)).await.unwrap();
        assert_eq!(
            store.ttl("k").await.unwrap(),
            KeyTtl::ExpiresIn(Duration::from_millis(100))
        );
        tokio::time::advance(Duration::from_micros(40_500)).await;
        assert_eq!(
            store.ttl("k").await.unwrap(),
            KeyTtl::ExpiresIn(Duration::from_millis(59)),
            "truncated to whole milliseconds, like PTTL"
        );
        tokio::time::advance(Duration::from_micros(59_500)).await;
        // At the deadline itself the key is still there (Redis expires a
        // key once the clock is past its deadline).
        assert_eq!(
            store.ttl("k").await.unwrap(),
            KeyTtl::ExpiresIn(Duration::ZERO)
        );
        assert!(store.exists("k").await.unwrap());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(store.ttl("k").await.unwrap(), KeyTtl::Missing);
        assert_eq!(store.get_bytes("k").await.unwrap(), None);
        assert!(store.keys("*").await.unwrap().is_empty());
        assert_eq!(store.get_many_bytes(&["k"]).await.unwrap(), vec![None]);
        assert!(!store.expire("k", Duration::from_secs(1)).await.unwrap());
        assert!(!store.persist("k").await.unwrap());
        assert!(store.set_if_absent("k", &2, Ttl::Never).await.unwrap());
        assert_eq!(store.ttl("k").await.unwrap(), KeyTtl::Persistent);
    }

    #[tokio::test(start_paused = true)]
    async fn sub_millisecond_ttls_round_up() {
        let store = MemoryStore::new("ttl", "");
        store
            .set_bytes("k", b"v", Ttl::After(Duration::from_micros(1)))
            .await
            .unwrap();
        assert_eq!(
            store.ttl("k").await.unwrap(),
            KeyTtl::ExpiresIn(Duration::from_millis(1))
        );
        assert!(
            store
                .expire("k", Duration::from_micros(1500))
                .await
                .unwrap()
        );
        assert_eq!(
            store.ttl("k").await.unwrap(),
            KeyTtl::ExpiresIn(Duration::from_millis(2))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn set_and_incr_by_handle_expiry_like_redis() {
        let store = MemoryStore::new("counter", "app");
        store.set("n", &10, Ttl::secs(10)).await.unwrap();
        assert_eq!(store.incr_by("n", 5).await.unwrap(), 15);
        assert_eq!(
            store.ttl("n").await.unwrap(),
            KeyTtl::ExpiresIn(Duration::from_secs(10)),
            "incr_by keeps the expiry"
        );
        assert_eq!(
            store.get_bytes("n").await.unwrap().as_deref(),
            Some(&b"15"[..])
        );
        // `set` replaces the expiry, `Ttl::Never` removes it.
        store.set("n", &1, Ttl::Never).await.unwrap();
        assert_eq!(store.ttl("n").await.unwrap(), KeyTtl::Persistent);
        // An expired counter restarts at the delta, without expiry.
        store.set("e", &100, Ttl::millis(5)).await.unwrap();
        tokio::time::advance(Duration::from_millis(6)).await;
        assert_eq!(store.incr_by("e", -3).await.unwrap(), -3);
        assert_eq!(store.ttl("e").await.unwrap(), KeyTtl::Persistent);
        // NX does not replace a live key's expiry either.
        store.set("nx", &1, Ttl::secs(5)).await.unwrap();
        assert!(!store.set_if_absent("nx", &2, Ttl::Never).await.unwrap());
        assert_eq!(
            store.ttl("nx").await.unwrap(),
            KeyTtl::ExpiresIn(Duration::from_secs(5))
        );
    }

    #[tokio::test]
    async fn incr_by_errors_change_nothing() {
        let store = MemoryStore::new("counter_errors", "app");
        for (key, value) in [("neg_zero", &b"-0"[..]), ("empty", b""), ("bin", b"\xff1")] {
            store.set_bytes(key, value, Ttl::Never).await.unwrap();
            let err = store.incr_by(key, 1).await.unwrap_err();
            assert!(
                matches!(err, KvError::NotAnInteger { .. }),
                "{key}: {err:?}"
            );
            assert_eq!((err.store(), err.key()), ("counter_errors", Some(key)));
            assert_eq!(store.get_bytes(key).await.unwrap().as_deref(), Some(value));
        }
        store.set("min", &i64::MIN, Ttl::secs(60)).await.unwrap();
        let err = store.incr_by("min", -1).await.unwrap_err();
        assert!(matches!(err, KvError::Overflow { .. }), "{err:?}");
        assert_eq!(err.key(), Some("min"));
        assert_eq!(store.get::<i64>("min").await.unwrap(), Some(i64::MIN));
        assert_eq!(store.incr_by("min", i64::MAX).await.unwrap(), -1);
    }

    #[tokio::test]
    async fn set_many_is_all_or_nothing() {
        let store = MemoryStore::new("batch", "app");
        store.set("a", &0, Ttl::Never).await.unwrap();
        let err = store
            .set_many_bytes(&[
                ("a", b"1".as_slice(), Ttl::secs(1)),
                ("b", b"2".as_slice(), Ttl::After(Duration::MAX)),
                ("c", b"3".as_slice(), Ttl::Never),
            ])
            .await
            .unwrap_err();
        assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
        assert_eq!(err.key(), Some("b"), "names the entry at fault");
        assert_eq!(store.get::<i32>("a").await.unwrap(), Some(0));
        assert_eq!(store.ttl("a").await.unwrap(), KeyTtl::Persistent);
        assert!(!store.exists("c").await.unwrap());
        // A key listed twice: the last write wins, as in a `MULTI`.
        store
            .set_many_bytes(&[
                ("d", b"1".as_slice(), Ttl::secs(60)),
                ("d", b"2".as_slice(), Ttl::Never),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.get_bytes("d").await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(store.ttl("d").await.unwrap(), KeyTtl::Persistent);
    }

    #[tokio::test]
    async fn close_fails_this_store_only() {
        let server = MemoryServer::new();
        let closing = open(&server, "closing", 0, "app");
        let other = open(&server, "other", 0, "app");
        closing.set("k", &1, Ttl::Never).await.unwrap();
        closing.close().await;
        closing.close().await;
        let err = closing.get_bytes("k").await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert_eq!(err.store(), "closing");
        assert!(
            matches!(&err, KvError::Unavailable { addr, .. } if &**addr == "memory"),
            "{err:?}"
        );
        assert!(std::error::Error::source(&err).is_some());
        assert!(closing.ping().await.unwrap_err().is_unavailable());
        assert!(closing.keys("*").await.unwrap_err().is_unavailable());
        assert!(closing.incr_by("n", 1).await.unwrap_err().is_unavailable());
        assert!(
            closing
                .set("k", &2, Ttl::Never)
                .await
                .unwrap_err()
                .is_unavailable()
        );
        // Argument checks and empty batches answer as on Redis, where they
        // never reach the connection.
        let invalid = closing.set("k", &2, Ttl::After(Duration::ZERO)).await;
        assert!(matches!(invalid, Err(KvError::InvalidArgument { .. })));
        assert_eq!(closing.delete_keys(&[]).await.unwrap(), 0);
        assert!(closing.get_many_bytes(&[]).await.unwrap().is_empty());
        // The data and the other stores are untouched.
        assert_eq!(other.get::<i32>("k").await.unwrap(), Some(1));
        other.ping().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn purge_task_ends_after_the_last_store_drops() {
        let (server, task) = MemoryServer::start(Duration::from_secs(1));
        let mut task = task.expect("a runtime is current");
        let store = open(&server, "s", 0, "app");
        drop(server);
        store.set("k", &1, Ttl::millis(10)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(store.server().is_empty(0), "purged while a store lives");
        assert!(!task.is_finished());
        drop(store);
        let ended = tokio::time::timeout(Duration::from_millis(1), &mut task).await;
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_increments_are_exact() {
        let store = Arc::new(MemoryStore::new("concurrent", "app"));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for _ in 0..100 {
                        store.incr_by("hits", 1).await?;
                    }
                    Ok::<_, KvError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.get::<i64>("hits").await.unwrap(), Some(6400));
    }
}
