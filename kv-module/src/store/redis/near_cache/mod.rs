//! The near cache of a [`RedisStore`](crate::RedisStore): hot reads
//! answered from the process's memory, kept correct by Redis's
//! server-assisted client-side caching (RESP3 `CLIENT TRACKING`).
//!
//! # Guarantees
//!
//! * **Opt-in**: only stores with a [`NearCacheConfig`]
//!   (`near_cache:` in YAML) have one; nothing changes for the others.
//!   Standalone, Sentinel and Cluster (tracking per node, `cluster.rs`).
//! * **What is cached**: `get_bytes` and `get_many_bytes` (so the typed
//!   `get`/`get_many` and every component reading through them), values
//!   and missing keys alike (a key of another type is never held). Every
//!   other operation goes to Redis as before, and every command the store
//!   sends on a key (hashes, lists, sets, transactions, scripts included)
//!   drops its local copy.
//! * **What is kept**: a key's second miss within the doorkeeper's memory,
//!   not its first (`admission.rs`): the first is a plain `GET` through
//!   the store's connections, as without a near cache, so a key read once
//!   costs no more than without one and takes no room.
//! * **`get_many` stays one point in time**, as `MGET` is: it answers from
//!   memory only when every key has a local copy and none was invalidated
//!   while they were read; otherwise all its keys are read in one `MGET`
//!   (so a transaction is never seen half applied).
//! * **Other instances' writes**: Redis pushes an invalidation for every
//!   key this store read, whoever changes it (any client, a Lua script,
//!   expiry, eviction, `FLUSHDB`); it is applied before the reply to any
//!   later command on the tracking connection is seen. So a read that
//!   starts after [`RedisStore::sync_near_cache`](crate::RedisStore::sync_near_cache)
//!   returned (one round trip, begun after the other instance's write was
//!   acknowledged) sees that write; without it, the invalidation arrives
//!   about one round trip after the write. On a cluster, redis-rs forwards
//!   pushes through a channel and a task, so the bound is "once the
//!   invalidation arrived" (the round trip plus that hop; `sync` cannot
//!   wait for the hop).
//! * **Own writes**: every write, delete, expire, increment and script of
//!   the store drops the keys it touched once Redis has replied (on error
//!   or timeout too: the outcome is unknown), so a store reads its own
//!   writes at once.
//! * **Lifetime**: a local copy lives at most `min(key's PTTL, ttl)` from
//!   when its read was sent.
//! * **Connection loss**: on a lost tracking connection (on a cluster, any
//!   node's), a failed liveness `PING` (every second, every primary of a
//!   cluster), a changed cluster slot map (checked with it), a repair of
//!   the store's connections (a Sentinel switch, a cluster failover) or a
//!   reconnect, every local copy is dropped, and
//!   reads go to Redis (nothing kept) until tracking is on again.
//! * **Memory**: at most `max_bytes`, keys, values and a fixed per-entry
//!   overhead counted; the least useful copies are evicted first
//!   ([`NearCacheStats`] counts them).
//!
//! # Why our own map rather than redis-rs's `cache-aio`
//!
//! Measured on redis-rs 1.8.1 against Redis 7.0.15
//! (`docs/design/near-cache-research.md`):
//!
//! * `cache-aio` inserts a reply from the caller's task after the driver
//!   has already applied that key's invalidation; Redis sends one
//!   invalidation per read, so the stale value then stays until the client
//!   TTL (30 min by default). Three writers against one reader: **300 of
//!   300** rounds ended stale after quiescing. Ours takes a generation
//!   ticket before sending and inserts only if no invalidation (or flush)
//!   came since (`local_map.rs`); the regression test
//!   `tests/tests/near_cache.rs` runs the same experiment and requires 0.
//! * It bounds the number of entries, not bytes, and builds one cache per
//!   `ConnectionManager` of the pool; ours is one `quick_cache` map per
//!   store with a byte weigher, its bound enforced at every insert.
//! * A plain multiplexed connection keeps serving hits after a disconnect;
//!   ours flushes.
//! * Pushes must be applied inline for the one-round-trip bound: 0 of 3000
//!   `PING`s overtook their invalidation on a `MultiplexedConnection` with
//!   a closure sender, 910 of 3000 through a `ConnectionManager`
//!   (`tracking.rs`).
//! * A hit never touches the network. Measured with `cargo bench -p
//!   kv-module-tests --bench near_cache` (`docs/BENCHMARKS.md`, 2 shared
//!   vCPUs, loopback): 3.3 M hits/s against 8.5 k raw redis-rs `GET`/s on
//!   one task (374×), 3.0 M against 138 k at 50 tasks (23×). A key's
//!   first miss is a plain `GET` (1.04× / 0.95× a plain `get` at 1 / 50
//!   tasks); a later one (`MGET` + `PTTL` through the tracking connection,
//!   after an invalidation or an eviction) 0.91× / 0.64–0.68×, the same
//!   two commands sent raw being 0.68–0.80× a raw `GET` at 50 tasks.
//!
//! # Layout
//!
//! * `admission`: the doorkeeper that keeps a key on its second miss.
//! * `config`: [`NearCacheConfig`] (`max_bytes`, `ttl`, `mode`).
//! * `mode`: [`NearCacheMode`]: default-mode tracking or broadcast, and
//!   what each costs.
//! * `local_map`: the byte-bounded map, the per-key generation check
//!   against the read/invalidate race, and the epoch that flushes in O(1).
//! * `tracking`: the dedicated RESP3 connection, `CLIENT TRACKING ON`,
//!   push handling, the liveness `PING`, reconnect → flush, and the reads
//!   of missed keys (`MGET` + `PTTL` in one pipeline).
//! * `cluster`: tracking per node on a Redis Cluster: misses per slot to
//!   its primary after `CLIENT TRACKING ON`, the slot-map check.
//! * `stats`: [`NearCacheStats`].
//! * `store_hooks`: what `RedisStore` calls: opening with the store, the
//!   reads, and the guard that drops a write's keys after the reply.

mod admission;
mod cluster;
mod config;
mod local_map;
mod mode;
mod stats;
mod store_hooks;
mod tracking;

pub use config::NearCacheConfig;
pub use mode::NearCacheMode;
pub use stats::NearCacheStats;
pub(crate) use store_hooks::ForgetOnDrop;
pub(crate) use tracking::Tracking;
