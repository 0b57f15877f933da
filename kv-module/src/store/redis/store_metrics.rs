//! The Redis backend's metrics, emitted through the [`metrics`] facade:
//! the library records, the application installs the exporter (without
//! one, each record is a no-op). Names follow Prometheus conventions.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `kv_store_commands_total` | counter | `store`, `op` | calls made (each store method is one `op`) |
//! | `kv_store_errors_total` | counter | `store`, `op`, `kind` | calls that failed: `timeout`, `connection`, `server` (an error reply), `unavailable` (refused by the open circuit breaker) |
//! | `kv_store_command_duration_seconds` | histogram | `store`, `op` | call latency, deadline and queueing included |
//! | `kv_store_connection_up` | gauge | `store` | 1 while calls are answered, 0 after a lost one until one is answered again |
//! | `kv_store_reconnects_total` | counter | `store` | connection rebuilds (Cluster slot-map refresh, Sentinel failover) |
//! | `kv_store_breaker_open` | gauge | `server` | 1 while the server's circuit breaker is open |
//! | `kv_store_breaker_trips_total` | counter | `server` | times the breaker opened |
//!
//! A store registers the handles of an operation at its first call of it
//! and keeps them (`CallMetrics`): install the recorder before the
//! stores make their first calls (an application does it first thing),
//! or the operations called before will count nowhere.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Calls made.
pub const COMMANDS: &str = "kv_store_commands_total";
/// Calls that failed, by kind.
pub const ERRORS: &str = "kv_store_errors_total";
/// Call latency.
pub const DURATION: &str = "kv_store_command_duration_seconds";
/// Whether the store's calls are answered.
pub const CONNECTION_UP: &str = "kv_store_connection_up";
/// Connection rebuilds.
pub const RECONNECTS: &str = "kv_store_reconnects_total";
/// Whether a server's circuit breaker is open.
pub const BREAKER_OPEN: &str = "kv_store_breaker_open";
/// Times a server's circuit breaker opened.
pub const BREAKER_TRIPS: &str = "kv_store_breaker_trips_total";

/// The per-operation handles of one store's calls, registered with the
/// recorder at an operation's first call and kept: a call then records
/// through two handles under a read lock, where building the labelled
/// keys anew (an allocation each, and the recorder's lookup) cost about
/// a tenth of a microsecond per call even without a recorder.
#[derive(Default)]
pub(crate) struct CallMetrics {
    /// A std lock is fine: held to read or insert handles, never across
    /// an `.await`.
    ops: RwLock<HashMap<&'static str, OpHandles, BuildHasherDefault<OpHasher>>>,
}

/// FNV-1a over an operation's name: the names are a few bytes, chosen by
/// this crate (no input of a user's or the network's), so the default
/// SipHash's protection against chosen keys buys nothing here and cost
/// about 160 instructions a call (callgrind).
#[derive(Default)]
struct OpHasher(u64);

impl Hasher for OpHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct OpHandles {
    commands: metrics::Counter,
    duration: metrics::Histogram,
}

impl CallMetrics {
    /// A call of `op` on `store` that started at `started` ended, failed
    /// with `error` (its kind) or not.
    pub(crate) fn ended(
        &self,
        store: &Arc<str>,
        op: &'static str,
        started: Instant,
        error: Option<&'static str>,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        let known = {
            let ops = self.ops.read().unwrap_or_else(|e| e.into_inner());
            ops.get(op)
                .map(|handles| {
                    handles.commands.increment(1);
                    handles.duration.record(seconds);
                })
                .is_some()
        };
        if !known {
            let handles = OpHandles {
                commands: metrics::counter!(COMMANDS, "store" => Arc::clone(store), "op" => op),
                duration: metrics::histogram!(DURATION, "store" => Arc::clone(store), "op" => op),
            };
            handles.commands.increment(1);
            handles.duration.record(seconds);
            self.ops
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(op)
                .or_insert(handles);
        }
        if let Some(kind) = error {
            metrics::counter!(ERRORS, "store" => Arc::clone(store), "op" => op, "kind" => kind)
                .increment(1);
        }
    }
}

/// The store's calls are answered again (`true`) or one was lost.
pub(crate) fn connection_up(store: &Arc<str>, up: bool) {
    metrics::gauge!(CONNECTION_UP, "store" => Arc::clone(store)).set(if up { 1.0 } else { 0.0 });
}

/// The store rebuilt its connections.
pub(crate) fn reconnected(store: &Arc<str>) {
    metrics::counter!(RECONNECTS, "store" => Arc::clone(store)).increment(1);
}

/// `server`'s breaker opened (`true`) or closed.
pub(crate) fn breaker(server: &Arc<str>, open: bool) {
    metrics::gauge!(BREAKER_OPEN, "server" => Arc::clone(server)).set(if open { 1.0 } else { 0.0 });
    if open {
        metrics::counter!(BREAKER_TRIPS, "server" => Arc::clone(server)).increment(1);
    }
}
