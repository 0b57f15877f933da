//! [`BlockingPool`]: the connections a store keeps for blocking pops
//! (`BLPOP`, `BRPOP`), apart from the multiplexed ones every other call
//! shares.
//!
//! A blocking command holds its connection until a value comes or its
//! timeout passes; on a multiplexed connection every call queued behind
//! it would wait as long. So each blocking pop takes a connection of its
//! own for its duration: at most [`BLOCKING_POOL_SIZE`] per store, opened
//! on first use, kept idle for the next pop, and dropped after any error
//! or a passed deadline (its state is then unknown) and after a repair
//! (it may reach a server that is no longer the primary).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::connection::Conn;

/// Blocking pops one store runs at once. A pop that finds them all busy
/// waits for one within its own timeout, then fails with
/// [`KvError::Timeout`](crate::KvError::Timeout).
pub(crate) const BLOCKING_POOL_SIZE: usize = 8;

/// The dedicated connections of one store.
pub(crate) struct BlockingPool {
    /// One per connection in use or idle: bounds both.
    permits: Semaphore,
    /// A std lock is fine: held only to push or pop a handle.
    idle: Mutex<Vec<Conn>>,
}

impl BlockingPool {
    pub(crate) fn new() -> Self {
        Self {
            permits: Semaphore::new(BLOCKING_POOL_SIZE),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The right to use one connection, waiting at most `wait`; `None`
    /// when none freed up in time or the pool is closed.
    pub(crate) async fn acquire(&self, wait: Duration) -> Option<SemaphorePermit<'_>> {
        match tokio::time::timeout(wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }

    /// An idle connection, if one is kept.
    pub(crate) fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps a connection that just answered for the next pop.
    pub(crate) fn put_back(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    /// Drops the idle connections (after a repair, on close).
    pub(crate) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Refuses every later pop and drops the idle connections.
    pub(crate) fn close(&self) {
        self.permits.close();
        self.clear();
    }
}
