//! Rate limiting that is exact across every application instance sharing
//! a store, and its axum/tower layer speaking the IETF rate-limit headers.
//!
//! * [`RateLimitPolicy`] / [`NamedPolicy`] (`policy.rs`): a policy from
//!   configuration (`algorithm`, `limit`, `window`, `burst`, `prefix`,
//!   `on_store_error`), validated under its name.
//! * [`Algorithm`], [`OnStoreError`] (`algorithm.rs`): fixed window,
//!   sliding-window counter, GCRA; fail open or closed.
//! * `scripts.rs`: how a check is computed on the store — one round trip
//!   on Redis (one critical section in memory) on the store's clock, so
//!   instances with skewed clocks agree, and every key written has a TTL.
//!   A fixed-window check of cost 1 is a counter
//!   ([`KvStore::incr_by_with_ttl`](crate::KvStore::incr_by_with_ttl):
//!   `INCRBY`, `PEXPIRE … NX`, `PTTL` in one pipeline), incremented first and
//!   compared after, which changes no answer (`scripts.rs` proves it);
//!   every other check is one atomic [`Script`](crate::store::Script)
//!   (`EVALSHA`) that writes nothing when it denies.
//! * `count_batches.rs`: fixed-window checks of one key in flight at the
//!   same time on one instance share one `INCRBY` of their number, each
//!   taking its own count from the result, so a busy key costs one round
//!   trip per batch and the counts stay exact across instances.
//!
//! # Redis version
//!
//! Redis 7.0 or later: a fixed-window check of cost 1 sends
//! `PEXPIRE … NX`, which older servers refuse; there every such check
//! fails (a store failure, open or closed as configured) with an error
//! saying Redis 7.0 is needed. The other checks are scripts.
//!
//! * [`KvRateLimiter`] (`limiter.rs`): the limiter and shaku component;
//!   [`RateLimiter`] (`interface.rs`): its interface. [`Decision`]
//!   (`decision.rs`) is a check's answer, [`RateLimitError`] (`error.rs`)
//!   the failure to give one.
//! * [`KeyExtractor`] (`key_extractor.rs`) and [`TrustedProxies`]
//!   (`trusted_proxies.rs`): who a request counts against — peer IP,
//!   forwarded IP from trusted proxies only, the authenticated user, any
//!   closure, or a combination.
//! * [`RateLimitLayer`] (`layer.rs`) and the header helpers
//!   (`headers.rs`).
//!
//! # Wiring
//!
//! Policies live in the application's configuration; the store they count
//! in is a named `kvstore_*` service. Build each [`KvRateLimiter`] before
//! the module and router — from a [`RateLimitConfig`] section with
//! [`KvRateLimiter::from_registry`], and into a DI module with
//! [`KvRateLimiter::into_parameters`], as the other components are — so
//! every mistake is a start-up error — see
//! [`KvRateLimiter`] for the shaku wiring and [`RateLimitLayer`] for the
//! router. For example:
//!
//! ```yaml
//! services:
//!   ratelimit_cache: { type: kvstore_redis, config: { addr: localhost:6379, db: 2, prefix: ratelimit } }
//! rate_limits:
//!   store: ratelimit_cache
//!   policies:
//!     api:   { algorithm: sliding_window, limit: 100, window: 1m }
//!     login: { algorithm: gcra, limit: 5, window: 1m, burst: 3, on_store_error: fail_closed }
//! ```

mod algorithm;
mod config;
mod count_batches;
mod decision;
mod denial_memo;
mod error;
mod headers;
#[cfg(feature = "axum")]
mod key_extractor;
mod kv_rate_limiter;
#[cfg(feature = "axum")]
mod layer;
mod policy;
mod rate_limiter;
mod scripts;
mod trusted_proxies;

pub use algorithm::{Algorithm, OnStoreError};
pub use config::RateLimitConfig;
pub use decision::Decision;
pub use error::RateLimitError;
pub use headers::{RATELIMIT, RATELIMIT_POLICY, policy_header, rate_limit_header};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use key_extractor::KeyExtractor;
pub use kv_rate_limiter::KvRateLimiter;
#[cfg(feature = "shaku")]
#[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
pub use kv_rate_limiter::KvRateLimiterParameters;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use layer::{MissingKey, RateLimitLayer, RateLimitService};
pub use policy::{MAX_LIMIT, MAX_WINDOW, NamedPolicy, RateLimitPolicy};
pub use rate_limiter::RateLimiter;
pub use trusted_proxies::{ProxyHeader, TrustedProxies};
