//! Cache-aside: an application's repository read through a [`KvStore`],
//! safe under concurrency and store outages.
//!
//! The application implements [`Repository`] once for its database (load,
//! create, update, delete a record); [`KvCachedRepository`] wraps it: `get` reads
//! the cache first and loads on a miss, `create`, `update` and `delete`
//! write the repository and then update or invalidate the cache. The policy is a [`CacheAsideConfig`],
//! usually a section of the application's YAML.
//!
//! # Stored layout
//!
//! A record's keys live in the configured store beside each other, named
//! after the key's `Display` form in braces. With the store `user_cache`
//! (prefix `users`) and `key_prefix: user`, user 42 is:
//!
//! | key | holds | TTL |
//! |---|---|---|
//! | `users:user:{42}` (the entry) | exactly the value's JSON, `{"id": 42, "name": "Ada", …}` — or nothing | `ttl` ± jitter |
//! | `users:user~nf:{42}` | `1`: a cached "not found" | `negative_ttl` ± jitter |
//! | `users:user~mark:{42}` | `l:<random token>`: the ticket of the loads in flight | `tombstone_ttl` |
//! | `users:user~mark:{42}` | `w:<random token>`: a write in progress | `tombstone_ttl` |
//! | `users:user~lease:{42}` | a random token: the cross-process lease, when enabled | `lease.ttl` |
//!
//! So any other reader of the entry key (another service, `EXISTS`) sees
//! the record as JSON or no key at all: never an envelope, a tombstone or
//! a marker. A key prefix may not contain `:` or `~`, so two caches
//! sharing a store never share a key, and no entry is ever another
//! cache's negative key, mark or lease.
//!
//! The braces make the key the *hash tag* of every name: on a Redis
//! Cluster a record's keys always share a slot, so the scripts that touch
//! several of them and the poll that reads them in one `MGET` run
//! unchanged. A key holding `{`, `}` or `\` (or an empty key) is escaped
//! inside the braces (`a}b` is `user:{a\)b}`; see
//! [`SlotTag::escaped`](crate::store::SlotTag::escaped)), so the tag is
//! always the whole key and no two keys share an entry.
//!
//! # Guarantees, and how they hold
//!
//! * **One load per key per process.** Concurrent misses of a key join one
//!   load (single-flight). The load runs on its own tokio task, so a caller
//!   that is cancelled neither cancels it for the others nor strands them;
//!   its entry leaves the in-flight map when it ends, however it ends. A
//!   create, update or delete detaches the flight in progress, so a `get`
//!   that starts after a write returns never joins a load that read the
//!   old row.
//! * **Across processes, with the lease** (`lease.enabled`): the process
//!   that wins a `SET NX PX` lease loads and writes back; the others poll
//!   the entry and the negative key (from every millisecond, backing off
//!   to every 25 ms) and take the value, or take the lease when it is
//!   released without one, or load by themselves after `lease.wait`. A
//!   write drops the key's lease with its invalidation: the load in flight
//!   began before the write and will not be written back, so nobody
//!   should wait for it.
//! * **Negative caching.** A load that finds nothing caches "not found"
//!   at the negative key for `negative_ttl` (`0s` turns it off); a
//!   negative hit returns `Ok(None)` without loading. Records are created
//!   through [`KvCachedRepository::create`], which clears the key afterwards, so a
//!   new record is never hidden by a "not found" cached before it
//!   existed. ([`KvCachedRepository::invalidate`] is for changes made outside the
//!   cache.)
//! * **No stale write-back.** Before loading, a miss records a *load
//!   ticket* (a random token) in the mark, or shares the one there, in
//!   the same atomic step that reads the entry and the negative key. The
//!   load writes back — with a [`Script`](crate::Script) — only if the
//!   mark still holds that ticket, and uses it up. Every write ends the
//!   tickets: an update or delete first replaces the mark with its write
//!   marker `w:…` (which no ticket matches, and under which no ticket is
//!   taken) and deletes the entry and the negative key, then writes the
//!   repository, then deletes the record's keys (or, in write-through
//!   mode, writes the new value — only if the marker is still its own;
//!   otherwise it deletes the entry, since two writers racing cannot know
//!   whose value the database kept last). A create or an invalidation
//!   deletes the record's keys. A deleted or expired mark never compares
//!   equal to a ticket, so a load that outlives its ticket (`tombstone_ttl`)
//!   is returned but not written back. Because the marker goes first, a
//!   write cancelled half-way (its client hung up after the repository
//!   write) leaves the marker, never the old value.
//! * **A full store** (Redis at `maxmemory` under `noeviction`, which
//!   refuses every `SET` and still runs `DEL`) never leaves a stale value:
//!   a refused write marker is replaced by deleting the entry, the
//!   negative key and the mark (which ends every ticket); a refused
//!   ticket means the load is not written back; a refused write-through
//!   value is deleted instead; invalidation is one `UNLINK`. Reads then go
//!   to the repository until the store has room again.
//! * **Store failures never fail a request.** A failed read is a miss that
//!   loads from the repository (single-flight still applies, and the
//!   flight makes no further store calls); for a second after any store
//!   failure, reads skip the store altogether, so that they do not each
//!   wait for a dead server to fail (a Redis client retrying its
//!   connection takes a few hundred milliseconds per call). A failed
//!   write-back only costs a future miss. Writes always reach the
//!   repository, and wait for the store at most once: when the marker
//!   gets no answer (unreachable, timed out), the invalidation after the
//!   repository write runs on a task of its own. If the marker was
//!   written but the invalidation fails, the marker keeps loads from
//!   writing back until it expires; if even the marker failed, the old
//!   value may be served until its TTL should the store come back with
//!   its data — that case is logged at `warn`. Every store failure is
//!   counted ([`CacheMetrics::store_errors`]); the first of an outage is
//!   logged at `warn`, the recovery at `info`.
//! * **Jitter.** Every TTL of a value or a "not found" is drawn uniformly
//!   from `ttl × (1 ± jitter)` (operating-system randomness), so entries
//!   written together expire apart.
//! * **Every key expires**: each `SET` of the cache carries its TTL.
//!
//! # Wiring with shaku
//!
//! `KvCachedRepository<R>` is a shaku component of interface
//! `dyn` [`CachedRepository<R>`]: list it in the module as
//! `KvCachedRepository<YourRepository>`, and build its parameters *before* the
//! module (so that a bad store name or policy is a start-up
//! [`RegistryError`](crate::registry::RegistryError), never a panic
//! inside shaku). Handlers then take
//! `shaku_axum::Inject<AppModule, dyn CachedRepository<YourRepository>>`.
//! An application that prefers an interface of its own (`dyn UserCache`)
//! wraps a `KvCachedRepository<R>` in its own component the same way.
//!
//! ```
//! use std::sync::Arc;
//! use kv_module::cache_aside::{KvCachedRepository, CacheAsideConfig, CachedRepository, Repository};
//! use kv_module::config::ConfigLoader;
//! use kv_module::registry::{ServiceRegistry, ServiceTypes};
//! use shaku::{HasComponent, module};
//!
//! /// The application's database of user names: Ada is user 1, and the
//! /// next user created is user 2.
//! #[derive(Default)]
//! struct Users { second: std::sync::Mutex<Option<String>> }
//!
//! impl Repository for Users {
//!     type Key = u64;
//!     type Value = String;
//!     type New = String;
//!     type Update = String;
//!     type Error = std::io::Error;
//!
//!     async fn load(&self, id: &u64) -> Result<Option<String>, std::io::Error> {
//!         Ok(match id {
//!             1 => Some("Ada".to_owned()),
//!             2 => self.second.lock().unwrap().clone(),
//!             _ => None,
//!         })
//!     }
//!     async fn create(&self, name: String) -> Result<(u64, String), std::io::Error> {
//!         *self.second.lock().unwrap() = Some(name.clone());
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
//!     AppModule { components = [KvCachedRepository<Users>], providers = [] }
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Caches { users: CacheAsideConfig }
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
//! let repository = Arc::new(Users::default());
//! let cache = KvCachedRepository::from_registry(&registry, "users", caches.users, repository)?;
//! let module = AppModule::builder()
//!     .with_component_parameters::<KvCachedRepository<Users>>(cache.into_parameters())
//!     .build();
//!
//! let users: Arc<dyn CachedRepository<Users>> = module.resolve();
//! assert_eq!(users.get(&1).await?.as_deref(), Some("Ada"));
//! assert_eq!(users.get(&1).await?.as_deref(), Some("Ada"));
//! assert_eq!(users.metrics().hits, 1);
//! // The entry is the value's JSON under `users:user:{1}`, nothing else.
//! let raw = registry.store("user_cache")?.get_bytes("user:{1}").await?;
//! assert_eq!(raw.as_deref(), Some(&br#""Ada""#[..]));
//! // A created record is found at once, even after a cached "not found".
//! assert_eq!(users.get(&2).await?, None);
//! assert_eq!(users.create("Grace".to_owned()).await?, (2, "Grace".to_owned()));
//! assert_eq!(users.get(&2).await?.as_deref(), Some("Grace"));
//! # Ok(())
//! # }
//! ```
//!
//! # Files
//!
//! `repository.rs` (the application's trait), `kv_cached_repository.rs`
//! (the component and its construction), `read.rs` (its read path: `get`,
//! the shared load, the write-back), `write.rs` (its write path: `create`,
//! `update`, `delete`, `invalidate`, the write marker, write-through),
//! `cached_repository.rs` (its shaku interface), `config.rs` (its
//! configuration), `keys.rs` (the store keys' names), `entry.rs` (what they hold, and how a read is
//! classified), `observe.rs` (the look before a load, which takes its
//! ticket), `single_flight.rs`, `lease.rs`, `scripts.rs` (the atomic
//! look, write-back, write marker, write-through and lease release),
//! `metrics.rs`, `error.rs`, `random.rs` (jitter and tokens).
//!
//! [`KvStore`]: crate::KvStore

mod cached_repository;
mod config;
mod entry;
mod error;
mod keys;
mod kv_cached_repository;
mod lease;
mod metrics;
mod observe;
mod random;
mod read;
mod repository;
mod scripts;
mod single_flight;
mod write;

pub use cached_repository::CachedRepository;
pub use config::{
    CacheAsideConfig, DEFAULT_JITTER, DEFAULT_LEASE_TTL, DEFAULT_LEASE_WAIT, DEFAULT_NEGATIVE_TTL,
    DEFAULT_TOMBSTONE_TTL, LeaseConfig, MAX_JITTER, MAX_KEY_PREFIX_LEN, WriteMode,
};
pub use error::CacheError;
pub use keys::CacheKeys;
pub use kv_cached_repository::KvCachedRepository;
#[cfg(feature = "shaku")]
#[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
pub use kv_cached_repository::KvCachedRepositoryParameters;
pub use metrics::CacheMetrics;
pub use repository::Repository;
