//! [`RedisStore`]: the Redis implementation of [`KvStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{ErrorKind, ServerErrorKind};

use super::breaker::BreakerState;
use super::config::RedisConfig;
use super::error_map::ErrorContext;
use super::link::{Link, Route};
use super::near_cache::{ForgetOnDrop, NearCacheStats, Tracking};
use super::routing;
use crate::error::{KvError, Result};
use crate::store::{
    KeySpace, KeyTtl, KvStore, Script, ScriptValue, Ttl, duration_millis, key_slot,
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
/// On a cluster, `get_many` and `delete_keys` are split per hash slot and
/// sent concurrently, `set_many` is one `MULTI` per slot (atomic within a
/// slot only), `keys` scans every primary, and a script whose keys span
/// slots is refused with [`KvError::CrossSlot`] before anything is sent.
///
/// With a near cache ([`RedisConfig::with_near_cache`]), `get` and `get_many` answer recently read keys from memory
/// until Redis reports a change; see [`near_cache_stats`](Self::near_cache_stats)
/// and [`sync_near_cache`](Self::sync_near_cache).
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
    link: Arc<Link>,
    space: KeySpace,
    /// The near cache, when configured.
    near: Option<Arc<Tracking>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("name", &self.ctx().store)
            .field("addr", &self.ctx().addr)
            .field("prefix", &self.space.prefix())
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
        let near_topology = config.near_cache.map(|near| (near, topology.clone()));
        let link = Link::open(topology, ctx).await?;
        let near = match near_topology {
            Some((near, topology)) => {
                Some(Tracking::open_for_store(&link, &topology, &near).await?)
            }
            None => None,
        };
        tracing::debug!(addr = %link.ctx().addr, near_cache = near.is_some(), "redis store open");
        Ok(Self {
            link,
            space: KeySpace::new(config.prefix),
            near,
        })
    }

    /// What the near cache did and holds (`None` without one): hits,
    /// misses, invalidations, flushes, evictions, bytes held. Reading it
    /// sends nothing.
    pub fn near_cache_stats(&self) -> Option<NearCacheStats> {
        self.near.as_ref().map(|near| near.stats())
    }

    /// Waits until every invalidation Redis sent this store's near cache
    /// before now has been applied: one `PING` on the tracking connection,
    /// under `command_timeout`. A read that starts after it returns sees
    /// every write acknowledged (to any client) before it was called.
    /// Without a near cache, or while its connection is down (when reads go
    /// to Redis anyway), returns at once.
    pub async fn sync_near_cache(&self) -> Result<()> {
        let Some(near) = &self.near else {
            return Ok(());
        };
        let Some(live) = near.live() else {
            return Ok(());
        };
        let pinged = near.ping(&live).await;
        pinged.map_err(|e| self.ctx().map("PING", None, e))
    }

    /// A guard that drops the near cache's copies of the `stored` keys of
    /// a write when it goes, at the end of the write (see [`ForgetOnDrop`]).
    fn forget_after<'a>(&'a self, stored: &'a [String]) -> ForgetOnDrop<'a> {
        ForgetOnDrop::new(self.near.as_deref(), stored)
    }

    /// The server address(es): `host:port/db`, `cluster host:port,...` or
    /// `sentinel name via host:port,...`.
    pub fn addr(&self) -> &str {
        &self.ctx().addr
    }

    /// The state of the circuit breaker this store shares with every store
    /// of its server (its Redis Cluster, its Sentinel set): open while the
    /// server is known to be failing, when calls fail at once with
    /// [`KvError::Unavailable`] rather than each waiting `command_timeout`.
    /// For health checks and metrics; reading it sends nothing.
    pub fn breaker_state(&self) -> BreakerState {
        self.link.breaker_state()
    }

    fn ctx(&self) -> &ErrorContext {
        self.link.ctx()
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        op: &'static str,
        key: Option<&str>,
        route: Route<'_>,
    ) -> Result<T> {
        self.link
            .call(op, key, route, |mut conn| async move {
                cmd.query_async(&mut conn).await
            })
            .await
    }

    /// `SET stored value [PX ms]`; `key` (the caller's) names errors.
    fn set_cmd(&self, stored: &str, key: &str, value: &[u8], ttl: Ttl) -> Result<redis::Cmd> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(stored).arg(value);
        if let Some(ms) = ttl.to_millis(&self.ctx().store, key)? {
            cmd.arg("PX").arg(ms);
        }
        Ok(cmd)
    }

    /// Refuses, on a cluster, a script whose keys span hash slots: the
    /// server would refuse it too, after a round trip, with a message that
    /// names no key.
    fn check_one_slot(&self, op: &'static str, keys: &[&str], stored: &[String]) -> Result<()> {
        let Some(first) = stored.first() else {
            return Ok(());
        };
        let slot = key_slot(first);
        if self.link.is_cluster() && stored.iter().any(|key| key_slot(key) != slot) {
            return Err(KvError::CrossSlot {
                store: self.ctx().store.clone(),
                op,
                keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            });
        }
        Ok(())
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
        &self.ctx().store
    }

    fn prefix(&self) -> &str {
        self.space.prefix()
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let stored = self.space.stored_key(key);
        if let Some(near) = &self.near
            && let Some(answer) = near.get(&self.link, key, &stored).await?
        {
            return Ok(answer);
        }
        let mut cmd = redis::cmd("GET");
        cmd.arg(&stored);
        self.query(&cmd, "GET", Some(key), Route::Key(&stored))
            .await
    }

    #[tracing::instrument(level = "trace", skip(self, value), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let stored = self.space.stored_key(key);
        let _forget = self.forget_after(std::slice::from_ref(&stored));
        let cmd = self.set_cmd(&stored, key, value, ttl)?;
        self.query(&cmd, "SET", Some(key), Route::Key(&stored))
            .await
    }

    #[tracing::instrument(level = "trace", skip(self, value), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn set_bytes_if_absent(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let stored = self.space.stored_key(key);
        let _forget = self.forget_after(std::slice::from_ref(&stored));
        let mut cmd = self.set_cmd(&stored, key, value, ttl)?;
        cmd.arg("NX");
        let reply: Option<String> = self
            .query(&cmd, "SET NX", Some(key), Route::Key(&stored))
            .await?;
        Ok(reply.is_some())
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx().store, n = keys.len()), err(level = "debug"))]
    async fn get_many_bytes(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        if let Some(near) = &self.near
            && let Some(answer) = near.get_many(&self.link, &stored).await?
        {
            return Ok(answer);
        }
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&stored);
        self.query(&cmd, "MGET", None, Route::Keys(&stored)).await
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx().store, n = entries.len()), err(level = "debug"))]
    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmds = Vec::with_capacity(entries.len());
        for (key, value, ttl) in entries {
            let stored = self.space.stored_key(key);
            let cmd = self.set_cmd(&stored, key, value, *ttl)?;
            cmds.push((stored, cmd));
        }
        let stored: Vec<String> = cmds.iter().map(|(key, _)| key.clone()).collect();
        let _forget = self.forget_after(&stored);
        // One MULTI on one server; one per hash slot on a cluster (a MULTI
        // cannot span slots there), sent concurrently.
        let groups = if self.link.is_cluster() {
            routing::by_slot(cmds)
        } else {
            vec![cmds.into_iter().map(|(_, cmd)| cmd).collect()]
        };
        self.link
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

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn delete(&self, key: &str) -> Result<bool> {
        let stored = self.space.stored_key(key);
        let _forget = self.forget_after(std::slice::from_ref(&stored));
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&stored);
        let n: u64 = self
            .query(&cmd, "UNLINK", Some(key), Route::Key(&stored))
            .await?;
        Ok(n > 0)
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx().store, n = keys.len()), err(level = "debug"))]
    async fn delete_keys(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        // `UNLINK`: the server frees the values off its main thread. On a
        // cluster redis-rs splits it per slot and sums the counts.
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        let _forget = self.forget_after(&stored);
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&stored);
        self.query(&cmd, "UNLINK", None, Route::Keys(&stored)).await
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let (conn, guard) = self.link.admit(Route::All)?;
        let pattern = self.space.stored_pattern(pattern);
        let found = routing::scan_matching(conn, &pattern, self.link.command_timeout()).await;
        self.link.observe("SCAN", &guard, &found);
        let found = found.map_err(|e| self.ctx().map("SCAN", None, e))?;
        Ok(found
            .iter()
            .filter_map(|stored| self.space.caller_key(stored).map(str::to_owned))
            .collect())
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn exists(&self, key: &str) -> Result<bool> {
        let stored = self.space.stored_key(key);
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&stored);
        let n: u64 = self
            .query(&cmd, "EXISTS", Some(key), Route::Key(&stored))
            .await?;
        Ok(n > 0)
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let ms = duration_millis(ttl, &self.ctx().store, key)?;
        let stored = self.space.stored_key(key);
        let _forget = self.forget_after(std::slice::from_ref(&stored));
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(&stored).arg(ms);
        self.query(&cmd, "PEXPIRE", Some(key), Route::Key(&stored))
            .await
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let stored = self.space.stored_key(key);
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(&stored);
        let ms: i64 = self
            .query(&cmd, "PTTL", Some(key), Route::Key(&stored))
            .await?;
        Ok(match ms {
            -2 => KeyTtl::Missing,
            -1 => KeyTtl::Persistent,
            ms => KeyTtl::ExpiresIn(Duration::from_millis(ms.max(0).unsigned_abs())),
        })
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn persist(&self, key: &str) -> Result<bool> {
        let stored = self.space.stored_key(key);
        let _forget = self.forget_after(std::slice::from_ref(&stored));
        let mut cmd = redis::cmd("PERSIST");
        cmd.arg(&stored);
        self.query(&cmd, "PERSIST", Some(key), Route::Key(&stored))
            .await
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        let stored = self.space.stored_key(key);
        let _forget = self.forget_after(std::slice::from_ref(&stored));
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(&stored).arg(delta);
        self.query(&cmd, "INCRBY", Some(key), Route::Key(&stored))
            .await
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx().store), err(level = "debug"))]
    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue> {
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        let _forget = self.forget_after(&stored);
        self.check_one_slot("EVALSHA", keys, &stored)?;
        // One slot (checked above on a cluster): the first key routes it.
        let route = stored.first().map_or(Route::All, |key| Route::Key(key));
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha.arg(script.sha1()).arg(stored.len());
        for key in &stored {
            evalsha.arg(key.as_str());
        }
        for arg in args {
            evalsha.arg(arg.as_slice());
        }
        let value = self
            .link
            .call(
                "EVALSHA",
                keys.first().copied(),
                route,
                |mut conn| async move {
                    // As redis-rs' `Script` does: one round trip while the server
                    // has the script cached; after NOSCRIPT (a restarted or flushed
                    // server, a new primary) load it and run it again.
                    match evalsha.query_async(&mut conn).await {
                        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                            let mut load = redis::cmd("SCRIPT");
                            load.arg("LOAD").arg(script.lua());
                            load.query_async::<()>(&mut conn).await?;
                            evalsha.query_async(&mut conn).await
                        }
                        reply => reply,
                    }
                },
            )
            .await?;
        Ok(script_value(value))
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx().store), err(level = "debug"))]
    async fn ping(&self) -> Result<()> {
        self.query(&redis::cmd("PING"), "PING", None, Route::All)
            .await
    }

    async fn close(&self) {
        if let Some(near) = &self.near {
            near.close();
        }
        self.link.close();
    }
}
