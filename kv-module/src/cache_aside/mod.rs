//! Cache-aside: an application's repository read through a [`KvStore`],
//! safe under concurrency and store outages.
//!
//! The application implements [`Repository`] once for its database (load,
//! update, delete a record); [`CacheAside`] wraps it: `get` reads the cache
//! first and loads on a miss, `update` and `delete` write the repository and
//! then update or invalidate the cache. The policy is a [`CacheConfig`],
//! usually a section of the application's YAML.
//!
//! # Stored layout
//!
//! Entries live in the configured store under `{key_prefix}:{<key>}`: the
//! key's `Display` form in braces. With the store `user_cache` (prefix
//! `users`) and `key_prefix: user`, user 42 is the Redis key
//! `users:user:{42}`, holding JSON with a TTL of `ttl` ± jitter:
//!
//! | entry | JSON | TTL |
//! |---|---|---|
//! | a value | `{"v": {"id": 42, "name": "Ada", …}}` | `ttl` ± jitter |
//! | "not found" | `{"nf": true}` | `negative_ttl` ± jitter |
//! | invalidated | `{"inv": "<random token>"}` | `tombstone_ttl` |
//! | write in progress | `{"w": "<random token>"}` | `tombstone_ttl` |
//!
//! The lease of a key, when enabled, is `{key_prefix}~lease:{<key>}`
//! holding a random token for `lease.ttl`. A key prefix may not contain
//! `:` or `~`, so two caches sharing a store never share a key.
//!
//! The braces make the key the *hash tag* of both names: on a Redis
//! Cluster an entry and its lease always share a slot, so the scripts
//! that touch both (write-back with the lease release, invalidation with
//! the lease) and the poll that reads both in one `MGET` run unchanged.
//! A key holding `{`, `}` or `\` (or an empty key) is escaped inside the
//! braces (`a}b` is `user:{a\)b}`; see
//! [`SlotTag::escaped`](crate::store::SlotTag::escaped)), so the tag is
//! always the whole key and no two keys share an entry.
//!
//! # Guarantees, and how they hold
//!
//! * **One load per key per process.** Concurrent misses of a key join one
//!   load (single-flight). The load runs on its own tokio task, so a caller
//!   that is cancelled neither cancels it for the others nor strands them;
//!   its entry leaves the in-flight map when it ends, however it ends. An
//!   update or delete detaches the flight in progress, so a `get` that
//!   starts after a write returns never joins a load that read the old row.
//! * **Across processes, with the lease** (`lease.enabled`): the process
//!   that wins a `SET NX PX` lease loads and writes back; the others poll
//!   the entry (from every millisecond, backing off to every 25 ms) and take its value, or take the
//!   lease when it is released without one, or load by themselves after
//!   `lease.wait`. An update or delete drops the key's lease with its
//!   invalidation: the load in flight began before the write and will not
//!   be written back, so nobody should wait for it.
//! * **Negative caching.** A load that finds nothing caches `{"nf":true}`
//!   for `negative_ttl` (`0s` turns it off); a negative hit returns
//!   `Ok(None)` without loading. After inserting a record outside the
//!   cache, call [`CacheAside::invalidate`] so its key is not still cached
//!   as missing.
//! * **No stale write-back.** A load writes its value back with a
//!   [`Script`](crate::Script) that compares the entry with what the
//!   loader saw *before* loading, byte for byte, and writes only if it is
//!   unchanged. Every update and delete changes the entry: first to a
//!   write marker `{"w":…}` (which no load may replace), then, after the
//!   repository write, to a tombstone `{"inv":…}` with a fresh random
//!   token (or, in write-through mode, to the new value — only if the
//!   marker is still this writer's; otherwise to a tombstone, since two
//!   writers racing cannot know whose value the database kept last). A
//!   tombstone, not a deletion: "absent" before and "absent" after would
//!   compare equal. Tombstones expire after `tombstone_ttl`, so a load
//!   that took longer than half of it is returned but not written back.
//!   Because the marker goes first, a write cancelled half-way (its
//!   client hung up after the repository write) leaves the marker, never
//!   the old value.
//! * **Store failures never fail a request.** A failed read is a miss that
//!   loads from the repository (single-flight still applies, and the
//!   flight makes no further store calls); for a second after any store
//!   failure, reads skip the store altogether, so that they do not each
//!   wait for a dead server to fail (a Redis client retrying its
//!   connection takes a few hundred milliseconds per call). A failed
//!   write-back only costs a future miss. Updates and deletes always reach the repository. If
//!   the marker was written but the invalidation after the write fails,
//!   the marker keeps readers off the old value until it expires; if even
//!   the marker failed, the old value may be served until its TTL should
//!   the store come back with its data — that case is logged at `warn`.
//!   Every store failure is counted ([`CacheMetrics::store_errors`]); the
//!   first of an outage is logged at `warn`, the recovery at `info`.
//! * **Jitter.** Every TTL is drawn uniformly from `ttl × (1 ± jitter)`
//!   (operating-system randomness), so entries written together expire
//!   apart.
//!
//! # Wiring with shaku
//!
//! `CacheAside<R>` is a shaku component of interface
//! `dyn` [`CachedRepository<R>`]: list it in the module as
//! `CacheAside<YourRepository>`, and build its parameters *before* the
//! module (so that a bad store name or policy is a start-up
//! [`ConfigError`](crate::config::ConfigError), never a panic inside
//! shaku). Handlers then take
//! `shaku_axum::Inject<AppModule, dyn CachedRepository<YourRepository>>`.
//! An application that prefers an interface of its own (`dyn UserCache`)
//! wraps a `CacheAside<R>` in its own component the same way.
//!
//! ```
//! use std::sync::Arc;
//! use kv_module::cache_aside::{CacheAside, CacheConfig, CachedRepository, Repository};
//! use kv_module::config::ConfigLoader;
//! use kv_module::registry::{ServiceRegistry, ServiceTypes};
//! use shaku::{HasComponent, module};
//!
//! /// The application's database of user names.
//! struct Users;
//!
//! impl Repository for Users {
//!     type Key = u64;
//!     type Value = String;
//!     type New = String;
//!     type Update = String;
//!     type Error = std::io::Error;
//!
//!     async fn load(&self, id: &u64) -> Result<Option<String>, std::io::Error> {
//!         Ok((*id == 1).then(|| "Ada".to_owned()))
//!     }
//!     async fn create(&self, name: String) -> Result<(u64, String), std::io::Error> {
//!         Ok((2, name))
//!     }
//!     async fn update(&self, _: &u64, name: String) -> Result<String, std::io::Error> {
//!         Ok(name)
//!     }
//!     async fn delete(&self, _: &u64) -> Result<bool, std::io::Error> {
//!         Ok(true)
//!     }
//! }
//!
//! module! {
//!     AppModule { components = [CacheAside<Users>], providers = [] }
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Caches { users: CacheConfig }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = "
//! services:
//!   user_cache: { type: kvstore_memory, config: { db: 0, prefix: users } }
//! caches:
//!   users: { store: user_cache, key_prefix: user, ttl: 1h, write_mode: write_through }
//! ";
//! let config = ConfigLoader::new().load_str("app.yaml", yaml)?;
//! let registry = ServiceRegistry::build(&config, &ServiceTypes::builtin()).await?;
//! let caches: Caches = config.required_section("caches")?;
//!
//! let cache = CacheAside::from_registry(&registry, "users", caches.users, Arc::new(Users))?;
//! let module = AppModule::builder()
//!     .with_component_parameters::<CacheAside<Users>>(cache.into_parameters())
//!     .build();
//!
//! let users: Arc<dyn CachedRepository<Users>> = module.resolve();
//! assert_eq!(users.get(&1).await?.as_deref(), Some("Ada"));
//! assert_eq!(users.get(&1).await?.as_deref(), Some("Ada"));
//! assert_eq!(users.metrics().hits, 1);
//! // The entry is JSON under `users:user:{1}`.
//! let raw = registry.store("user_cache")?.get_bytes("user:{1}").await?;
//! assert_eq!(raw.as_deref(), Some(&br#"{"v":"Ada"}"#[..]));
//! # Ok(())
//! # }
//! ```
//!
//! # Files
//!
//! `repository.rs` (the application's trait), `cache.rs` (the component),
//! `interface.rs` (its shaku interface), `config.rs` (policy), `entry.rs`
//! (the stored envelope), `single_flight.rs`, `lease.rs`, `scripts.rs`
//! (the atomic write-back, write-through and lease release), `metrics.rs`,
//! `error.rs`, `random.rs` (jitter and tokens).
//!
//! [`KvStore`]: crate::KvStore

mod cache;
mod config;
mod entry;
mod error;
mod interface;
mod lease;
mod metrics;
mod random;
mod repository;
mod scripts;
mod single_flight;

pub use cache::{CacheAside, CacheAsideParameters};
pub use config::{
    CacheConfig, CacheSettings, DEFAULT_JITTER, DEFAULT_LEASE_TTL, DEFAULT_LEASE_WAIT,
    DEFAULT_NEGATIVE_TTL, DEFAULT_TOMBSTONE_TTL, LeaseConfig, MAX_JITTER, MAX_KEY_PREFIX_LEN,
    WriteMode,
};
pub use error::CacheError;
pub use interface::CachedRepository;
pub use metrics::CacheMetrics;
pub use repository::Repository;
