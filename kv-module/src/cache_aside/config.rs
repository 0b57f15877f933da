//! [`CacheAsideConfig`] (the cache's policy, as configured), [`WriteMode`],
//! [`LeaseConfig`], and [`CacheSettings`] (the same, validated, with the
//! cache's name).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::keys::RecordKeys;
use crate::config::{ConfigError, serde_duration};
use crate::registry::StoreRef;
use crate::store::{MAX_TTL, SlotTag};

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
/// assert!(lease.is_enabled());
/// assert_eq!(lease.ttl(), Duration::from_secs(5));
/// assert!(!LeaseConfig::default().is_enabled());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    #[serde(default)]
    enabled: bool,
    #[serde(default = "default_lease_ttl", with = "serde_duration")]
    ttl: Duration,
    #[serde(default = "default_lease_wait", with = "serde_duration")]
    wait: Duration,
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

    /// Sets how long a lease lives when its holder never releases it (a
    /// crashed process). Default: 5 s. Keep it above a typical load.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets how long a process waits for the lease holder's value before
    /// loading by itself. Default: 2 s.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Whether the lease is used (default false).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The lease's lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The longest wait for another process's load.
    pub fn wait(&self) -> Duration {
        self.wait
    }
}

fn default_lease_ttl() -> Duration {
    DEFAULT_LEASE_TTL
}

fn default_lease_wait() -> Duration {
    DEFAULT_LEASE_WAIT
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
/// with its file position; [`CacheSettings::new`] checks them again for
/// configurations built in code:
///
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
/// assert_eq!(config.jitter(), 0.1);
/// assert_eq!(config.negative_ttl(), Duration::from_secs(30));
/// assert!(config.validate().is_ok());
/// assert!(config.with_jitter(0.8).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "CacheFields")]
pub struct CacheAsideConfig {
    store: StoreRef,
    key_prefix: String,
    ttl: Duration,
    jitter: f64,
    negative_ttl: Duration,
    tombstone_ttl: Duration,
    write_mode: WriteMode,
    lease: LeaseConfig,
}

/// The YAML shape, validated on the way into [`CacheAsideConfig`] so that a bad
/// value is reported with its location.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFields {
    store: StoreRef,
    key_prefix: String,
    #[serde(with = "serde_duration")]
    ttl: Duration,
    #[serde(default = "default_jitter")]
    jitter: f64,
    #[serde(default = "default_negative_ttl", with = "serde_duration")]
    negative_ttl: Duration,
    #[serde(default = "default_tombstone_ttl", with = "serde_duration")]
    tombstone_ttl: Duration,
    #[serde(default)]
    write_mode: WriteMode,
    #[serde(default)]
    lease: LeaseConfig,
}

fn default_jitter() -> f64 {
    DEFAULT_JITTER
}

fn default_negative_ttl() -> Duration {
    DEFAULT_NEGATIVE_TTL
}

fn default_tombstone_ttl() -> Duration {
    DEFAULT_TOMBSTONE_TTL
}

impl TryFrom<CacheFields> for CacheAsideConfig {
    type Error = String;

    fn try_from(fields: CacheFields) -> Result<Self, String> {
        let config = Self {
            store: fields.store,
            key_prefix: fields.key_prefix,
            ttl: fields.ttl,
            jitter: fields.jitter,
            negative_ttl: fields.negative_ttl,
            tombstone_ttl: fields.tombstone_ttl,
            write_mode: fields.write_mode,
            lease: fields.lease,
        };
        config.validate()?;
        Ok(config)
    }
}

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

    /// Sets the random spread of every TTL, as a fraction: each entry lives
    /// `ttl × (1 ± jitter)`, so keys written together do not expire
    /// together. Default: 0.1. `0` turns it off.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the lifetime of a cached "not found". Default: 30 s.
    /// [`Duration::ZERO`] does not cache "not found" at all.
    pub fn with_negative_ttl(mut self, negative_ttl: Duration) -> Self {
        self.negative_ttl = negative_ttl;
        self
    }

    /// Sets how long a write marker and a load ticket live. Default: 10 s.
    /// A load that takes longer than it is returned but not written back
    /// (its ticket is gone), and a write that takes longer lets loads
    /// write back before it ends (its invalidation then deletes what
    /// they wrote).
    pub fn with_tombstone_ttl(mut self, tombstone_ttl: Duration) -> Self {
        self.tombstone_ttl = tombstone_ttl;
        self
    }

    /// Sets what updates do to the cache. Default:
    /// [`WriteMode::Invalidate`].
    pub fn with_write_mode(mut self, write_mode: WriteMode) -> Self {
        self.write_mode = write_mode;
        self
    }

    /// Sets the cross-process lease. Default: disabled.
    pub fn with_lease(mut self, lease: LeaseConfig) -> Self {
        self.lease = lease;
        self
    }

    /// The store the entries live in, resolved by
    /// [`KvCachedRepository::from_registry`](super::KvCachedRepository::from_registry).
    pub fn store(&self) -> &StoreRef {
        &self.store
    }

    /// The key prefix inside the store.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The lifetime of a cached value (before jitter).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The random spread of TTLs, as a fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The lifetime of a cached "not found" (before jitter); zero when not
    /// cached.
    pub fn negative_ttl(&self) -> Duration {
        self.negative_ttl
    }

    /// The lifetime of a write marker and of a load ticket.
    pub fn tombstone_ttl(&self) -> Duration {
        self.tombstone_ttl
    }

    /// What updates do to the cache.
    pub fn write_mode(&self) -> WriteMode {
        self.write_mode
    }

    /// The cross-process lease.
    pub fn lease(&self) -> LeaseConfig {
        self.lease
    }

    /// Checks the rules listed on [`CacheAsideConfig`]; the message says which
    /// field is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
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
    if prefix.is_empty() || prefix.len() > MAX_KEY_PREFIX_LEN || !prefix.bytes().all(allowed) {
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

/// A [`CacheAsideConfig`] that passed validation, with the cache's name (used
/// in logs, errors and metrics): what a [`KvCachedRepository`](super::KvCachedRepository)
/// runs with. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use kv_module::cache_aside::{CacheAsideConfig, CacheSettings};
/// use kv_module::registry::StoreRef;
///
/// let config = CacheAsideConfig::new(StoreRef::new("user_cache"), "user", Duration::from_secs(60));
/// let settings = CacheSettings::new("users", config)?;
/// assert_eq!(settings.name(), "users");
/// assert_eq!(settings.entry_key(&42), "user:{42}");
///
/// let bad = CacheAsideConfig::new(StoreRef::new("user_cache"), "user:", Duration::from_secs(60));
/// assert!(CacheSettings::new("users", bad).is_err());
/// # Ok::<(), kv_module::config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CacheSettings {
    inner: Arc<SettingsInner>,
}

#[derive(Debug)]
struct SettingsInner {
    name: Arc<str>,
    config: CacheAsideConfig,
    /// `{key_prefix}:`, the start of every entry key.
    entry_base: String,
    /// `{key_prefix}~lease:`, the start of every lease key. `~` is not
    /// allowed in a prefix, so no entry of any cache can be a lease.
    lease_base: String,
    /// `{key_prefix}~nf:`, the start of every negative key.
    negative_base: String,
    /// `{key_prefix}~mark:`, the start of every mark key.
    mark_base: String,
    ttl_ms: u64,
    negative_ttl_ms: u64,
    tombstone_ttl_ms: u64,
}

impl CacheSettings {
    /// Validates `config` for the cache named `name`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the cache when `config` breaks a
    /// rule of [`CacheAsideConfig`].
    pub fn new(name: &str, config: CacheAsideConfig) -> Result<Self, ConfigError> {
        config
            .validate()
            .map_err(|message| invalid_config(name, message))?;
        Ok(Self {
            inner: Arc::new(SettingsInner {
                name: Arc::from(name),
                entry_base: format!("{}:", config.key_prefix),
                lease_base: format!("{}~lease:", config.key_prefix),
                negative_base: format!("{}~nf:", config.key_prefix),
                mark_base: format!("{}~mark:", config.key_prefix),
                ttl_ms: millis(config.ttl),
                negative_ttl_ms: millis(config.negative_ttl),
                tombstone_ttl_ms: millis(config.tombstone_ttl),
                config,
            }),
        })
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.inner.name
    }

    /// The validated configuration.
    pub fn config(&self) -> &CacheAsideConfig {
        &self.inner.config
    }

    /// The store key of `key`'s entry: `{key_prefix}:{<key>}`, the key's
    /// `Display` form in braces — its hash tag, so that the entry, its
    /// negative key, its mark and its lease (`{key_prefix}~nf:{<key>}`,
    /// `~mark:`, `~lease:`) share a slot on a Redis Cluster. A key holding `{`, `}` or `\`, or an empty key, is escaped
    /// ([`SlotTag::escaped`]), so every key has its own entry and the tag
    /// is always the whole key.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kv_module::cache_aside::{CacheAsideConfig, CacheSettings};
    /// use kv_module::registry::StoreRef;
    ///
    /// let config = CacheAsideConfig::new(StoreRef::new("user_cache"), "user", Duration::from_secs(60));
    /// let settings = CacheSettings::new("users", config)?;
    /// assert_eq!(settings.entry_key(&"ada@example.com"), "user:{ada@example.com}");
    /// assert_eq!(settings.entry_key(&"a}b"), r"user:{a\)b}");
    /// # Ok::<(), kv_module::config::ConfigError>(())
    /// ```
    pub fn entry_key(&self, key: &impl std::fmt::Display) -> String {
        SlotTag::escaped(&key.to_string()).key(&self.inner.entry_base, "")
    }

    /// The store key of the lease of the entry `entry_key`:
    /// `{key_prefix}~lease:{<key>}`, with the entry's tag.
    pub(crate) fn lease_key(&self, entry_key: &str) -> String {
        self.beside(&self.inner.lease_base, entry_key)
    }

    /// The key of a cached "not found" of the entry `entry_key`:
    /// `{key_prefix}~nf:{<key>}`, with the entry's tag.
    pub(crate) fn negative_key(&self, entry_key: &str) -> String {
        self.beside(&self.inner.negative_base, entry_key)
    }

    /// Every store key of the record at `entry_key` (the lease's only
    /// when the lease is enabled).
    pub(crate) fn record_keys(&self, entry_key: String) -> RecordKeys {
        RecordKeys {
            negative: self.negative_key(&entry_key),
            mark: self.beside(&self.inner.mark_base, &entry_key),
            lease: self
                .inner
                .config
                .lease
                .is_enabled()
                .then(|| self.lease_key(&entry_key)),
            entry: entry_key,
        }
    }

    /// `base` followed by the tag of `entry_key`.
    fn beside(&self, base: &str, entry_key: &str) -> String {
        let tag = entry_key
            .strip_prefix(&self.inner.entry_base)
            .unwrap_or(entry_key);
        format!("{base}{tag}")
    }

    pub(crate) fn ttl_ms(&self) -> u64 {
        self.inner.ttl_ms
    }

    pub(crate) fn negative_ttl_ms(&self) -> u64 {
        self.inner.negative_ttl_ms
    }

    pub(crate) fn tombstone_ttl_ms(&self) -> u64 {
        self.inner.tombstone_ttl_ms
    }

    pub(crate) fn jitter(&self) -> f64 {
        self.inner.config.jitter
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A validation error of a configuration built in code (one read from YAML
/// fails earlier, with its file position).
fn invalid_config(cache: &str, message: String) -> ConfigError {
    ConfigError::InvalidSetting {
        component: cache.to_owned(),
        path: cache.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigLoader;
    use crate::store::key_slot;

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
        assert_eq!(config.lease(), LeaseConfig::default());
        assert_eq!(config.write_mode(), WriteMode::Invalidate);
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

    #[test]
    fn code_errors_name_the_cache() {
        let config = CacheAsideConfig::new(StoreRef::new("s"), "", Duration::from_secs(1));
        let err = CacheSettings::new("users", config).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidSetting { .. }));
        let text = err.to_string();
        assert!(
            text.contains("users") && text.contains("key_prefix"),
            "{text}"
        );
        let config = CacheAsideConfig::new(StoreRef::new("s"), "u", Duration::from_secs(1))
            .with_jitter(f64::NAN);
        assert!(CacheSettings::new("users", config).is_err());
        let config = CacheAsideConfig::new(StoreRef::new("s"), "u", MAX_TTL);
        assert!(
            CacheSettings::new("users", config).is_err(),
            "jitter would exceed MAX_TTL"
        );
        let config = CacheAsideConfig::new(StoreRef::new("s"), "u", MAX_TTL).with_jitter(0.0);
        assert!(CacheSettings::new("users", config).is_ok());
    }

    #[test]
    fn keys() {
        let config = CacheAsideConfig::new(StoreRef::new("s"), "user", Duration::from_secs(1));
        let settings = CacheSettings::new("users", config).unwrap();
        assert_eq!(settings.entry_key(&"a:b"), "user:{a:b}");
        assert_eq!(settings.lease_key("user:{a:b}"), "user~lease:{a:b}");
        let keys = settings.record_keys("user:{a:b}".to_owned());
        assert_eq!(
            (
                keys.entry.as_str(),
                keys.negative.as_str(),
                keys.mark.as_str()
            ),
            ("user:{a:b}", "user~nf:{a:b}", "user~mark:{a:b}")
        );
        assert_eq!(keys.lease, None, "the lease is off by default");
        // Whatever the key holds, all its keys share one slot.
        for key in ["", "}", "a}b", "{x}", "\\", "42"] {
            let entry = settings.entry_key(&key);
            let lease = settings.lease_key(&entry);
            let keys = settings.record_keys(entry.clone());
            for other in [&lease, &keys.negative, &keys.mark] {
                assert_eq!(
                    key_slot(&entry),
                    key_slot(other),
                    "{key:?}: {entry} {other}"
                );
                assert_eq!(
                    key_slot(&format!("app:{entry}")),
                    key_slot(&format!("app:{other}"))
                );
            }
        }
        assert_eq!(settings.ttl_ms(), 1000);
    }
}
