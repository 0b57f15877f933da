//! [`KvRateLimiter`]: a named policy enforced on a key-value store, and its
//! shaku component.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
#[cfg(feature = "shaku")]
use shaku::Component;

use super::algorithm::{Algorithm, OnStoreError};
#[cfg(feature = "yaml")]
use super::config::RateLimitConfig;
use super::count_batches::CountBatches;
use super::decision::Decision;
use super::denial_memo::{DEFAULT_MAX_KEYS, DenialMemo};
use super::error::RateLimitError;
use super::policy::{NamedPolicy, RateLimitPolicy};
use super::rate_limiter::RateLimiter;
use super::scripts::Reply;
use crate::config::ConfigError;
use crate::error::KvError;
#[cfg(feature = "yaml")]
use crate::registry::{RegistryError, ServiceRegistry};
use crate::store::{KvStore, Script, ScriptArgs};

/// While the store keeps failing, one failure in this many is logged at
/// `warn` (the first of a run always is); the rest at `debug`. An outage
/// under load must not turn into a flood of identical log lines; the
/// counters still count every one.
const WARN_EVERY: u64 = 1_000;

/// Enforces one [`NamedPolicy`] on a key-value store, exactly across any
/// number of application instances sharing that store: each check is one
/// round trip on Redis (a counter pipeline for a fixed-window check of
/// cost 1, one atomic script otherwise; one critical section in memory)
/// using the store's clock. Fixed-window checks of cost 1 of one key in
/// flight together on one instance share a round trip (one `INCRBY` of
/// their number, each check taking its own count), so a busy key costs
/// the store one call per batch.
///
/// Keys are stored as `{policy prefix}:{key}` inside the store's own
/// prefix. Cloning is cheap and clones share the failure counters.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use kv_module::MemoryStore;
/// use kv_module::rate_limit::{Algorithm, RateLimitPolicy, KvRateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new("limits", "rl"));
/// let policy = RateLimitPolicy::new(Algorithm::FixedWindow, 2, Duration::from_secs(60));
/// let limiter = KvRateLimiter::new(store, "api", policy)?;
///
/// assert!(limiter.check("ip:192.0.2.1").await?.allowed);
/// assert!(limiter.check("ip:192.0.2.1").await?.allowed);
/// let third = limiter.check("ip:192.0.2.1").await?;
/// assert!(!third.allowed);
/// assert_eq!(third.remaining, 0);
/// assert!(third.retry_after.is_some());
/// // Other keys have their own quota.
/// assert!(limiter.check("ip:192.0.2.2").await?.allowed);
/// # Ok(())
/// # }
/// ```
///
/// # Dependency injection (shaku)
///
/// `KvRateLimiter` is a shaku [`Component`] of interface
/// `dyn` [`RateLimiter`]. Its two parameters are resolved and validated
/// *before* the module is built, so a bad store name
/// ([`RegistryError`](crate::registry::RegistryError)) or policy
/// ([`ConfigError`]) is a start-up error and never a panic inside shaku:
///
/// ```
/// use std::sync::Arc;
/// use kv_module::rate_limit::{RateLimiter, KvRateLimiter};
/// use shaku::{HasComponent, module};
///
/// module! {
///     AppModule { components = [KvRateLimiter], providers = [] }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let yaml = "
/// services:
///   ratelimit_cache: { type: kvstore_memory, config: { db: 2, prefix: ratelimit } }
/// rate_limit:
///   store: ratelimit_cache
///   policy: { algorithm: gcra, limit: 100, window: 1m, burst: 20 }
/// ";
/// let config = kv_module::config::ConfigLoader::new().load_str("app.yaml", yaml)?;
/// let registry = kv_module::registry::ServiceRegistry::build(
///     &config, &kv_module::registry::ServiceTypes::builtin()).await?;
///
/// let limiter = KvRateLimiter::from_registry(&registry, "api", config.required_section("rate_limit")?)?;
/// let module = AppModule::builder()
///     .with_component_parameters::<KvRateLimiter>(limiter.into_parameters())
///     .build();
/// let limiter: Arc<dyn RateLimiter> = module.resolve();
/// assert!(limiter.check("user:42").await?.allowed);
/// # Ok(())
/// # }
/// ```
///
/// shaku binds one component per interface, so a module holds one
/// `dyn RateLimiter`. Give further policies to their layers directly
/// (`Arc::new(KvRateLimiter::new(..)?)`), or wrap each in an interface of
/// the application's own.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "shaku", derive(Component))]
#[cfg_attr(feature = "shaku", shaku(interface = RateLimiter))]
pub struct KvRateLimiter {
    /// The store holding the policy's keys: resolve it with
    /// [`ServiceRegistry::store_for`](crate::registry::ServiceRegistry::store_for).
    store: Arc<dyn KvStore>,
    /// The validated policy, from [`NamedPolicy::new`].
    policy: NamedPolicy,
    /// How many denied keys are answered from memory at most (see
    /// [`with_denial_memo`](KvRateLimiter::with_denial_memo)).
    memo_keys: usize,
    #[cfg_attr(feature = "shaku", shaku(force_default))]
    counters: Arc<Counters>,
}

/// Store failures seen by a limiter and its clones.
#[derive(Debug, Default)]
struct Counters {
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    /// Whether the last check met a store failure (so the first failure of
    /// a run is logged at `warn`, and the recovery at `info`).
    failing: AtomicBool,
    /// The denials answered from memory, sized on first use.
    denials: OnceLock<DenialMemo>,
    /// The fixed-window counts in flight, batched per key.
    batches: Arc<CountBatches>,
    /// The facade's counters, registered on the first check.
    metrics: OnceLock<Metrics>,
}

/// What a check came to, as counted.
#[derive(Clone, Copy)]
enum Outcome {
    Allowed,
    Denied,
    DeniedFromMemory,
    FailedOpen,
    FailedClosed,
}

/// The limiter's counters in the [`metrics`] facade, registered once (an
/// increment is then one atomic add, or nothing without a recorder):
/// `kv_ratelimit_decisions_total{policy, outcome}` (`allowed`, `denied`,
/// `failed_open`, `failed_closed`; denials from memory included),
/// `kv_ratelimit_memo_denials_total{policy}` (the denials answered from
/// memory) and `kv_ratelimit_failed_open_total{policy}`.
struct Metrics {
    allowed: metrics::Counter,
    denied: metrics::Counter,
    memo_denied: metrics::Counter,
    failed_open: metrics::Counter,
    failed_closed: metrics::Counter,
    failed_open_total: metrics::Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    fn new(policy: &Arc<str>) -> Self {
        let decisions = |outcome: &'static str| metrics::counter!("kv_ratelimit_decisions_total", "policy" => Arc::clone(policy), "outcome" => outcome);
        Self {
            allowed: decisions("allowed"),
            denied: decisions("denied"),
            memo_denied: metrics::counter!("kv_ratelimit_memo_denials_total", "policy" => Arc::clone(policy)),
            failed_open: decisions("failed_open"),
            failed_closed: decisions("failed_closed"),
            failed_open_total: metrics::counter!("kv_ratelimit_failed_open_total", "policy" => Arc::clone(policy)),
        }
    }
}

impl KvRateLimiter {
    /// A limiter enforcing `policy` under `name` on `store`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] when the name or a value of the policy is
    /// invalid (see [`NamedPolicy::new`]).
    pub fn new(
        store: Arc<dyn KvStore>,
        name: impl Into<String>,
        policy: RateLimitPolicy,
    ) -> Result<Self, ConfigError> {
        Ok(Self::from_named(store, NamedPolicy::new(name, policy)?))
    }

    /// The limiter `config` describes, on the store it names in
    /// `registry`; `name` names the policy (and the component in errors).
    ///
    /// # Errors
    ///
    /// [`RegistryError`] for an unknown store or a service that is not a
    /// store, or (wrapping [`ConfigError::InvalidSetting`]) an invalid
    /// policy.
    #[cfg(feature = "yaml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
    pub fn from_registry(
        registry: &ServiceRegistry,
        name: &str,
        config: RateLimitConfig,
    ) -> Result<Self, RegistryError> {
        let store = registry.store_for(name, &config.store)?;
        Ok(Self::new(store, name, config.policy)?)
    }

    /// The shaku parameters that build this limiter inside a module:
    /// `.with_component_parameters::<KvRateLimiter>(limiter.into_parameters())`.
    #[cfg(feature = "shaku")]
    #[cfg_attr(docsrs, doc(cfg(feature = "shaku")))]
    pub fn into_parameters(self) -> KvRateLimiterParameters {
        KvRateLimiterParameters {
            store: self.store,
            policy: self.policy,
            memo_keys: self.memo_keys,
        }
    }

    /// A limiter enforcing an already validated policy on `store`.
    pub fn from_named(store: Arc<dyn KvStore>, policy: NamedPolicy) -> Self {
        Self {
            store,
            policy,
            memo_keys: DEFAULT_MAX_KEYS,
            counters: Arc::default(),
        }
    }

    /// Sets how many denied keys this limiter answers from memory: once a
    /// check of a key is denied, checks of that key (of at least that
    /// cost) are denied without a round trip until the store's
    /// `retry_after` has passed, with the same headers. It never denies
    /// what the store would allow (the module `denial_memo.rs` says why),
    /// and allowed checks always go to the store, so limits stay exact
    /// across instances. Default: 10 000 keys (about 1 MB); 0 sends every
    /// check to the store.
    pub fn with_denial_memo(mut self, max_keys: usize) -> Self {
        self.memo_keys = max_keys;
        self.counters = Arc::default();
        self
    }

    fn denials(&self) -> &DenialMemo {
        self.counters
            .denials
            .get_or_init(|| DenialMemo::new(self.memo_keys))
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        self.policy.name()
    }

    /// The policy.
    pub fn policy(&self) -> &NamedPolicy {
        &self.policy
    }

    /// The store holding the policy's keys.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// The key as stored (inside the store's prefix): `{prefix}:{key}`.
    pub fn stored_key(&self, key: &str) -> String {
        format!("{}:{key}", self.policy.prefix())
    }

    /// One check of cost 1 for `key`. See [`check_cost`](Self::check_cost).
    pub async fn check(&self, key: &str) -> Result<Decision, RateLimitError> {
        self.check_cost(key, 1).await
    }

    /// One check of cost `cost` for `key`: one round trip on Redis (or a
    /// share of one: see the type's documentation). A
    /// denied check consumes nothing (a denied fixed-window check of cost
    /// 1 adds to a counter already at its limit, which changes no later
    /// answer).
    ///
    /// When the store fails, a fail-open policy answers an allowed
    /// decision as if the key were unused (remaining `capacity − cost`,
    /// reset after one window), logs and counts it
    /// ([`failed_open`](Self::failed_open)); a fail-closed policy returns
    /// [`RateLimitError::Store`] and counts it
    /// ([`failed_closed`](Self::failed_closed)).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::InvalidCost`] for a cost of 0 or above the
    /// policy's [`capacity`](NamedPolicy::capacity) (nothing is sent);
    /// [`RateLimitError::Store`] as above.
    pub async fn check_cost(&self, key: &str, cost: u64) -> Result<Decision, RateLimitError> {
        let max = self.policy.capacity();
        if cost == 0 || cost > max {
            return Err(RateLimitError::InvalidCost {
                policy: self.policy.name().to_owned(),
                cost,
                max,
            });
        }
        let sent = Instant::now();
        if let Some(decision) = self.denials().lookup(key, cost, self.policy.limit(), sent) {
            self.record(Outcome::DeniedFromMemory);
            return Ok(decision);
        }
        let stored_key = self.stored_key(key);
        let outcome = if self.policy.algorithm() == Algorithm::FixedWindow && cost == 1 {
            self.count(&stored_key).await
        } else {
            self.run_script(&stored_key, cost).await
        };
        match outcome {
            Ok(reply) => {
                // A plain load first: the hot path stays read-only.
                let failing = &self.counters.failing;
                if failing.load(Ordering::Relaxed) && failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(policy = %self.policy.name(), store = %self.store.name(),
                        "rate limit store answers again");
                }
                let decision = self.decision(reply);
                if !decision.allowed {
                    self.denials().remember(key, cost, sent, &decision);
                }
                Ok(decision)
            }
            Err(error) => self.store_failed(cost, error),
        }
    }

    /// How many checks were let through because the store failed (under a
    /// fail-open policy), by this limiter and its clones.
    pub fn failed_open(&self) -> u64 {
        self.counters.failed_open.load(Ordering::Relaxed)
    }

    /// How many checks were refused because the store failed (under a
    /// fail-closed policy), by this limiter and its clones.
    pub fn failed_closed(&self) -> u64 {
        self.counters.failed_closed.load(Ordering::Relaxed)
    }

    /// A fixed-window check of cost 1, without a script: the counter is
    /// incremented first and compared after
    /// ([`KvStore::incr_by_with_ttl`]: `INCRBY`, `PEXPIRE … NX`, `PTTL`
    /// in one pipeline on Redis). A denied check adds 1 to a counter already at
    /// the limit, which changes no answer; the module
    /// [`scripts`](super::scripts) says why, and why checks of a larger
    /// cost keep the script. Checks of one key in flight at the same time
    /// share one increment (the module `count_batches.rs` says why the
    /// counts stay exact).
    async fn count(&self, stored_key: &str) -> Result<Reply, KvError> {
        let (count, ttl) = self
            .counters
            .batches
            .count(&self.store, stored_key, self.policy.window())
            .await?;
        Ok(Reply::fixed_window_count(
            count,
            ttl,
            self.policy.limit(),
            self.policy.window_ms(),
        ))
    }

    /// One run of the policy's script for a check of `cost`.
    async fn run_script(&self, stored_key: &str, cost: u64) -> Result<Reply, KvError> {
        let (script, numbers) = self.invocation(cost);
        let [first, second, cost] = numbers;
        let args = ScriptArgs::new().uint(first).uint(second).uint(cost);
        let value = self.store.run_script(script, &[stored_key], &args).await?;
        Reply::parse(self.policy.algorithm(), numbers, &value).ok_or_else(|| KvError::Backend {
            store: Arc::from(self.store.name()),
            op: "rate limit script",
            key: Some(stored_key.to_owned()),
            source: format!("unexpected reply {value:?}").into(),
        })
    }

    /// The script and its three `ARGV` for a check of `cost`.
    fn invocation(&self, cost: u64) -> (&'static Script, [u64; 3]) {
        let policy = &self.policy;
        let (first, second) = match policy.algorithm() {
            Algorithm::FixedWindow | Algorithm::SlidingWindow => {
                (policy.limit(), policy.window_ms())
            }
            Algorithm::Gcra => {
                // Rounded up, so rounding can only make the limit stricter.
                let interval = (policy.window_ms() * 1_000).div_ceil(policy.limit());
                (interval, policy.capacity() * interval)
            }
        };
        (policy.algorithm().script(), [first, second, cost])
    }

    /// Counts a check's outcome through the [`metrics`] facade:
    /// `kv_ratelimit_decisions_total{policy, outcome}` with `outcome`
    /// `allowed`, `denied`, `failed_open` or `failed_closed`, and
    /// `kv_ratelimit_failed_open_total{policy}` for the checks let through
    /// because the store failed.
    fn record(&self, outcome: Outcome) {
        let counters = self
            .counters
            .metrics
            .get_or_init(|| Metrics::new(self.policy.shared_name()));
        match outcome {
            Outcome::Allowed => counters.allowed.increment(1),
            Outcome::Denied => counters.denied.increment(1),
            Outcome::DeniedFromMemory => {
                counters.denied.increment(1);
                counters.memo_denied.increment(1);
            }
            Outcome::FailedOpen => {
                counters.failed_open.increment(1);
                counters.failed_open_total.increment(1);
            }
            Outcome::FailedClosed => counters.failed_closed.increment(1),
        }
    }

    fn decision(&self, reply: Reply) -> Decision {
        self.record(if reply.allowed {
            Outcome::Allowed
        } else {
            Outcome::Denied
        });
        Decision {
            allowed: reply.allowed,
            limit: self.policy.limit(),
            remaining: reply.remaining,
            reset_after: Duration::from_millis(reply.reset_ms),
            retry_after: reply.retry_ms.map(Duration::from_millis),
        }
    }

    fn store_failed(&self, cost: u64, error: KvError) -> Result<Decision, RateLimitError> {
        let first = !self.counters.failing.swap(true, Ordering::Relaxed);
        let policy = self.policy.name();
        let store = self.store.name();
        match self.policy.on_store_error() {
            OnStoreError::FailOpen => {
                let n = self.counters.failed_open.fetch_add(1, Ordering::Relaxed) + 1;
                self.record(Outcome::FailedOpen);
                if first || n.is_multiple_of(WARN_EVERY) {
                    tracing::warn!(%policy, %store, error = %error, failed_open = n,
                        "rate limit store failed; letting the request through (fail open)");
                } else {
                    tracing::debug!(%policy, %store, error = %error, failed_open = n,
                        "rate limit store failed; fail open");
                }
                Ok(Decision {
                    allowed: true,
                    limit: self.policy.limit(),
                    remaining: self.policy.capacity() - cost,
                    reset_after: self.policy.window(),
                    retry_after: None,
                })
            }
            OnStoreError::FailClosed => {
                let n = self.counters.failed_closed.fetch_add(1, Ordering::Relaxed) + 1;
                self.record(Outcome::FailedClosed);
                if first || n.is_multiple_of(WARN_EVERY) {
                    tracing::warn!(%policy, %store, error = %error, failed_closed = n,
                        "rate limit store failed; refusing the request (fail closed)");
                }
                Err(RateLimitError::Store {
                    policy: policy.to_owned(),
                    source: error,
                })
            }
        }
    }
}

#[async_trait]
impl RateLimiter for KvRateLimiter {
    fn policy(&self) -> &NamedPolicy {
        &self.policy
    }

    async fn check_cost(&self, key: &str, cost: u64) -> Result<Decision, RateLimitError> {
        KvRateLimiter::check_cost(self, key, cost).await
    }

    fn failed_open(&self) -> u64 {
        KvRateLimiter::failed_open(self)
    }

    fn failed_closed(&self) -> u64 {
        KvRateLimiter::failed_closed(self)
    }
}
