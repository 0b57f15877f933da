//! [`Core`]: what a [`RedisStore`](super::RedisStore) is (its connections
//! and prefix), the one path every command takes (deadline, breaker,
//! error mapping, repair: [`Link::call`]), and the type the data-type
//! traits ([`KvHashes`](crate::KvHashes), ...) are implemented on.
//!
//! The traits live on this inner value rather than on `RedisStore` itself
//! so that their method names (`get`, `set`, `delete`, ...) never clash
//! with [`KvStore`](crate::KvStore)'s or [`KvStoreExt`](crate::KvStoreExt)'s
//! on the store: callers reach them through `store.hashes()`.

use std::sync::Arc;

use redis::{ErrorKind, ServerErrorKind};

use super::error_map::ErrorContext;
use super::link::{Link, Route};
use super::near_cache::{ForgetOnDrop, Tracking};
use crate::error::{KvError, Result};
use crate::store::{KeySpace, Script, ScriptRun, ScriptValue, key_slot};

/// A command `name` with room for `args` more arguments of `bytes` bytes in
/// all: its buffers are allocated once, where `redis::cmd` grows them
/// argument by argument (on a rate-limit check's three commands that cost
/// 3,000 instructions, a sixth of the client's work: callgrind).
pub(crate) fn sized_cmd(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(args + 1, name.len() + bytes);
    cmd.arg(name);
    cmd
}

/// Room for a number argument (`i64::MIN` is 20 digits and a sign).
pub(crate) const NUMBER_BYTES: usize = 20;

/// One Redis store's connections and key space.
pub(crate) struct Core {
    pub(crate) link: Arc<Link>,
    pub(crate) space: KeySpace,
    /// The near cache, when configured.
    pub(crate) near: Option<Arc<Tracking>>,
}

impl Core {
    /// The error context (store name, address).
    pub(crate) fn ctx(&self) -> &ErrorContext {
        self.link.ctx()
    }

    /// A guard that drops the near cache's copies of the `stored` keys of
    /// a write when it goes, at the end of the write (see [`ForgetOnDrop`]).
    pub(crate) fn forget_after<'a>(&'a self, stored: &'a [String]) -> ForgetOnDrop<'a> {
        ForgetOnDrop::new(self.near.as_deref(), stored)
    }

    /// Sends `cmd` through the store's one call path: the store's deadline
    /// (`command_timeout`), its circuit breaker, error mapping with `op`
    /// and the caller's `key`, and connection repair.
    pub(crate) async fn query<T: redis::FromRedisValue>(
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

    /// `cmd` on the caller's `key`: prefixed, routed by it, errors naming
    /// it. The stored key is the command's first argument after its name.
    pub(crate) async fn on_key<T: redis::FromRedisValue>(
        &self,
        name: &'static str,
        key: &str,
        args: impl FnOnce(&mut redis::Cmd),
    ) -> Result<T> {
        let stored = self.space.stored_key(key);
        // Reads as well as writes: a key of another type may be held as
        // missing, and a drop costs no more than a later miss.
        let _forget = self.forget_after(std::slice::from_ref(&stored));
        // Room for the key and a few arguments (a field and a value of a
        // few hundred bytes, a count): a larger buffer costs `malloc` the
        // same (all under its per-thread cache's 1 KiB), growing one
        // costs a copy and a second allocation.
        let mut cmd = sized_cmd(name, 6, stored.len() + 256);
        cmd.arg(&stored);
        args(&mut cmd);
        self.query(&cmd, name, Some(key), Route::Key(&stored)).await
    }

    /// Runs `script` with the caller's `keys` (prefixed here) and `args`:
    /// `EVALSHA`, loading the script on `NOSCRIPT`, through the store's
    /// call path; on a cluster keys of several slots are
    /// [`KvError::CrossSlot`] before anything is sent. Errors name the
    /// first key.
    pub(crate) async fn eval<T: redis::FromRedisValue, A: redis::ToRedisArgs>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[A],
    ) -> Result<T> {
        let stored: Vec<String> = keys.iter().map(|k| self.space.stored_key(k)).collect();
        let _forget = self.forget_after(&stored);
        self.check_one_slot("EVALSHA", keys, &stored)?;
        // One slot (checked above on a cluster): the first key routes it.
        let route = stored.first().map_or(Route::All, |key| Route::Key(key));
        let arg_bytes: usize =
            stored.iter().map(String::len).sum::<usize>() + args.len() * NUMBER_BYTES;
        let mut evalsha = sized_cmd(
            "EVALSHA",
            2 + stored.len() + args.len(),
            script.sha1().len() + NUMBER_BYTES + arg_bytes,
        );
        evalsha.arg(script.sha1()).arg(stored.len());
        for key in &stored {
            evalsha.arg(key.as_str());
        }
        for arg in args {
            evalsha.arg(arg);
        }
        self.link
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
            .await
    }

    /// Refuses, on a cluster, an atomic operation whose keys span hash
    /// slots: the server would refuse it too, after a round trip, with a
    /// message that names no key.
    pub(crate) fn check_one_slot(
        &self,
        op: &'static str,
        keys: &[&str],
        stored: &[String],
    ) -> Result<()> {
        if !self.link.is_cluster() {
            return Ok(());
        }
        let Some(first) = stored.first() else {
            return Ok(());
        };
        let slot = key_slot(first);
        if stored.iter().any(|key| key_slot(key) != slot) {
            return Err(KvError::CrossSlot {
                store: self.ctx().store.clone(),
                op,
                keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            });
        }
        Ok(())
    }
}

/// The memory twin of scripts the memory backend never runs (it has its
/// own implementation of the operation).
pub(crate) fn redis_only(_: &mut ScriptRun<'_>) -> std::result::Result<ScriptValue, String> {
    Err("this script runs on Redis only".to_owned())
}
