//! The Redis backend (`kvstore_redis`): one server, a Redis Cluster, or a
//! Sentinel-managed primary, in plain text or TLS.
//!
//! * `config`: [`RedisConfig`] and [`RedisMode`], the settings;
//!   `tls`: [`TlsConfig`] and certificate loading.
//! * `topology`: settings checked and resolved into what to connect to.
//! * `connection`: one multiplexed connection (server or cluster) and
//!   opening them, including asking the Sentinels for the primary.
//! * `link`: the live connections, the per-call deadline, and their
//!   repair after a failover.
//! * `blocking`: the dedicated connections of blocking pops.
//! * `breaker`: [`BreakerState`] and the circuit breaker the stores of
//!   one server share: fail at once while it is known to be failing.
//! * `node_map`: which primary of a cluster serves each slot, with its
//!   breaker.
//! * `sentinel_watch`: follows the Sentinels' `+switch-master`
//!   announcements.
//! * `routing`: operations spread over several nodes (cluster `SCAN`,
//!   `set_many` per slot).
//! * `near_cache`: [`NearCacheConfig`], [`NearCacheStats`] and the near
//!   cache itself: hot reads from memory, invalidated by RESP3
//!   `CLIENT TRACKING` (opt-in).
//! * `error_map`: redis-rs errors to [`KvError`](crate::KvError)s.
//! * `store`: [`RedisStore`], the [`KvStore`](crate::KvStore).

mod blocking;
mod breaker;
pub(crate) mod config;
mod connection;
mod core;
mod error_map;
mod hashes;
mod link;
mod lists;
mod near_cache;
mod node_map;
mod routing;
mod sentinel_watch;
mod sets;
mod sorted_sets;
mod store;
pub mod store_metrics;
mod tls;
mod topology;
mod transactions;

pub use breaker::BreakerState;
pub use config::{MAX_POOL_SIZE, RedisConfig, RedisMode};
pub use near_cache::{NearCacheConfig, NearCacheMode, NearCacheStats};
pub use store::RedisStore;
pub use tls::TlsConfig;
pub use transactions::{COMPARE_AND_SET_SCRIPT, TRANSACTION_SCRIPT};
