//! [`CacheAsideConfig`]: the configuration of
//! [`KvCachedRepository`](super::KvCachedRepository), with its
//! [`WriteMode`] and [`LeaseConfig`].

use std::time::Duration;

use serde::Deserialize;

use crate::config::{deserialize_validated, serde_duration};
use crate::registry::StoreRef;
use crate::store::MAX_TTL;

/// Default jitter: ±10 % of the TTL.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Largest jitter: ±50 % of the TTL.
pub const MAX_JITTER: f64 = 0.5;
/// Default TTL of a cached "not found": 30 seconds.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Default lifetime of a write marker and of a load ticket: 10 seconds.
pub const DEFAULT_TOMBSTONE_TTL: Duration = Duration::from_secs(10);
/// Default lease lifetime: 5 seconds.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);
/// Default longest wait for another process's load: 2 seconds.
pub const DEFAULT_LEASE_WAIT: Duration = Duration::from_secs(2);
/// Longest `key_prefix`, in bytes.
pub const MAX_KEY_PREFIX_LEN: usize = 64;
/// Longest `tombstone_ttl` (markers, tickets), lease and lease wait: one hour. They guard loads
/// and writes in flight; longer values only keep keys uncacheable longer.
const MAX_GUARD: Duration = Duration::from_secs(3600);

/// What an update does to the cache once the repository has it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Remove the cached entry; the next `get` loads the new value. The
    /// default: it never caches a value no reader asked for.
    #[default]
    Invalidate,
    /// Store the value the repository returned, so the next `get` is a
    /// hit. Concurrent writers of one key cannot leave the older value
    /// cached: each write is fenced by a marker (see the
    /// [module documentation](super)).
    WriteThrough,
}

/// The cross-process lease: one loader per key across every process
/// sharing the store, the others waiting for its value.
///
/// ```yaml
/// lease: { enabled: true, ttl: 5s, wait: 2s }
/// ```
///
/// ```
/// use std::time::Duration;
/// use kv_module::cache_aside::LeaseConfig;
///
/// let lease = LeaseConfig::enabled().with_wait(Duration::from_millis(500));
/// assert!(lease.enabled);
/// assert_eq!(lease.ttl, Duration::from_secs(5));
/// assert!(!LeaseConfig::default().enabled);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// Whether the lease is used. Default: `false`.
    pub enabled: bool,
    /// How long a lease lives when its holder never releases it (a
    /// crashed process). Default: 5 s. Keep it above a typical load.
    #[serde(with = "serde_duration")]
    pub ttl: Duration,
    /// How long a process waits for the lease holder's value before
    /// loading by itself. Default: 2 s.
    #[serde(with = "serde_duration")]
    pub wait: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl: DEFAULT_LEASE_TTL,
            wait: DEFAULT_LEASE_WAIT,
        }
    }
}

impl LeaseConfig {
    /// The lease turned on, with the default `ttl` (5 s) and `wait` (2 s).
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// Sets [`ttl`](Self::ttl).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets [`wait`](Self::wait).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

/// The policy of a [`KvCachedRepository`](super::KvCachedRepository): which store, which
/// keys, how long entries live, what writes do, and whether processes
/// share loads. Read from YAML (the application's own section) or built in
/// code.
///
/// ```yaml
/// user_cache:
///   store: user_cache          # the kvstore service (required)
///   key_prefix: user           # entries are `user:{<id>}` inside the store (required)
///   ttl: 1h                    # lifetime of a cached value (required)
///   jitter: 0.1                # ±10 % random spread of every TTL (default 0.1, 0 to 0.5)
///   negative_ttl: 30s          # lifetime of a cached "not found" (default 30s; 0s: not cached)
///   write_mode: invalidate     # or write_through (default invalidate)
///   tombstone_ttl: 10s         # lifetime of a write marker and of a load ticket (default 10s)
///   lease: { enabled: false, ttl: 5s, wait: 2s }
/// ```
///
/// Deserializing checks the rules below, so a bad value fails at start-up
/// with its file position; [`KvCachedRepository::new`](super::KvCachedRepository::new)
/// checks them again for configurations built in code:
///
/// * `store`, `key_prefix` and `ttl` are required;
/// * `key_prefix`: 1 to 64 characters among `A-Z a-z 0-9 _ . -` (no `:`,
///   so two caches on one store never share a key);
/// * `ttl`: at least 1 ms, and with the jitter at most 100 years;
/// * `jitter`: 0 to 0.5;
/// * `negative_ttl`: 0 (not-found is not cached) or 1 ms to 100 years;
/// * `tombstone_ttl`, `lease.ttl`, `lease.wait`: 1 ms to 1 hour.
///
/// ```
/// use std::time::Duration;
/// use kv_module::cache_aside::{CacheAsideConfig, LeaseConfig, WriteMode};
/// use kv_module::registry::StoreRef;
///
/// let config = CacheAsideConfig::new(StoreRef::new("user_cache"), "user", Duration::from_secs(3600))
///     .with_write_mode(WriteMode::WriteThrough)
///     .with_lease(LeaseConfig::enabled());
/// assert_eq!(config.jitter, 0.1);
/// assert_eq!(config.negative_ttl, Duration::from_secs(30));
/// assert!(config.validate().is_ok());
/// assert!(config.with_jitter(0.8).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    default = "CacheAsideConfig::defaults"
)]
#[non_exhaustive]
pub struct CacheAsideConfig {
    /// The store the entries live in, resolved by
    /// [`KvCachedRepository::from_registry`](super::KvCachedRepository::from_registry)
    /// (required).
    pub store: StoreRef,
    /// The key prefix inside the store: entries are `{key_prefix}:{<key>}`
    /// (required).
    pub key_prefix: String,
    /// The lifetime of a cached value, before jitter (required).
    #[serde(with = "serde_duration")]
    pub ttl: Duration,
    /// The random spread of every TTL, as a fraction: each entry lives
    /// `ttl × (1 ± jitter)`, so keys written together do not expire
    /// together. Default: 0.1; `0` turns it off.
    pub jitter: f64,
    /// The lifetime of a cached "not found", before jitter. Default: 30 s;
    /// [`Duration::ZERO`] does not cache "not found" at all.
    #[serde(with = "serde_duration")]
    pub negative_ttl: Duration,
    /// How long a write marker and a load ticket live. Default: 10 s. A
    /// load that takes longer than it is returned but not written back
    /// (its ticket is gone), and a write that takes longer lets loads
    /// write back before it ends (its invalidation then deletes what they
    /// wrote).
    #[serde(with = "serde_duration")]
    pub tombstone_ttl: Duration,
    /// What updates do to the cache. Default: [`WriteMode::Invalidate`].
    pub write_mode: WriteMode,
    /// The cross-process lease. Default: disabled.
    pub lease: LeaseConfig,
}

deserialize_validated!(CacheAsideConfig);

impl CacheAsideConfig {
    /// A policy caching values of the store `store` under
    /// `{key_prefix}:{key}` for `ttl`, with every other setting at its
    /// default (jitter 0.1, negative TTL 30 s, markers and tickets 10 s,
    /// [`WriteMode::Invalidate`], no lease).
    pub fn new(store: StoreRef, key_prefix: impl Into<String>, ttl: Duration) -> Self {
        Self {
            store,
            key_prefix: key_prefix.into(),
            ttl,
            jitter: DEFAULT_JITTER,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            tombstone_ttl: DEFAULT_TOMBSTONE_TTL,
            write_mode: WriteMode::Invalidate,
            lease: LeaseConfig::default(),
        }
    }

    /// What YAML leaves out (the store, the key prefix and the TTL are
    /// required: their empty defaults fail validation).
    fn defaults() -> Self {
        Self::new(StoreRef::new(""), "", Duration::ZERO)
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`negative_ttl`](Self::negative_ttl).
    pub fn with_negative_ttl(mut self, negative_ttl: Duration) -> Self {
        self.negative_ttl = negative_ttl;
        self
    }

    /// Sets [`tombstone_ttl`](Self::tombstone_ttl).
    pub fn with_tombstone_ttl(mut self, tombstone_ttl: Duration) -> Self {
        self.tombstone_ttl = tombstone_ttl;
        self
    }

    /// Sets [`write_mode`](Self::write_mode).
    pub fn with_write_mode(mut self, write_mode: WriteMode) -> Self {
        self.write_mode = write_mode;
        self
    }

    /// Sets [`lease`](Self::lease).
    pub fn with_lease(mut self, lease: LeaseConfig) -> Self {
        self.lease = lease;
        self
    }

    /// Checks the rules listed on [`CacheAsideConfig`]; the message says which
    /// field is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.store.name().is_empty() {
            return Err("`store` is required: the kvstore service holding the entries".to_owned());
        }
        if self.key_prefix.is_empty() {
            return Err("`key_prefix` is required: the start of the entries' keys".to_owned());
        }
        if self.ttl.is_zero() {
            return Err(
                "`ttl` is required: the lifetime of a cached value, 1ms or more".to_owned(),
            );
        }
        check_key_prefix(&self.key_prefix)?;
        if !(0.0..=MAX_JITTER).contains(&self.jitter) {
            return Err(format!(
                "`jitter` must be between 0 and {MAX_JITTER}, got {}",
                self.jitter
            ));
        }
        let longest = MAX_TTL.div_f64(1.0 + self.jitter);
        if self.ttl < Duration::from_millis(1) || self.ttl > longest {
            return Err(format!(
                "`ttl` must be between 1ms and {longest:?} (100 years with the jitter), got {:?}",
                self.ttl
            ));
        }
        if !self.negative_ttl.is_zero()
            && (self.negative_ttl < Duration::from_millis(1) || self.negative_ttl > longest)
        {
            return Err(format!(
                "`negative_ttl` must be 0s (not cached) or between 1ms and {longest:?}, got {:?}",
                self.negative_ttl
            ));
        }
        check_guard("tombstone_ttl", self.tombstone_ttl)?;
        check_guard("lease.ttl", self.lease.ttl)?;
        check_guard("lease.wait", self.lease.wait)?;
        Ok(())
    }
}

fn check_key_prefix(prefix: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if prefix.len() > MAX_KEY_PREFIX_LEN || !prefix.bytes().all(allowed) {
        return Err(format!(
            "`key_prefix` must be 1 to {MAX_KEY_PREFIX_LEN} characters among A-Z a-z 0-9 _ . -, \
             got `{prefix}`"
        ));
    }
    Ok(())
}

fn check_guard(field: &str, value: Duration) -> Result<(), String> {
    if value < Duration::from_millis(1) || value > MAX_GUARD {
        return Err(format!(
            "`{field}` must be between 1ms and {MAX_GUARD:?}, got {value:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, ConfigLoader};

    fn load(yaml: &str) -> Result<CacheAsideConfig, ConfigError> {
        let config = ConfigLoader::new().load_str("app.yaml", yaml)?;
        Ok(config
            .section::<CacheAsideConfig>("cache")?
            .expect("section"))
    }

    #[test]
    fn yaml_defaults() {
        let config = load("cache: { store: user_cache, key_prefix: user, ttl: 1h }").unwrap();
        assert_eq!(
            config,
            CacheAsideConfig::new(
                StoreRef::new("user_cache"),
                "user",
                Duration::from_secs(3600)
            )
        );
        assert_eq!(config.lease, LeaseConfig::default());
        assert_eq!(config.write_mode, WriteMode::Invalidate);
    }

    #[test]
    fn yaml_every_field() {
        let yaml = "
cache:
  store: user_cache
  key_prefix: user
  ttl: 5m
  jitter: 0.25
  negative_ttl: 0s
  tombstone_ttl: 3s
  write_mode: write_through
  lease: { enabled: true, ttl: 1s, wait: 500ms }
";
        let config = load(yaml).unwrap();
        let expected = CacheAsideConfig::new(
            StoreRef::new("user_cache"),
            "user",
            Duration::from_secs(300),
        )
        .with_jitter(0.25)
        .with_negative_ttl(Duration::ZERO)
        .with_tombstone_ttl(Duration::from_secs(3))
        .with_write_mode(WriteMode::WriteThrough)
        .with_lease(
            LeaseConfig::enabled()
                .with_ttl(Duration::from_secs(1))
                .with_wait(Duration::from_millis(500)),
        );
        assert_eq!(config, expected);
    }

    #[test]
    fn yaml_errors_are_located() {
        for (yaml, needle) in [
            (
                "cache: { store: s, key_prefix: user, ttl: 1h, colour: red }",
                "colour",
            ),
            ("cache: { store: s, key_prefix: user }", "ttl"),
            (
                "cache: { key_prefix: user, ttl: 1h }",
                "`store` is required",
            ),
            ("cache: { store: s, ttl: 1h }", "`key_prefix` is required"),
            (
                "cache: { store: s, key_prefix: user, ttl: 1h, jitter: 0.9 }",
                "jitter",
            ),
            (
                "cache: { store: s, key_prefix: 'a:b', ttl: 1h }",
                "key_prefix",
            ),
            ("cache: { store: s, key_prefix: user, ttl: 0s }", "ttl"),
            (
                "cache: { store: s, key_prefix: user, ttl: 1h, write_mode: later }",
                "write_mode",
            ),
            (
                "cache: { store: s, key_prefix: user, ttl: 1h, lease: { wait: 0s } }",
                "lease.wait",
            ),
            (
                "cache: { store: s, key_prefix: user, ttl: 1h, lease: { on: true } }",
                "on",
            ),
        ] {
            let err = load(yaml).unwrap_err().to_string();
            assert!(err.contains("app.yaml:1:"), "{yaml}: {err}");
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }
}
