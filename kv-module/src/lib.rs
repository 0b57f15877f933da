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
//! * [`error`]: [`KvError`], the one error type, with context and
//!   [`KvError::is_unavailable`] for fail-open decisions.
//! * [`store`]: the contract ([`KvStore`], [`KvStoreExt`], [`Ttl`],
//!   [`KeyTtl`], [`KeySpace`](store::KeySpace) for prefixing) and the
//!   backends:
//!   * [`store::redis`]: [`RedisStore`] and [`RedisConfig`] over redis-rs
//!     `ConnectionManager`s;
//!   * [`store::memory`]: [`MemoryStore`], [`MemoryConfig`] and
//!     [`MemoryServer`], an in-process server with Redis semantics.
//! * [`secret`]: [`Secret`], a string that never prints.
#![forbid(unsafe_code)]

pub mod error;
pub mod secret;
pub mod store;

pub use error::{KvError, Result};

/// The README's examples, compiled as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
pub use secret::Secret;
pub use store::memory::{MemoryConfig, MemoryServer, MemoryStore};
pub use store::redis::{RedisConfig, RedisStore};
pub use store::{KeyTtl, KvStore, KvStoreExt, Ttl};
