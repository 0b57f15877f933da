//! [`RedisStore`]: the Redis implementation of [`KvStore`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::config::RedisConfig;
use super::error_map::ErrorContext;
use super::routing;
use crate::error::{KvError, Result};
use crate::store::{KeySpace, KeyTtl, KvStore, Script, ScriptValue, Ttl, duration_millis};

/// Reconnection attempts a connection makes before failing the commands
/// waiting on it. Kept small so that callers learn quickly that the server
/// is down (and can fail open); the next command starts a new attempt.
const RECONNECT_RETRIES: usize = 2;

/// A [`KvStore`] on a Redis server (service type `kvstore_redis`).
///
/// Built on redis-rs [`ConnectionManager`]s: multiplexed connections that
/// reconnect by themselves, with `TCP_NODELAY` on. `pool_size` of them are
/// used round-robin. Cheap to share as `Arc<dyn KvStore>`.
///
/// ```no_run
/// use kv_module::{KvStoreExt, RedisConfig, RedisStore, Ttl};
///
/// # async fn demo() -> kv_module::Result<()> {
/// let config = RedisConfig::new("localhost:6379").with_db(1).with_prefix("sessions");
/// let store = RedisStore::open("session_cache", config).await?;
/// store.set("abc", &42, Ttl::secs(60)).await?; // Redis key `sessions:abc`
/// # Ok(())
/// # }
/// ```
pub struct RedisStore {
    ctx: ErrorContext,
    space: KeySpace,
    /// Empty once closed. A std lock is fine: it is held only to clone a
    /// handle, never across an `.await`.
    conns: RwLock<Vec<ConnectionManager>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("name", &self.ctx.store)
            .field("addr", &self.ctx.addr)
            .field("prefix", &self.space.prefix())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server, checks it with `PING`, and returns the store.
    ///
    /// Fails fast with [`KvError::Unavailable`] naming the address when the
    /// server cannot be reached within `connect_timeout`, and with
    /// [`KvError::Config`] when the settings are invalid.
    #[tracing::instrument(skip_all, fields(store = %name.as_ref()), err)]
    pub async fn open(name: impl AsRef<str>, config: RedisConfig) -> Result<Self> {
        let name: Arc<str> = Arc::from(name.as_ref());
        let (info, addr) = config.resolve().map_err(|reason| KvError::Config {
            store: name.clone(),
            reason: format!("{reason} (addr {})", config.display_addr()),
        })?;
        let ctx = ErrorContext {
            store: name.clone(),
            addr: Arc::from(addr.as_str()),
        };
        let client = redis::Client::open(info).map_err(|e| ctx.map("connect", None, e))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connect = futures::future::try_join_all((0..config.pool_size).map(|_| async {
            let mut conn =
                ConnectionManager::new_with_config(client.clone(), manager_config.clone()).await?;
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map(|()| conn)
        }));
        // The manager retries a refused connection a few times; bound the
        // whole start-up so an unreachable server fails fast.
        let deadline = config.connect_timeout.saturating_mul(2) + config.response_timeout;
        let conns = match tokio::time::timeout(deadline, connect).await {
            Ok(Ok(conns)) => conns,
            Ok(Err(e)) => {
                return Err(match ctx.map("connect", None, e) {
                    KvError::Backend { source, .. } => KvError::Unavailable {
                        store: ctx.store.clone(),
                        addr: ctx.addr.clone(),
                        source,
                    },
                    other => other,
                });
            }
            Err(elapsed) => {
                return Err(KvError::Unavailable {
                    store: ctx.store.clone(),
                    addr: ctx.addr.clone(),
                    source: Box::new(elapsed),
                });
            }
        };
        tracing::debug!(addr = %ctx.addr, pool_size = conns.len(), "redis store open");
        Ok(Self {
            ctx,
            space: KeySpace::new(config.prefix),
            conns: RwLock::new(conns),
            next: AtomicUsize::new(0),
        })
    }

    /// The server address as `host:port/db`.
    pub fn addr(&self) -> &str {
        &self.ctx.addr
    }

    /// A connection handle, round-robin over the pool.
    fn conn(&self) -> Result<ConnectionManager> {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        if conns.is_empty() {
            return Err(self.ctx.closed());
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % conns.len();
        Ok(conns[i].clone())
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        op: &'static str,
        key: Option<&str>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.ctx.map(op, key, e))
    }

    fn set_cmd(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<redis::Cmd> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.space.stored_key(key)).arg(value);
        if let Some(ms) = ttl.to_millis(&self.ctx.store, key)? {
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
        &self.ctx.store
    }

    fn prefix(&self) -> &str {
        self.space.prefix()
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.space.stored_key(key));
        self.query(&cmd, "GET", Some(key)).await
    }

    #[tracing::instrument(level = "trace", skip(self, value), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let cmd = self.set_cmd(key, value, ttl)?;
        self.query(&cmd, "SET", Some(key)).await
    }

    #[tracing::instrument(level = "trace", skip(self, value), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn set_bytes_if_absent(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let mut cmd = self.set_cmd(key, value, ttl)?;
        cmd.arg("NX");
        let reply: Option<String> = self.query(&cmd, "SET NX", Some(key)).await?;
        Ok(reply.is_some())
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx.store, n = keys.len()), err(level = "debug"))]
    async fn get_many_bytes(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.space.stored_key(key));
        }
        self.query(&cmd, "MGET", None).await
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx.store, n = entries.len()), err(level = "debug"))]
    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, value, ttl) in entries {
            pipe.add_command(self.set_cmd(key, value, *ttl)?).ignore();
        }
        let mut conn = self.conn()?;
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.ctx.map("MULTI SET", None, e))
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn delete(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(self.space.stored_key(key));
        let n: u64 = self.query(&cmd, "UNLINK", Some(key)).await?;
        Ok(n > 0)
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx.store, n = keys.len()), err(level = "debug"))]
    async fn delete_keys(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        let mut conn = self.conn()?;
        routing::unlink_all(&mut conn, &stored)
            .await
            .map_err(|e| self.ctx.map("UNLINK", None, e))
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let mut conn = self.conn()?;
        let found = routing::scan_matching(&mut conn, &self.space.stored_pattern(pattern))
            .await
            .map_err(|e| self.ctx.map("SCAN", None, e))?;
        Ok(found
            .iter()
            .filter_map(|stored| self.space.caller_key(stored).map(str::to_owned))
            .collect())
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn exists(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.space.stored_key(key));
        let n: u64 = self.query(&cmd, "EXISTS", Some(key)).await?;
        Ok(n > 0)
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let ms = duration_millis(ttl, &self.ctx.store, key)?;
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(self.space.stored_key(key)).arg(ms);
        self.query(&cmd, "PEXPIRE", Some(key)).await
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(self.space.stored_key(key));
        let ms: i64 = self.query(&cmd, "PTTL", Some(key)).await?;
        Ok(match ms {
            -2 => KeyTtl::Missing,
            -1 => KeyTtl::Persistent,
            ms => KeyTtl::ExpiresIn(Duration::from_millis(ms.max(0).unsigned_abs())),
        })
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn persist(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("PERSIST");
        cmd.arg(self.space.stored_key(key));
        self.query(&cmd, "PERSIST", Some(key)).await
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(self.space.stored_key(key)).arg(delta);
        self.query(&cmd, "INCRBY", Some(key)).await
    }

    #[tracing::instrument(level = "trace", skip_all, fields(store = %self.ctx.store), err(level = "debug"))]
    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<ScriptValue> {
        let mut invocation = script.redis().prepare_invoke();
        for key in keys {
            invocation.key(self.space.stored_key(key));
        }
        for arg in args {
            invocation.arg(arg.as_slice());
        }
        let mut conn = self.conn()?;
        let value: redis::Value = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.ctx.map("EVALSHA", keys.first().copied(), e))?;
        Ok(script_value(value))
    }

    #[tracing::instrument(level = "trace", skip(self), fields(store = %self.ctx.store), err(level = "debug"))]
    async fn ping(&self) -> Result<()> {
        self.query(&redis::cmd("PING"), "PING", None).await
    }

    async fn close(&self) {
        // Dropping the managers closes their connections once in-flight
        // commands (which hold clones) finish.
        self.conns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
