//! [`KvLists`]: Redis lists (a key holding a sequence of values) on any
//! store, reached through [`KvStore::lists`](crate::KvStore::lists),
//! including blocking pops for workers waiting for jobs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{KvError, Result};

/// The longest a blocking pop may wait: one hour. Longer waits are
/// [`KvError::InvalidArgument`]; loop over shorter ones instead.
pub const MAX_BLOCKING_TIMEOUT: Duration = Duration::from_secs(3600);

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// The head (`L…` commands: `LPUSH`, `LPOP`, `BLPOP`).
    Front,
    /// The tail (`R…` commands: `RPUSH`, `RPOP`, `BRPOP`).
    Back,
}

/// Lists: one key holding a sequence of raw values, with Redis's
/// semantics on every backend. Reached as `store.lists()`.
///
/// # Contract
///
/// | method | Redis | missing key | reply |
/// |---|---|---|---|
/// | [`push`](Self::push) | `LPUSH`/`RPUSH k v …` | created, persistent | the new length |
/// | [`pop`](Self::pop) | `LPOP`/`RPOP k count` | empty | up to `count` values, in pop order; the key vanishes with its last value |
/// | [`range`](Self::range) | `LRANGE k start stop` | empty | head to tail; negative indexes from the tail |
/// | [`len`](Self::len) | `LLEN` | 0 | |
/// | [`trim`](Self::trim) | `LTRIM k start stop` | nothing | keeps only `start..=stop`; an empty result removes the key |
/// | [`blocking_pop`](Self::blocking_pop) | `BLPOP`/`BRPOP k … timeout` | waits | the key and value, or `None` after `timeout` |
///
/// * [`push`](Self::push) of several values pushes them one after the
///   other, as Redis does: `push(Front, [a, b, c])` leaves `c, b, a` at
///   the head. An empty list of values changes nothing and returns the
///   length (`LLEN`).
/// * Writes keep the key's expiry. A key holding another type is
///   [`KvError::WrongType`] naming the store and key. Each call is one
///   command, atomic on every topology.
///
/// # Blocking pops
///
/// [`blocking_pop`](Self::blocking_pop) waits until one of `keys` has a
/// value (checked in the order given) or `timeout` passes (`Ok(None)`).
/// `timeout` must be above zero and at most [`MAX_BLOCKING_TIMEOUT`].
///
/// * On Redis it never runs on the multiplexed connections every other
///   call shares (a `BLPOP` there would hold up every call behind it): each
///   runs on a connection of its own, from a small pool per store, opened
///   on first use and kept for the next (see
///   [`RedisStore`](crate::RedisStore) for the bound). Waiting for a free
///   one counts against `timeout`; when none frees up in time the call
///   fails with [`KvError::Timeout`]. The whole call is bounded by
///   `timeout` plus the store's `command_timeout`. On a cluster all `keys`
///   must share a slot, else [`KvError::CrossSlot`] before anything is
///   sent.
/// * In memory a waiter sleeps until a push to the database wakes it (no
///   polling).
/// * On both, pops waiting on one key are served in the order they
///   started waiting, and a push hands its values to them before any
///   later command can take them (as Redis serves blocked clients right
///   after the command that pushed; after the whole transaction, for a
///   [`Transaction`](crate::store::Transaction)).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use kv_module::{KvStore, MemoryStore};
/// use kv_module::store::End;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("jobs", "app"));
/// let worker = {
///     let store = Arc::clone(&store);
///     tokio::spawn(async move {
///         store.lists().blocking_pop(&["queue"], End::Front, Duration::from_secs(5)).await
///     })
/// };
/// store.lists().push("queue", End::Back, &[b"job-1", b"job-2"]).await?;
/// let popped = worker.await.expect("worker")?;
/// assert_eq!(popped, Some(("queue".to_string(), b"job-1".to_vec())));
/// assert_eq!(store.lists().range("queue", 0, -1).await?, vec![b"job-2".to_vec()]);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait KvLists: Send + Sync {
    /// The name of the store these operations belong to (for errors).
    fn store_name(&self) -> &str;

    /// Pushes `values` at `end` of the list at `key` (`LPUSH`/`RPUSH`);
    /// returns the new length.
    async fn push(&self, key: &str, end: End, values: &[&[u8]]) -> Result<u64>;

    /// Pops up to `count` values from `end` (`LPOP`/`RPOP key count`), in
    /// the order popped; empty for a missing key or a `count` of 0 (which
    /// sends nothing).
    async fn pop(&self, key: &str, end: End, count: usize) -> Result<Vec<Vec<u8>>>;

    /// The values from index `start` to `stop`, both included (`LRANGE`);
    /// negative indexes count from the tail (-1 is the last).
    async fn range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Vec<u8>>>;

    /// Number of values (`LLEN`); 0 for a missing key.
    async fn len(&self, key: &str) -> Result<u64>;

    /// Keeps only the values from `start` to `stop` (`LTRIM`, indexes as
    /// in [`range`](Self::range)).
    async fn trim(&self, key: &str, start: i64, stop: i64) -> Result<()>;

    /// Pops one value from `end` of the first of `keys` that has one,
    /// waiting up to `timeout` for one (`BLPOP`/`BRPOP`); returns the key
    /// and the value, or `None` when `timeout` passed first. See the
    /// trait's documentation for how it waits on each backend.
    async fn blocking_pop(
        &self,
        keys: &[&str],
        end: End,
        timeout: Duration,
    ) -> Result<Option<(String, Vec<u8>)>>;
}

/// Checks a blocking pop's arguments: some keys, a timeout above zero and
/// at most [`MAX_BLOCKING_TIMEOUT`].
pub(crate) fn check_blocking(store: &Arc<str>, keys: &[&str], timeout: Duration) -> Result<()> {
    let reason = if keys.is_empty() {
        "a blocking pop needs at least one key"
    } else if timeout.is_zero() {
        "a blocking pop needs a timeout above zero"
    } else if timeout > MAX_BLOCKING_TIMEOUT {
        "a blocking pop may wait at most MAX_BLOCKING_TIMEOUT (1 h)"
    } else {
        return Ok(());
    };
    Err(KvError::InvalidArgument {
        store: store.clone(),
        key: keys.first().map(|key| (*key).to_owned()),
        reason: reason.to_owned(),
    })
}

/// The indexes `start..=stop` of a `len`-long list as Redis resolves them
/// (negative from the tail, clamped), or `None` when empty.
pub(crate) fn resolve_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        start.saturating_add(len)
    } else {
        start
    }
    .max(0);
    let stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop
    }
    .min(len - 1);
    if start > stop || start >= len {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}
