//! [`RedisStore`]: the Redis implementation of [`KvStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::breaker::BreakerState;
use super::config::RedisConfig;
use super::core::{Core, NUMBER_BYTES, sized_cmd};
use super::error_map::ErrorContext;
use super::link::{Link, Route};
use super::near_cache::{NearCacheStats, Tracking};
use super::routing;
use crate::error::{KvError, Result};
use crate::store::{
    KeySpace, KeyTtl, KvHashes, KvLists, KvSets, KvSortedSets, KvStore, KvTransactions, Script,
    ScriptValue, Ttl, duration_millis,
};

/// A [`KvStore`] on Redis (service type `kvstore_redis`): one server, a
/// Redis Cluster, or the primary a set of Sentinels names — see
/// [`RedisConfig`] and [`RedisMode`](super::RedisMode).
///
/// Built on redis-rs multiplexed connections with `TCP_NODELAY` on
/// (`pool_size` of them, used round-robin). Every call is bounded by
/// `command_timeout`, reconnection waits included; on a cluster or behind
/// Sentinels, repeated failures rebuild the connections, so the store
/// follows a failover without a restart. The stores of one server share a
/// circuit breaker: after a timeout (or three failed connections) every
/// call to that server fails at once, as unavailable, until a background
/// `PING` gets an answer — see [`breaker_state`](Self::breaker_state).
/// Cheap to share as `Arc<dyn KvStore>`.
///
/// Blocking pops ([`KvLists::blocking_pop`](crate::KvLists::blocking_pop))
/// never use those shared connections: each runs on a dedicated one, at
/// most 8 at once per store (opened on first use, kept for the next). A
/// pop that finds all 8 busy waits for one within its own timeout, then
/// fails with [`KvError::Timeout`].
///
/// On a cluster, `get_many` and `delete_keys` are split per hash slot and
/// sent concurrently, `set_many` is one `MULTI` per slot (atomic within a
/// slot only), `keys` scans every primary, and a script whose keys span
/// slots is refused with [`KvError::CrossSlot`] before anything is sent.
///
/// With a near cache ([`RedisConfig::with_near_cache`]), `get` and
/// `get_many` answer recently read keys from memory until Redis reports a
/// change; see [`near_cache_stats`](Self::near_cache_stats) and
/// [`sync_near_cache`](Self::sync_near_cache).
///
/// ```no_run
/// use kv_module::{KvStoreExt, RedisConfig, RedisStore, Ttl};
///
/// # async fn demo() -> kv_module::Result<()> {
/// let config = RedisConfig::new("localhost:6379").with_db(1).with_prefix("sessions");
/// let store = RedisStore::open("session_cache", config).await?;
/// store.set("abc", &42, Ttl::secs(60)).await?; // Redis key `sessions:abc`
///
/// let cluster = RedisConfig::cluster(["127.0.0.1:7000", "127.0.0.1:7001"]).with_prefix("sessions");
/// let store = RedisStore::open("session_cache", cluster).await?;
/// # Ok(())
/// # }
/// ```
pub struct RedisStore {
    core: Core,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("name", &self.core.ctx().store)
            .field("addr", &self.core.ctx().addr)
            .field("prefix", &self.core.space.prefix())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects, checks the server(s) with `PING` (behind Sentinels also
    /// that the named server is a primary), and returns the store.
    ///
    /// Fails fast with [`KvError::Unavailable`] naming the address when
    /// nothing answers within `connect_timeout`, and with
    /// [`KvError::Config`] when the settings are invalid.
    #[tracing::instrument(skip_all, fields(store = %name.as_ref()), err)]
    pub async fn open(name: impl AsRef<str>, config: RedisConfig) -> Result<Self> {
        let name: Arc<str> = Arc::from(name.as_ref());
        let topology = config.resolve().map_err(|reason| KvError::Config {
            store: name.clone(),
            reason: format!("{reason} (addr {})", config.display_addr()),
        })?;
        #[cfg(feature = "tls")]
        super::tls::install_crypto_provider();
        let ctx = ErrorContext {
            store: name,
            addr: Arc::from(topology.display.as_str()),
        };
        let near_topology = config
            .near_cache
            .filter(|near| near.enabled)
            .map(|near| (near, topology.clone()));
        let space = KeySpace::new(config.prefix);
        let link = Link::open(topology, ctx).await?;
        let near = match near_topology {
            Some((near, topology)) => Some(
                Tracking::open_for_store(&link, &topology, &near, space.stored_prefix()).await?,
            ),
            None => None,
        };
        tracing::debug!(addr = %link.ctx().addr, near_cache = near.is_some(), "redis store open");
        Ok(Self {
            core: Core { link, space, near },
        })
    }

    /// What the near cache did and holds (`None` without one): hits,
    /// misses, invalidations, flushes, evictions, bytes held. Reading it
    /// sends nothing.
    pub fn near_cache_stats(&self) -> Option<NearCacheStats> {
        self.core.near.as_ref().map(|near| near.stats())
    }

    /// Waits until every invalidation Redis sent this store's near cache
    /// before now has been applied: one `PING` on the tracking connection,
    /// under `command_timeout`. A read that starts after it returns sees
    /// every write acknowledged (to any client) before it was called. On a
    /// cluster, pings every primary but cannot wait for redis-rs's push
    /// forwarding (see the near cache's documentation). Without a near
    /// cache, or while its connection is down (when reads go to Redis
    /// anyway), returns at once.
    pub async fn sync_near_cache(&self) -> Result<()> {
        let Some(near) = &self.core.near else {
            return Ok(());
        };
        let Some(live) = near.live() else {
            return Ok(());
        };
        let pinged = near.ping(&live).await;
        pinged.map_err(|e| self.core.ctx().map("PING", None, e))
    }

    /// The server address(es): `host:port/db`, `cluster host:port,...` or
    /// `sentinel name via host:port,...`.
    pub fn addr(&self) -> &str {
        &self.core.ctx().addr
    }

    /// The state of the circuit breaker this store shares with every store
    /// of its server (its Redis Cluster, its Sentinel set): open while the
    /// server is known to be failing, when calls fail at once with
    /// [`KvError::Unavailable`] rather than each waiting `command_timeout`.
    /// For health checks and metrics; reading it sends nothing.
    pub fn breaker_state(&self) -> BreakerState {
        self.core.link.breaker_state()
    }

    /// `SET stored value [PX ms]`; `key` (the caller's) names errors.
    fn set_cmd(&self, stored: &str, key: &str, value: &[u8], ttl: Ttl) -> Result<redis::Cmd> {
        let mut cmd = sized_cmd("SET", 4, stored.len() + value.len() + 2 + NUMBER_BYTES);
        cmd.arg(stored).arg(value);
        if let Some(ms) = ttl.to_millis(&self.core.ctx().store, key)? {
            cmd.arg("PX").arg(ms);
        }
        Ok(cmd)
    }
}

/// Converts a script reply to the backend-neutral [`ScriptValue`].
fn script_value(value: redis::Value) -> ScriptValue {
    match value {
        redis::Value::Nil => ScriptValue::Nil,
        redis::Value::Int(n) => ScriptValue::Int(n),
        redis::Value::BulkString(bytes) => ScriptValue::Bytes(bytes),
        redis::Value::SimpleString(text) => ScriptValue::Bytes(text.into_bytes()),
        redis::Value::Okay => ScriptValue::Bytes(b"OK".to_vec()),
        redis::Value::Boolean(b) => ScriptValue::Int(i64::from(b)),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            ScriptValue::Array(items.into_iter().map(script_value).collect())
        }
        _ => ScriptValue::Nil,
    }
}

#[async_trait]
impl KvStore for RedisStore {
    fn name(&self) -> &str {
        &self.core.ctx().store
    }

    fn prefix(&self) -> &str {
        self.core.space.prefix()
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let stored = self.core.space.stored_key(key);
        if let Some(near) = &self.core.near {
            if let Some(hit) = near.lookup(&stored) {
                return Ok(hit);
            }
            // Boxed: the miss path's future is large, and held inline it
            // would make every `get_bytes` future large (1.9 KiB against
            // 0.9: past glibc's per-thread cache, a slow `malloc` on every
            // call of every store).
            if let Some(answer) = Box::pin(near.get_missed(&self.core.link, key, &stored)).await? {
                return Ok(answer);
            }
        }
        let mut cmd = sized_cmd("GET", 1, stored.len());
        cmd.arg(&stored);
        self.core
            .query(&cmd, "GET", Some(key), Route::Key(&stored))
            .await
    }

    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let stored = self.core.space.stored_key(key);
        let _forget = self.core.forget_after(std::slice::from_ref(&stored));
        let cmd = self.set_cmd(&stored, key, value, ttl)?;
        self.core
            .query(&cmd, "SET", Some(key), Route::Key(&stored))
            .await
    }

    async fn set_bytes_if_absent(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let stored = self.core.space.stored_key(key);
        let _forget = self.core.forget_after(std::slice::from_ref(&stored));
        let mut cmd = self.set_cmd(&stored, key, value, ttl)?;
        cmd.arg("NX");
        let reply: Option<String> = self
            .core
            .query(&cmd, "SET NX", Some(key), Route::Key(&stored))
            .await?;
        Ok(reply.is_some())
    }

    async fn get_many_bytes(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<String> = keys.iter().map(|k| self.core.space.stored_key(k)).collect();
        // Boxed for the same reason as in `get_bytes`.
        if let Some(near) = &self.core.near
            && let Some(answer) = Box::pin(near.get_many(&self.core.link, &stored)).await?
        {
            return Ok(answer);
        }
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&stored);
        self.core
            .query(&cmd, "MGET", None, Route::Keys(&stored))
            .await
    }

    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmds = Vec::with_capacity(entries.len());
        for (key, value, ttl) in entries {
            let stored = self.core.space.stored_key(key);
            let cmd = self.set_cmd(&stored, key, value, *ttl)?;
            cmds.push((stored, cmd));
        }
        let stored: Vec<String> = cmds.iter().map(|(key, _)| key.clone()).collect();
        let _forget = self.core.forget_after(&stored);
        // One MULTI on one server; one per hash slot on a cluster (a MULTI
        // cannot span slots there), sent concurrently.
        let groups = if self.core.link.is_cluster() {
            routing::by_slot(cmds)
        } else {
            vec![cmds.into_iter().map(|(_, cmd)| cmd).collect()]
        };
        self.core
            .link
            .call("MULTI SET", None, Route::Keys(&stored), |conn| async move {
                let sends = groups.iter().map(|group| {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for cmd in group {
                        pipe.add_command(cmd.clone()).ignore();
                    }
                    let mut conn = conn.clone();
                    async move { pipe.query_async::<()>(&mut conn).await }
                });
                futures::future::try_join_all(sends).await.map(drop)
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let stored = self.core.space.stored_key(key);
        let _forget = self.core.forget_after(std::slice::from_ref(&stored));
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&stored);
        let n: u64 = self
            .core
            .query(&cmd, "UNLINK", Some(key), Route::Key(&stored))
            .await?;
        Ok(n > 0)
    }

    async fn delete_keys(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        // `UNLINK`: the server frees the values off its main thread. On a
        // cluster redis-rs splits it per slot and sums the counts.
        let stored: Vec<String> = keys.iter().map(|k| self.core.space.stored_key(k)).collect();
        let _forget = self.core.forget_after(&stored);
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&stored);
        self.core
            .query(&cmd, "UNLINK", None, Route::Keys(&stored))
            .await
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let (conn, guard) = self.core.link.admit(Route::All)?;
        let pattern = self.core.space.stored_pattern(pattern);
        let found = routing::scan_matching(conn, &pattern, self.core.link.command_timeout()).await;
        self.core.link.observe("SCAN", &guard, &found);
        let found = found.map_err(|e| self.core.ctx().map("SCAN", None, e))?;
        Ok(found
            .iter()
            .filter_map(|stored| self.core.space.caller_key(stored).map(str::to_owned))
            .collect())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let stored = self.core.space.stored_key(key);
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&stored);
        let n: u64 = self
            .core
            .query(&cmd, "EXISTS", Some(key), Route::Key(&stored))
            .await?;
        Ok(n > 0)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let ms = duration_millis(ttl, &self.core.ctx().store, key)?;
        let stored = self.core.space.stored_key(key);
        let _forget = self.core.forget_after(std::slice::from_ref(&stored));
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(&stored).arg(ms);
        self.core
            .query(&cmd, "PEXPIRE", Some(key), Route::Key(&stored))
            .await
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let stored = self.core.space.stored_key(key);
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(&stored);
        let ms: i64 = self
            .core
            .query(&cmd, "PTTL", Some(key), Route::Key(&stored))
            .await?;
        Ok(match ms {
            -2 => KeyTtl::Missing,
            -1 => KeyTtl::Persistent,
            ms => KeyTtl::ExpiresIn(Duration::from_millis(ms.max(0).unsigned_abs())),
        })
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        let stored = self.core.space.stored_key(key);
        let _forget = self.core.forget_after(std::slice::from_ref(&stored));
        let mut cmd = redis::cmd("PERSIST");
        cmd.arg(&stored);
        self.core
            .query(&cmd, "PERSIST", Some(key), Route::Key(&stored))
            .await
    }

    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        let stored = self.core.space.stored_key(key);
        let _forget = self.core.forget_after(std::slice::from_ref(&stored));
        let mut cmd = sized_cmd("INCRBY", 2, stored.len() + NUMBER_BYTES);
        cmd.arg(&stored).arg(delta);
        self.core
            .query(&cmd, "INCRBY", Some(key), Route::Key(&stored))
            .await
    }

    async fn incr_by_with_ttl(
        &self,
        key: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<(i64, KeyTtl)> {
        let ms = duration_millis(ttl, &self.core.ctx().store, key)?;
        let stored = self.core.space.stored_key(key);
        let _forget = self.core.forget_after(std::slice::from_ref(&stored));
        // A plain pipeline, not a `MULTI` (which costs the server 60 % more)
        // nor a script (three times as much): `INCRBY`, then `PEXPIRE … NX`
        // (a no-op on a key that has an expiry, so hits never re-arm it),
        // then `PTTL`: 1.65 µs of server time a call against 1.15 for a
        // bare `INCR` + `PEXPIRE`, 2.10 for `SET … PX … NX` + `INCRBY` +
        // `PTTL`, 5.10 for the same in Lua (`docs/BENCHMARKS.md`).
        let sized = |name: &str, args: usize| {
            let mut cmd = sized_cmd(name, args, stored.len() + args * NUMBER_BYTES);
            cmd.arg(&stored);
            cmd
        };
        let mut incr = sized("INCRBY", 2);
        incr.arg(delta);
        let mut expire = sized("PEXPIRE", 3);
        expire.arg(ms).arg("NX");
        let mut pipe = redis::Pipeline::with_capacity(3);
        // Each reply on its own, so that an `INCRBY` error comes back as
        // the server's error (mapped like `incr_by`'s), not as a pipeline
        // failure.
        pipe.ignore_errors()
            .add_command(incr)
            .add_command(expire)
            .add_command(sized("PTTL", 1));
        type Replies = (
            redis::RedisResult<i64>,
            redis::RedisResult<bool>,
            redis::RedisResult<i64>,
        );
        let (value, armed, pttl): Replies = self
            .core
            .link
            .call(
                "INCRBY PEXPIRE NX PTTL",
                Some(key),
                Route::Key(&stored),
                |mut conn| async move { pipe.query_async(&mut conn).await },
            )
            .await?;
        let map = |e| self.core.ctx().map("INCRBY PEXPIRE NX PTTL", Some(key), e);
        let armed = armed.map_err(|e| needs_redis_7(map(e)))?;
        let value = match value {
            Ok(value) => value,
            Err(e) => {
                // `INCRBY` refused the key (not an integer, another type):
                // if it had no expiry, `PEXPIRE … NX` just gave it one.
                // Taken back, so that a failed call changes nothing.
                if armed {
                    let _: bool = self.core.on_key("PERSIST", key, |_| {}).await?;
                }
                return Err(map(e));
            }
        };
        let left = match (armed, pttl.map_err(map)?) {
            // Given its expiry by this call: `ttl` exactly, whatever clock
            // reading `PTTL` subtracted.
            (true, _) => KeyTtl::ExpiresIn(Duration::from_millis(ms)),
            // No expiry although `PEXPIRE … NX` ran: another client removed
            // it in between (a pipeline read in two parts). Given again.
            (false, -1) => {
                let armed: bool = self
                    .core
                    .on_key("PEXPIRE", key, |cmd| {
                        cmd.arg(ms).arg("NX");
                    })
                    .await
                    .map_err(needs_redis_7)?;
                if armed {
                    KeyTtl::ExpiresIn(Duration::from_millis(ms))
                } else {
                    self.ttl(key).await?
                }
            }
            (false, pttl) => KeyTtl::from_pttl(pttl),
        };
        Ok((value, left))
    }

    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue> {
        let value = self.core.eval(script, keys, args).await?;
        Ok(script_value(value))
    }

    async fn ping(&self) -> Result<()> {
        self.core
            .query(&redis::cmd("PING"), "PING", None, Route::All)
            .await
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

    async fn close(&self) {
        if let Some(near) = &self.core.near {
            near.close();
        }
        self.core.link.close();
    }
}

/// A server older than 7.0 refuses `PEXPIRE … NX` (a wrong number of
/// arguments): say what is needed.
fn needs_redis_7(error: KvError) -> KvError {
    match error {
        KvError::Backend {
            store,
            op,
            key,
            source,
        } if source.to_string().contains("wrong number of arguments") => KvError::Backend {
            store,
            op,
            key,
            source: format!("incr_by_with_ttl needs Redis 7.0 or later (PEXPIRE ... NX): {source}")
                .into(),
        },
        other => other,
    }
}
