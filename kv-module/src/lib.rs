//! # kv-module
//!
//! Key-value state for Rust web services: one [`KvStore`] contract with a
//! Redis backend ([`RedisStore`], service type `kvstore_redis`) and an
//! in-memory backend ([`MemoryStore`], service type `kvstore_memory`) that
//! behave identically.
//!
//! ```
//! use kv_module::{KvStore, KvStoreExt, MemoryStore, Ttl};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> kv_module::Result<()> {
//! let store = MemoryStore::new("cache", "myapp");
//! store.set("greeting", "hello", Ttl::secs(60)).await?;
//! assert_eq!(store.get::<String>("greeting").await?.as_deref(), Some("hello"));
//! assert_eq!(store.incr_by("hits", 2).await?, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! * [`config`]: YAML service definitions ([`config::ConfigLoader`]),
//!   `${VAR}` expansion and located [`config::ConfigError`]s.
//! * [`error`]: [`KvError`], the one error type, with context and
//!   [`KvError::is_unavailable`] for fail-open decisions.
//! * [`store`]: the contract ([`KvStore`], [`KvStoreExt`], [`Ttl`],
//!   [`KeyTtl`], [`KeySpace`](store::KeySpace) for prefixing), the data
//!   types beside strings, one small object-safe trait each, reached from
//!   the store and with typed (JSON) helpers beside it: [`KvHashes`]
//!   (`store.hashes()`, [`KvHashesExt`]), [`KvLists`] with blocking pops
//!   (`store.lists()`, [`KvListsExt`]), [`KvSets`] with `SSCAN` pages
//!   (`store.sets()`, [`KvSetsExt`]), [`KvSortedSets`]
//!   (`store.sorted_sets()`, [`KvSortedSetsExt`]) and [`KvTransactions`]
//!   (`store.transactions()`: all-or-nothing batches over every type and
//!   compare-and-set `update`, [`KvTransactionsExt`]), atomic
//!   steps ([`Script`], with [`ScriptArgs`] for their `ARGV` and
//!   [`ScriptRun`], the Rust twin's view limited to its `KEYS`), Redis
//!   Cluster slots ([`key_slot`](store::key_slot),
//!   [`SlotTag`](store::SlotTag)) and the backends:
//!   * [`store::redis`]: [`RedisStore`] and [`RedisConfig`] over redis-rs
//!     `ConnectionManager`s;
//!   * [`store::memory`]: [`MemoryStore`], [`MemoryConfig`] and
//!     [`MemoryServer`], an in-process server with Redis semantics.
//! * [`registry`]: [`ServiceTypes`](registry::ServiceTypes) (service types by
//!   name: `kvstore_redis`, `kvstore_memory`, the application's own) and
//!   [`ServiceRegistry`](registry::ServiceRegistry) (the named instances,
//!   their health, and store lookup for dependency injection), failing
//!   with a [`RegistryError`](registry::RegistryError).
//! * [`secret`]: [`Secret`], a string that never prints.
//! * [`Interface`]: the bound of the component interfaces (shaku's).
//! * [`http`]: [`Problem`](http::Problem), `application/problem+json`
//!   responses shared by the components' axum integrations.
//! * The four components share one shape. Each module holds the
//!   component's interface, a trait named for what a handler holds, its
//!   implementation over a [`KvStore`], named `Kv` + the trait's name, and
//!   its configuration, `<Module>Config`, which reads itself from YAML and
//!   validates itself there (errors located at `file:line:col`) or in the
//!   constructor (when built in code); each implementation is built with
//!   `new(store, config)` or `from_registry(&registry, name, config)` and
//!   turned into shaku parameters with `into_parameters()`:
//!
//!   | module | interface | implementation | configuration |
//!   |---|---|---|---|
//!   | [`session`] | [`Sessions`](session::Sessions) (+ the axum extractor) | [`KvSessions`](session::KvSessions) | [`SessionConfig`](session::SessionConfig) |
//!   | [`otp`] | [`OneTimeCodes`](otp::OneTimeCodes) | [`KvOneTimeCodes`](otp::KvOneTimeCodes) | [`OtpConfig`](otp::OtpConfig) |
//!   | [`rate_limit`] | [`RateLimiter`](rate_limit::RateLimiter) (+ the tower layer) | [`KvRateLimiter`](rate_limit::KvRateLimiter) | [`RateLimitConfig`](rate_limit::RateLimitConfig) |
//!   | [`cache_aside`] | [`CachedRepository`](cache_aside::CachedRepository) | [`KvCachedRepository`](cache_aside::KvCachedRepository) (single-flight loads, an optional cross-process lease, negative caching, no stale write-back) | [`CacheAsideConfig`](cache_aside::CacheAsideConfig) |
//!
//! # Features
//!
//! Every feature is on by default, so the README's examples work as
//! written. With `default-features = false` the crate is the [`KvStore`]
//! contract, the memory backend, [`config::ConfigError`] with the duration
//! helpers, [`StoreRef`](registry::StoreRef) and [`Secret`]; each feature
//! adds:
//!
//! | Feature | Adds | Brings |
//! |---|---|---|
//! | `redis` | [`RedisStore`], [`RedisConfig`]: standalone, Sentinel and Cluster; service type `kvstore_redis`; the near cache ([`NearCacheConfig`]) | redis, quick_cache |
//! | `tls` | `tls:` settings and `rediss://` (rustls, ring, webpki roots); implies `redis` | rustls |
//! | `yaml` | [`config::ConfigLoader`], `${VAR}` expansion, [`ServiceRegistry`](registry::ServiceRegistry), [`ServiceTypes`](registry::ServiceTypes), the components' `from_registry` | granit-parser |
//! | `shaku` | the components as shaku `Component`s: `*Parameters`, `into_parameters`; [`Interface`] becomes `shaku::Interface` | shaku |
//! | `axum` | [`http::Problem`], the session extractor ([`CurrentSession`](session::CurrentSession)), the rate-limit layer ([`RateLimitLayer`](rate_limit::RateLimitLayer), [`KeyExtractor`](rate_limit::KeyExtractor)), `IntoResponse` for [`RetryAfter`](otp::RetryAfter) | axum, tower, http |
//! | `session` | [`session`] | http, base64, sha2, subtle, getrandom |
//! | `otp` | [`otp`] | hmac, sha2, base64, subtle, getrandom |
//! | `rate-limit` | [`rate_limit`] | http, ipnet |
//! | `cache-aside` | [`cache_aside`] | getrandom |
//!
//! There is no separate `cluster` feature: Cluster, Sentinel and standalone
//! share one connection, routing and topology path in [`store::redis`], and
//! redis-rs's `cluster-async` adds only `crc16` and `rand` to `redis`.
//! The integration features work together where both are on: `session` +
//! `axum` gives the extractor, `rate-limit` + `axum` the layer, any
//! component + `shaku` its `Component`, any component + `yaml` its
//! `from_registry`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "cache-aside")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache-aside")))]
pub mod cache_aside;
pub mod config;
pub mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http;
mod interface;
#[cfg(feature = "otp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otp")))]
pub mod otp;
#[cfg(feature = "rate-limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "rate-limit")))]
pub mod rate_limit;
pub mod registry;
pub mod secret;
#[cfg(feature = "session")]
#[cfg_attr(docsrs, doc(cfg(feature = "session")))]
pub mod session;
pub mod store;

pub use error::{KvError, Result};
pub use interface::Interface;

/// The README's examples, compiled as doctests so the README stays true.
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The examples of `docs/CONFIGURATION.md`, compiled as doctests.
#[cfg(all(doctest, feature = "yaml", feature = "shaku"))]
#[doc = include_str!("../../docs/CONFIGURATION.md")]
pub struct ConfigurationDoctests;
pub use secret::Secret;
pub use store::memory::{MemoryConfig, MemoryServer, MemoryStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::{
    NearCacheConfig, NearCacheMode, NearCacheStats, RedisConfig, RedisMode, RedisStore,
};
pub use store::{
    KeyTtl, KvHashes, KvHashesExt, KvLists, KvListsExt, KvSets, KvSetsExt, KvSortedSets,
    KvSortedSetsExt, KvStore, KvStoreExt, KvTransactions, KvTransactionsExt, Script, ScriptArgs,
    ScriptOps, ScriptRun, ScriptValue, Ttl,
};
