//! [`NearCacheConfig`]: the memory bound and the lifetime cap of a Redis
//! store's near cache.

use std::time::Duration;

use serde::Deserialize;

use super::mode::NearCacheMode;

/// Settings of a [`RedisStore`](crate::RedisStore)'s near cache: recent
/// reads kept in the process's memory, dropped the moment Redis reports
/// (RESP3 `CLIENT TRACKING`) that any client changed them. See
/// [`RedisConfig::with_near_cache`](crate::RedisConfig::with_near_cache)
/// and the module documentation of `store::redis::near_cache`.
///
/// ```
/// use std::time::Duration;
/// use kv_module::{NearCacheConfig, RedisConfig};
///
/// let near = NearCacheConfig::new()
///     .with_max_bytes(16 * 1024 * 1024)
///     .with_ttl(Duration::from_secs(10));
/// let config = RedisConfig::new("localhost:6379").with_near_cache(near);
/// assert_eq!(config.near_cache.map(|n| n.max_bytes), Some(16 << 20));
/// assert_eq!(NearCacheConfig::default().max_bytes, 64 << 20);
/// ```
///
/// In YAML, under a `kvstore_redis` service's `config:` (both fields are
/// optional; `near_cache: {}` turns it on with the defaults):
///
/// ```yaml
/// near_cache:
///   enabled: true      # false: no near cache (default true)
///   max_bytes: 64MiB   # or 512KiB, 1GiB, a plain number of bytes
///   ttl: 30s
///   mode: auto         # or broadcast, tracking; see NearCacheMode
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearCacheConfig {
    /// Whether the near cache is on. Default: `true`; `false` keeps the
    /// section but opens the store without a near cache (a switch for an
    /// environment variable: `enabled: ${NEAR_CACHE:true}`).
    pub enabled: bool,
    /// The memory bound of the local copies: keys, values and a fixed
    /// per-entry overhead are counted. Greater than zero. Default: 64 MiB.
    /// Beside it, the filter of the keys that missed once (a key is kept on
    /// its second miss) takes 1/512 of it, between 1 KiB and 1 MiB.
    #[serde(with = "crate::config::serde_byte_size")]
    pub max_bytes: u64,
    /// The longest a local copy may live, even when no invalidation comes
    /// (a copy never outlives the key's Redis TTL either). Greater than
    /// zero. Default: 30 s.
    #[serde(with = "crate::config::serde_duration")]
    pub ttl: Duration,
    /// How Redis reports changes: see [`NearCacheMode`]. Default:
    /// [`Auto`](NearCacheMode::Auto).
    pub mode: NearCacheMode,
}

impl Default for NearCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(30),
            mode: NearCacheMode::Auto,
        }
    }
}

impl NearCacheConfig {
    /// The defaults: 64 MiB, 30 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`enabled`](Self::enabled). Default: `true`.
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets the memory bound in bytes. Default: 64 MiB.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets the longest lifetime of a local copy. Default: 30 s.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets [`mode`](Self::mode). Default: [`NearCacheMode::Auto`].
    #[must_use]
    pub fn with_mode(mut self, mode: NearCacheMode) -> Self {
        self.mode = mode;
        self
    }

    /// The rules a near cache's settings must follow, as a sentence for
    /// the user.
    pub(crate) fn check(&self, cluster: bool) -> Result<(), String> {
        if cluster && self.mode == NearCacheMode::Broadcast {
            return Err(
                "near_cache.mode: broadcast is not available on a Redis Cluster \
                 (a node connection redis-rs reopens would lose its subscription); \
                 use tracking or auto"
                    .into(),
            );
        }
        if self.max_bytes == 0 {
            return Err("near_cache.max_bytes must be greater than zero".into());
        }
        if self.ttl.is_zero() {
            return Err("near_cache.ttl must be greater than zero".into());
        }
        Ok(())
    }
}
