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
//!   [`KeyTtl`], [`KeySpace`](store::KeySpace) for prefixing), atomic
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
//! * [`http`]: [`Problem`](http::Problem), `application/problem+json`
//!   responses shared by the components' axum integrations.
//! * [`session`]: the session manager and its axum extractor.
//! * [`otp`]: the one-time-code service.
//! * [`rate_limit`]: the rate limiter and its tower layer.
//! * [`cache_aside`]: [`CacheAside`](cache_aside::CacheAside), an
//!   application's repository read through a store (single-flight loads,
//!   an optional cross-process lease, negative caching, no stale
//!   write-back).
#![forbid(unsafe_code)]

pub mod cache_aside;
pub mod config;
pub mod error;
pub mod http;
pub mod otp;
pub mod rate_limit;
pub mod registry;
pub mod secret;
pub mod session;
pub mod store;

pub use error::{KvError, Result};

/// The README's examples, compiled as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The examples of `docs/CONFIGURATION.md`, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/CONFIGURATION.md")]
pub struct ConfigurationDoctests;
pub use secret::Secret;
pub use store::memory::{MemoryConfig, MemoryServer, MemoryStore};
pub use store::redis::{RedisConfig, RedisMode, RedisStore};
pub use store::{
    KeyTtl, KvStore, KvStoreExt, Script, ScriptArgs, ScriptOps, ScriptRun, ScriptValue, Ttl,
};
