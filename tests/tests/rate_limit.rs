//! The rate limiter on every backend (Redis, memory, the shared Redis
//! Cluster of this test binary): exact counts under concurrency and
//! across instances, each algorithm's bursts and steady rates with short
//! real windows, costs, store failures, and one script call per check.
//! Every case ends by scanning the raw keyspace for keys without a TTL.
//!
//! Cases are generic async functions over a [`Backend`],
//! instantiated per backend by `backend_suite!`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kv_module::rate_limit::{
    Algorithm, Decision, KvRateLimiter, OnStoreError, RateLimitError, RateLimitPolicy, RateLimiter,
};
use kv_module::{KeyTtl, KvStore, Script, ScriptValue, Ttl};
use kv_module_tests::backends::RedisBackend;
use kv_module_tests::conformance::Backend;

/// The database the limiter's stores use (so the raw scan sees only them).
const DB: u8 = 2;
/// The limiter stores' prefix.
const PREFIX: &str = "rl";

kv_module_tests::backend_suite! {
    components:
    concurrent_checks_allow_exactly_the_limit,
    two_instances_sharing_the_store_allow_exactly_the_limit,
    fixed_window_is_not_rearmed_by_hits_and_then_resets,
    fixed_window_repairs_a_counter_without_ttl,
    costs_are_weighed_and_denials_consume_nothing,
    sliding_window_weighs_the_previous_window,
    sliding_window_passes_a_steady_rate_under_the_limit,
    sliding_window_reads_the_layout_of_earlier_versions,
    sliding_window_with_a_limit_too_large_to_pack,
    gcra_allows_the_burst_then_the_steady_rate,
    gcra_burst_may_exceed_the_limit,
    gcra_with_an_interval_of_a_fraction_of_a_millisecond,
    gcra_of_one_millisecond_passes_one_check_per_millisecond,
    policies_and_keys_are_isolated,
    fail_open_lets_requests_through_and_counts_them,
    fail_closed_refuses_when_the_store_is_unreachable,
    every_check_is_one_script_call,
    mixed_costs_from_two_instances_spend_exactly_the_limit,
    cancelled_checks_leave_the_others_answered,
    a_check_held_without_being_polled_holds_up_no_other,
}

// ---------------------------------------------------------------------------
// Helpers

async fn store(b: &impl Backend) -> Arc<dyn KvStore> {
    b.store("limits", DB, PREFIX).await
}

fn limiter(store: &Arc<dyn KvStore>, name: &str, policy: RateLimitPolicy) -> KvRateLimiter {
    KvRateLimiter::new(store.clone(), name, policy)
        .unwrap_or_else(|e| panic!("policy `{name}` must be valid: {e}"))
}

fn policy(algorithm: Algorithm, limit: u64, window: Duration) -> RateLimitPolicy {
    RateLimitPolicy::new(algorithm, limit, window)
}

const ALGORITHMS: [Algorithm; 3] = [
    Algorithm::FixedWindow,
    Algorithm::SlidingWindow,
    Algorithm::Gcra,
];

/// `count` checks of `key` spawned at once as tokio tasks, alternating
/// between `limiters` (one per application instance).
fn spawn_checks(
    limiters: &[&KvRateLimiter],
    count: usize,
    key: &'static str,
) -> Vec<tokio::task::JoinHandle<Result<Decision, RateLimitError>>> {
    (0..count)
        .map(|i| {
            let limiter = limiters[i % limiters.len()].clone();
            tokio::spawn(async move { limiter.check(key).await })
        })
        .collect()
}

async fn check(limiter: &KvRateLimiter, key: &str) -> Decision {
    limiter
        .check(key)
        .await
        .unwrap_or_else(|e| panic!("check of `{key}` failed: {e}"))
}

async fn check_cost(limiter: &KvRateLimiter, key: &str, cost: u64) -> Decision {
    limiter
        .check_cost(key, cost)
        .await
        .unwrap_or_else(|e| panic!("check of `{key}` (cost {cost}) failed: {e}"))
}

/// Every key of the limiter's database, with its TTL; fails the test on a
/// key without one (TTL -1). Returns the keys seen.
async fn assert_every_key_expires(b: &impl Backend) -> BTreeMap<String, Duration> {
    let raw = b.store("raw", DB, "").await;
    let keys = raw.keys("*").await.expect("SCAN of the raw keyspace");
    let mut seen = BTreeMap::new();
    for key in keys {
        match raw.ttl(&key).await.expect("TTL of a raw key") {
            KeyTtl::Persistent => panic!("key `{key}` has no TTL"),
            KeyTtl::ExpiresIn(left) => {
                seen.insert(key, left);
            }
            // Expired between the scan and the TTL.
            KeyTtl::Missing => {}
        }
    }
    seen
}

// ---------------------------------------------------------------------------
// Acceptance 1: exact under concurrency, and across instances

/// 200 concurrent checks against a limit of 50: exactly 50 pass, each
/// seeing a distinct remaining count, for every algorithm.
async fn concurrent_checks_allow_exactly_the_limit(b: &mut impl Backend) {
    let store = store(b).await;
    for algorithm in ALGORITHMS {
        let limiter = limiter(
            &store,
            algorithm.as_str(),
            policy(algorithm, 50, Duration::from_secs(60)),
        );
        let tasks = spawn_checks(&[&limiter], 200, "ip:192.0.2.1");
        let mut remaining = BTreeSet::new();
        let mut denied = 0;
        for task in tasks {
            let decision = task.await.expect("task").expect("check");
            if decision.allowed {
                assert!(decision.retry_after.is_none());
                remaining.insert(decision.remaining);
            } else {
                denied += 1;
                assert_eq!(decision.remaining, 0, "{algorithm}");
                assert!(decision.retry_after.is_some(), "{algorithm}");
            }
        }
        assert_eq!(remaining.len(), 50, "{algorithm}: allowed exactly 50");
        assert_eq!(remaining, (0..50).collect(), "{algorithm}: one per count");
        assert_eq!(denied, 150, "{algorithm}");
    }
    let keys = assert_every_key_expires(b).await;
    assert_eq!(keys.len(), 3, "one key per policy: {keys:?}");
    for left in keys.values() {
        assert!(*left <= Duration::from_secs(120), "{keys:?}");
    }
}

/// Checks of one key cancelled at any point (their tasks aborted while
/// they wait for a batch, lead one, or are handed one) leave every other
/// check answered with a count of its own, and the key usable after.
async fn cancelled_checks_leave_the_others_answered(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter = limiter(
        &store,
        "cancelled",
        policy(Algorithm::FixedWindow, 1_000, Duration::from_secs(60)),
    );
    for round in 0..5 {
        let tasks = spawn_checks(&[&limiter], 120, "k");
        // Abort every third task: some before they ran, some in flight.
        for task in tasks.iter().step_by(3) {
            task.abort();
        }
        let mut remaining = BTreeSet::new();
        for task in tasks {
            let finished = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a check never got its answer"));
            match finished {
                Ok(decision) => {
                    let decision = decision.expect("check");
                    assert!(decision.allowed, "round {round}: {decision:?}");
                    assert!(
                        remaining.insert(decision.remaining),
                        "round {round}: two checks got one count: {decision:?}"
                    );
                }
                Err(error) => assert!(error.is_cancelled(), "round {round}: {error}"),
            }
        }
        assert!(remaining.len() >= 80, "round {round}: {}", remaining.len());
        let after = tokio::time::timeout(Duration::from_secs(10), check(&limiter, "k"))
            .await
            .unwrap_or_else(|_| panic!("round {round}: the key is stuck after cancellations"));
        assert!(after.allowed, "{after:?}");
    }
    assert_every_key_expires(b).await;
}

/// A check polled once (sent) and then held without being polled, as a
/// `select!` that let another branch win would hold it, does not hold up
/// later checks of its key: they are counted and answered meanwhile.
async fn a_check_held_without_being_polled_holds_up_no_other(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter = limiter(
        &store,
        "held",
        policy(Algorithm::FixedWindow, 1_000, Duration::from_secs(60)),
    );
    let mut held = std::pin::pin!(limiter.check("k"));
    let first = futures::poll!(held.as_mut());
    let tasks = spawn_checks(&[&limiter], 20, "k");
    let mut remaining = BTreeSet::new();
    for task in tasks {
        let decision = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a check waited for the one held without being polled")
            .expect("task")
            .expect("check");
        assert!(remaining.insert(decision.remaining), "{decision:?}");
    }
    let alone = tokio::time::timeout(Duration::from_secs(10), check(&limiter, "k"))
        .await
        .expect("a later check waited for the held one");
    assert!(remaining.insert(alone.remaining), "{alone:?}");
    let held = match first {
        std::task::Poll::Ready(decision) => decision,
        std::task::Poll::Pending => held.await,
    }
    .expect("the held check, polled again");
    assert!(remaining.insert(held.remaining), "{held:?}");
    assert_eq!(remaining.len(), 22, "every check its own count");
    assert_every_key_expires(b).await;
}

/// Two limiter instances over two store connections (two application
/// processes) with the same policy share the quota: exactly 50 in total.
async fn two_instances_sharing_the_store_allow_exactly_the_limit(b: &mut impl Backend) {
    let first_store = store(b).await;
    let second_store = store(b).await;
    for algorithm in ALGORITHMS {
        let name = algorithm.as_str();
        let window = Duration::from_secs(60);
        let first = limiter(&first_store, name, policy(algorithm, 50, window));
        let second = limiter(&second_store, name, policy(algorithm, 50, window));
        let tasks = spawn_checks(&[&first, &second], 200, "user:7");
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.expect("task").expect("check").allowed);
        }
        assert_eq!(allowed, 50, "{algorithm}: exactly 50 across both instances");
    }
    assert_every_key_expires(b).await;
}

/// Two instances, concurrent checks of cost 1 (a fixed window counts them
/// without a script, incrementing first: a denied one adds 1 to a counter
/// already at the limit) and of cost 3 (a script), most of them denied:
/// together they never pass more than the limit, and a denial never
/// takes anything. Afterwards the rest of the quota, checked one at a
/// time, passes in full: the allowed costs add up to exactly the limit.
/// Every key keeps a TTL throughout.
async fn mixed_costs_from_two_instances_spend_exactly_the_limit(b: &mut impl Backend) {
    const LIMIT: u64 = 60;
    let first_store = store(b).await;
    let second_store = store(b).await;
    for algorithm in ALGORITHMS {
        let name = algorithm.as_str();
        // An hour: no GCRA refill and no sliding-window boundary during
        // the test.
        let window = Duration::from_secs(3_600);
        let first =
            limiter(&first_store, name, policy(algorithm, LIMIT, window)).with_denial_memo(0);
        let second =
            limiter(&second_store, name, policy(algorithm, LIMIT, window)).with_denial_memo(0);
        let tasks: Vec<_> = (0..400_u64)
            .map(|i| {
                let limiter = if i % 2 == 0 {
                    first.clone()
                } else {
                    second.clone()
                };
                let cost = if i % 5 == 0 { 3 } else { 1 };
                tokio::spawn(async move { (cost, limiter.check_cost("mixed", cost).await) })
            })
            .collect();
        let mut spent = 0;
        for task in tasks {
            let (cost, decision) = task.await.expect("task");
            let decision = decision.expect("check");
            if decision.allowed {
                spent += cost;
            } else {
                assert!(decision.remaining < cost, "{algorithm}: {decision:?}");
                assert!(decision.retry_after.is_some(), "{algorithm}: {decision:?}");
            }
        }
        assert!(spent <= LIMIT, "{algorithm}: {spent} allowed of {LIMIT}");
        // Nothing was lost to the denials: the rest passes, one by one.
        let mut rest = 0;
        loop {
            let decision = check(if rest % 2 == 0 { &first } else { &second }, "mixed").await;
            if !decision.allowed {
                break;
            }
            rest += 1;
            assert_eq!(decision.remaining, LIMIT - spent - rest, "{algorithm}");
        }
        assert_eq!(
            spent + rest,
            LIMIT,
            "{algorithm}: exactly the limit in total"
        );
        let keys = assert_every_key_expires(b).await;
        let key = format!("{PREFIX}:{name}:mixed");
        assert!(keys.contains_key(&key), "{algorithm}: {key} in {keys:?}");
    }
}

// ---------------------------------------------------------------------------
// Acceptance 2 and 3: algorithms with short real windows; TTLs

/// Hits inside a fixed window never push its end back; once it has passed
/// the quota is whole again.
async fn fixed_window_is_not_rearmed_by_hits_and_then_resets(b: &mut impl Backend) {
    let store = store(b).await;
    let window = Duration::from_millis(400);
    let limiter = limiter(&store, "fixed", policy(Algorithm::FixedWindow, 3, window));
    let first = check(&limiter, "k").await;
    assert!(first.allowed);
    assert_eq!(first.remaining, 2);
    assert!(first.reset_after <= window);

    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = check(&limiter, "k").await;
    assert!(second.allowed);
    assert!(
        second.reset_after <= Duration::from_millis(250),
        "a hit must not re-arm the window: {second:?}"
    );
    let keys = assert_every_key_expires(b).await;
    let left = keys.get("rl:fixed:k").copied().expect("the counter key");
    assert!(left <= Duration::from_millis(250), "TTL re-armed: {left:?}");

    assert!(check(&limiter, "k").await.allowed);
    let denied = check(&limiter, "k").await;
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    let retry = denied.retry_after.expect("retry_after when denied");
    assert!(retry <= Duration::from_millis(250), "{denied:?}");
    assert_eq!(retry, denied.reset_after);

    tokio::time::sleep(retry + Duration::from_millis(5)).await;
    let fresh = check(&limiter, "k").await;
    assert!(fresh.allowed, "a new window: {fresh:?}");
    assert_eq!(fresh.remaining, 2);
    assert!(fresh.reset_after > Duration::from_millis(300), "{fresh:?}");
    assert_every_key_expires(b).await;
}

/// A counter left without a TTL (written by hand, or by an older version)
/// gets one on its next check, allowed or denied.
async fn fixed_window_repairs_a_counter_without_ttl(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter = limiter(
        &store,
        "fixed",
        policy(Algorithm::FixedWindow, 5, Duration::from_secs(30)),
    );
    let raw = b.store("raw", DB, "").await;
    for (key, planted, allowed) in [("low", b"1", true), ("high", b"9", false)] {
        raw.set_bytes(&format!("rl:fixed:{key}"), planted, Ttl::Never)
            .await
            .expect("plant a persistent counter");
        let decision = check(&limiter, key).await;
        assert_eq!(decision.allowed, allowed, "{key}: {decision:?}");
        assert_eq!(decision.reset_after, Duration::from_secs(30));
    }
    let keys = assert_every_key_expires(b).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
}

/// Costs count as that many requests; a denied check (a cost that does not
/// fit) takes nothing; a cost of 0 or above the capacity is an error.
async fn costs_are_weighed_and_denials_consume_nothing(b: &mut impl Backend) {
    let store = store(b).await;
    for algorithm in ALGORITHMS {
        let limiter = limiter(
            &store,
            algorithm.as_str(),
            policy(algorithm, 10, Duration::from_secs(60)),
        );
        let d = check_cost(&limiter, "k", 4).await;
        assert!(d.allowed && d.remaining == 6, "{algorithm}: {d:?}");
        let d = check_cost(&limiter, "k", 7).await;
        assert!(!d.allowed && d.remaining == 6, "{algorithm}: {d:?}");
        let d = check_cost(&limiter, "k", 6).await;
        assert!(d.allowed && d.remaining == 0, "{algorithm}: {d:?}");
        let d = check(&limiter, "k").await;
        assert!(!d.allowed && d.remaining == 0, "{algorithm}: {d:?}");
        assert_eq!(d.limit, 10);
        for cost in [0, 11] {
            let err = limiter.check_cost("k", cost).await.unwrap_err();
            assert!(
                matches!(err, RateLimitError::InvalidCost { cost: c, max: 10, .. } if c == cost),
                "{algorithm}: {err:?}"
            );
        }
    }
    assert_every_key_expires(b).await;
}

/// Sliding window (600 ms, 10): a burst of 10 fills the window; half-way
/// through the next window the previous count weighs half, so about 5
/// more pass — exactly as many as the weighting allows at the instant of
/// each check, which the check's own `reset_after` reveals; two windows
/// later the whole quota is back.
async fn sliding_window_weighs_the_previous_window(b: &mut impl Backend) {
    let store = store(b).await;
    let window = Duration::from_millis(600);
    let w = 600_u64;
    let limiter = limiter(
        &store,
        "sliding",
        policy(Algorithm::SlidingWindow, 10, window),
    );

    for expected in (0..10).rev() {
        let d = check(&limiter, "k").await;
        assert!(d.allowed && d.remaining == expected, "{d:?}");
    }
    let denied = check(&limiter, "k").await;
    assert!(!denied.allowed, "{denied:?}");
    // With 10 in the current window, the next check fits once the next
    // window is a tenth gone: the rest of this window plus 60 ms.
    let weight = denied.reset_after.as_millis() as u64 - w;
    assert_eq!(
        denied.retry_after,
        Some(Duration::from_millis(weight + w / 10)),
        "{denied:?}"
    );

    // Into the next window by 330 ms: the previous 10 weigh 10 × 270/600.
    // (A key's windows start at its first check, on the store's clock;
    // `weight` was the rest of the first one, less the time since.)
    tokio::time::sleep(Duration::from_millis(weight + 330)).await;
    let mut allowed = 0;
    loop {
        let d = check(&limiter, "k").await;
        if !d.allowed {
            break;
        }
        allowed += 1;
        // reset_after = (rest of this window) + one window.
        let weight = d.reset_after.as_millis() as u64 - w;
        let used = 10 * weight + allowed * w; // scaled by the window
        assert_eq!(d.remaining, (10 * w - used) / w, "{d:?}");
        assert!(allowed <= 10, "unbounded");
    }
    assert!(
        (3..=7).contains(&allowed),
        "about half of the quota passes half-way through: {allowed}"
    );

    // Two windows on, nothing weighs any more.
    tokio::time::sleep(2 * window).await;
    for _ in 0..10 {
        assert!(check(&limiter, "k").await.allowed);
    }
    assert!(!check(&limiter, "k").await.allowed);
    assert_every_key_expires(b).await;
}

/// A steady rate at half the limit is never refused by the sliding
/// window, across window boundaries.
async fn sliding_window_passes_a_steady_rate_under_the_limit(b: &mut impl Backend) {
    let store = store(b).await;
    let window = Duration::from_millis(400);
    let limiter = limiter(
        &store,
        "steady",
        policy(Algorithm::SlidingWindow, 10, window),
    );
    // 5 per window: one every 80 ms, for three windows.
    for i in 0..15 {
        let d = check(&limiter, "k").await;
        assert!(d.allowed, "request {i} at half the rate: {d:?}");
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    assert_every_key_expires(b).await;
}

/// A key written by a version that kept the window's index in the value
/// (`index:current:previous`, the same expiry) is read as this version's:
/// 9 counted in a window with 300 ms left leave one, and the key is
/// rewritten in this layout (both counts in one integer, `current × 2^26 +
/// previous`) with its expiry kept.
async fn sliding_window_reads_the_layout_of_earlier_versions(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter = limiter(
        &store,
        "sliding_old",
        policy(Algorithm::SlidingWindow, 10, Duration::from_secs(60)),
    );
    let raw = b.store("raw", DB, "").await;
    let key = "rl:sliding_old:k";
    raw.set_bytes(
        key,
        b"29748200:9:0",
        Ttl::After(Duration::from_millis(60_300)),
    )
    .await
    .expect("plant a state of the earlier layout");
    let d = check(&limiter, "k").await;
    assert!(d.allowed && d.remaining == 0, "{d:?}");
    assert!(d.reset_after <= Duration::from_millis(60_300), "{d:?}");
    assert!(!check(&limiter, "k").await.allowed);
    let state = raw.get_bytes(key).await.expect("read the state");
    let packed = (10_u64 << 26).to_string();
    assert_eq!(state.as_deref(), Some(packed.as_bytes()));
    let keys = assert_every_key_expires(b).await;
    assert!(keys[key] <= Duration::from_millis(60_300), "{keys:?}");
}

/// A limit of 2^25 or more keeps the sliding window's counts as text
/// (`0:current:previous`): costs are weighed exactly there too, and a key
/// of the packed layout (the policy's limit raised while it lived) reads
/// as its counts.
async fn sliding_window_with_a_limit_too_large_to_pack(b: &mut impl Backend) {
    let store = store(b).await;
    let limit = 40_000_000;
    let limiter = limiter(
        &store,
        "sliding_big",
        policy(Algorithm::SlidingWindow, limit, Duration::from_secs(60)),
    );
    let d = check_cost(&limiter, "k", 20_000_000).await;
    assert!(d.allowed && d.remaining == 20_000_000, "{d:?}");
    assert!(!check_cost(&limiter, "k", 20_000_001).await.allowed);
    let d = check_cost(&limiter, "k", 20_000_000).await;
    assert!(d.allowed && d.remaining == 0, "{d:?}");
    let raw = b.store("raw", DB, "").await;
    let state = raw
        .get_bytes("rl:sliding_big:k")
        .await
        .expect("read the state");
    assert_eq!(state.as_deref(), Some(&b"0:40000000:0"[..]));

    // A packed key: 39,999,999 counted in this window.
    let packed = (39_999_999_u64 << 26).to_string();
    raw.set_bytes(
        "rl:sliding_big:p",
        packed.as_bytes(),
        Ttl::After(Duration::from_millis(60_300)),
    )
    .await
    .expect("plant a packed state");
    let d = check(&limiter, "p").await;
    assert!(d.allowed && d.remaining == 0, "{d:?}");
    assert!(!check(&limiter, "p").await.allowed);
    assert_every_key_expires(b).await;
}

/// GCRA (10 per second, so one per 100 ms; burst 5): 5 pass at once, the
/// sixth must wait one interval; then one passes per interval; after an
/// idle period as long as `reset_after` the full burst is back.
async fn gcra_allows_the_burst_then_the_steady_rate(b: &mut impl Backend) {
    let store = store(b).await;
    let interval = Duration::from_millis(100);
    let limiter = limiter(
        &store,
        "gcra",
        policy(Algorithm::Gcra, 10, Duration::from_secs(1)).with_burst(5),
    );
    for expected in (0..5).rev() {
        let d = check(&limiter, "k").await;
        assert!(d.allowed && d.remaining == expected, "{d:?}");
        assert_eq!(d.limit, 10);
    }
    let denied = check(&limiter, "k").await;
    assert!(!denied.allowed, "{denied:?}");
    let retry = denied.retry_after.expect("retry_after");
    assert!(retry > Duration::ZERO && retry <= interval, "{denied:?}");
    assert!(
        denied.reset_after <= Duration::from_millis(500),
        "{denied:?}"
    );

    tokio::time::sleep(retry).await;
    assert!(check(&limiter, "k").await.allowed, "one interval later");
    assert!(!check(&limiter, "k").await.allowed, "but only one");

    // The steady rate: a request every interval always passes. Each sleep
    // starts after the previous answer, so the store's clock has moved on
    // by at least one interval between two checks.
    for i in 0..10 {
        tokio::time::sleep(interval).await;
        let d = check(&limiter, "k").await;
        assert!(d.allowed, "steady request {i}: {d:?}");
    }

    let last = check(&limiter, "k").await;
    tokio::time::sleep(last.reset_after).await;
    for expected in (0..5).rev() {
        let d = check(&limiter, "k").await;
        assert!(d.allowed && d.remaining == expected, "refilled: {d:?}");
    }
    assert!(!check(&limiter, "k").await.allowed);
    let keys = assert_every_key_expires(b).await;
    let left = keys.get("rl:gcra:k").copied().expect("the GCRA key");
    assert!(
        left <= Duration::from_millis(500),
        "TTL is the refill horizon: {left:?}"
    );
}

/// A GCRA burst larger than the limit: that many pass at once, and the
/// refill is still `limit` per window.
async fn gcra_burst_may_exceed_the_limit(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter = limiter(
        &store,
        "gcra_big",
        policy(Algorithm::Gcra, 2, Duration::from_millis(400)).with_burst(6),
    );
    let mut allowed = 0;
    while check(&limiter, "k").await.allowed {
        allowed += 1;
        assert!(allowed <= 6);
    }
    assert_eq!(allowed, 6);
    // 2 per 400 ms: one token per 200 ms.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(check(&limiter, "k").await.allowed);
    assert!(!check(&limiter, "k").await.allowed);
    assert_every_key_expires(b).await;
}

/// GCRA with an emission interval that is not a whole number of
/// milliseconds (3 per second: 333,334 µs; burst 3), which keeps the
/// TAT's microseconds in the key's value: the burst passes, the next one
/// waits at most one interval, and then exactly one passes.
async fn gcra_with_an_interval_of_a_fraction_of_a_millisecond(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter = limiter(
        &store,
        "gcra_fraction",
        policy(Algorithm::Gcra, 3, Duration::from_secs(1)).with_burst(3),
    );
    for expected in (0..3).rev() {
        let d = check(&limiter, "k").await;
        assert!(d.allowed && d.remaining == expected, "{d:?}");
    }
    let denied = check(&limiter, "k").await;
    let retry = denied.retry_after.expect("denied, with retry_after");
    assert!(
        !denied.allowed && retry > Duration::ZERO && retry <= Duration::from_millis(334),
        "{denied:?}"
    );
    tokio::time::sleep(retry).await;
    assert!(check(&limiter, "k").await.allowed, "one interval later");
    assert!(!check(&limiter, "k").await.allowed, "but only one");
    let keys = assert_every_key_expires(b).await;
    assert!(
        keys["rl:gcra_fraction:k"] <= Duration::from_millis(1_001),
        "{keys:?}"
    );
}

/// GCRA at 1,000 per second with a burst of 1 (one check per
/// millisecond): checks sent back to back pass at most one per
/// millisecond elapsed (plus one for the boundaries). The memory
/// backend's expiries fall between milliseconds; read rounded down, each
/// check lost up to a millisecond of the TAT and every check passed.
async fn gcra_of_one_millisecond_passes_one_check_per_millisecond(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter = limiter(
        &store,
        "gcra_ms",
        policy(Algorithm::Gcra, 1_000, Duration::from_secs(1)).with_burst(1),
    )
    .with_denial_memo(0);
    let started = std::time::Instant::now();
    let mut allowed = 0_u128;
    for _ in 0..50 {
        allowed += u128::from(check(&limiter, "k").await.allowed);
    }
    let elapsed = started.elapsed().as_millis();
    assert!(
        allowed >= 1 && allowed <= elapsed + 2,
        "{allowed} of 50 passed in {elapsed} ms"
    );
    assert_every_key_expires(b).await;
}

/// Policies count apart (their prefixes differ) and so do keys.
async fn policies_and_keys_are_isolated(b: &mut impl Backend) {
    let store = store(b).await;
    let one = limiter(
        &store,
        "one",
        policy(Algorithm::FixedWindow, 1, Duration::from_secs(60)),
    );
    let two = limiter(
        &store,
        "two",
        policy(Algorithm::FixedWindow, 1, Duration::from_secs(60)).with_prefix("custom"),
    );
    assert!(check(&one, "k").await.allowed);
    assert!(!check(&one, "k").await.allowed);
    assert!(check(&two, "k").await.allowed);
    assert!(check(&one, "other").await.allowed);
    let keys = assert_every_key_expires(b).await;
    let names: Vec<&str> = keys.keys().map(String::as_str).collect();
    assert_eq!(names, ["rl:custom:k", "rl:one:k", "rl:one:other"]);
}

// ---------------------------------------------------------------------------
// Acceptance 5: store failures

/// Fail open (the default): with the store unreachable every check is
/// allowed, and counted.
async fn fail_open_lets_requests_through_and_counts_them(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter: Arc<dyn RateLimiter> = Arc::new(limiter(
        &store,
        "open",
        policy(Algorithm::FixedWindow, 1, Duration::from_secs(60)),
    ));
    assert!(limiter.check("k").await.expect("check").allowed);
    assert!(!limiter.check("k").await.expect("check").allowed);
    assert_every_key_expires(b).await;

    b.outage(&store).await;
    for n in 1..=3 {
        let d = limiter
            .check("unknown")
            .await
            .expect("fail open gives a decision");
        assert!(d.allowed, "{d:?}");
        assert_eq!(limiter.failed_open(), n);
    }
    // A key the limiter saw denied stays denied until its retry time: the
    // denial is known without the store.
    let known = limiter.check("k").await.expect("a remembered denial");
    assert!(!known.allowed, "{known:?}");
    assert_eq!(limiter.failed_open(), 3);
    assert_eq!(limiter.failed_closed(), 0);
}

/// Fail closed: with the store unreachable every check is an error saying
/// the store is unavailable, and counted.
async fn fail_closed_refuses_when_the_store_is_unreachable(b: &mut impl Backend) {
    let store = store(b).await;
    let limiter: Arc<dyn RateLimiter> = Arc::new(limiter(
        &store,
        "closed",
        policy(Algorithm::Gcra, 5, Duration::from_secs(60))
            .with_on_store_error(OnStoreError::FailClosed),
    ));
    assert!(limiter.check("k").await.expect("check").allowed);
    assert_every_key_expires(b).await;

    b.outage(&store).await;
    for n in 1..=3 {
        let err = limiter.check("k").await.expect_err("fail closed refuses");
        match &err {
            RateLimitError::Store { policy, source } => {
                assert_eq!(policy, "closed");
                assert!(source.is_unavailable(), "{source:?}");
            }
            other => panic!("expected a store error, got {other:?}"),
        }
        assert!(err.is_store_error());
        assert_eq!(limiter.failed_closed(), n);
    }
    assert_eq!(limiter.failed_open(), 0);
}

// ---------------------------------------------------------------------------
// Round trips

/// A store that counts the calls made to it.
struct CountingStore {
    inner: Arc<dyn KvStore>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl CountingStore {
    fn count(&self, op: &'static str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default() += 1;
    }

    fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl KvStore for CountingStore {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn prefix(&self) -> &str {
        self.inner.prefix()
    }
    async fn get_bytes(&self, key: &str) -> kv_module::Result<Option<Vec<u8>>> {
        self.count("get_bytes");
        self.inner.get_bytes(key).await
    }
    async fn set_bytes(&self, key: &str, value: &[u8], ttl: Ttl) -> kv_module::Result<()> {
        self.count("set_bytes");
        self.inner.set_bytes(key, value, ttl).await
    }
    async fn set_bytes_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Ttl,
    ) -> kv_module::Result<bool> {
        self.count("set_bytes_if_absent");
        self.inner.set_bytes_if_absent(key, value, ttl).await
    }
    async fn get_many_bytes(&self, keys: &[&str]) -> kv_module::Result<Vec<Option<Vec<u8>>>> {
        self.count("get_many_bytes");
        self.inner.get_many_bytes(keys).await
    }
    async fn set_many_bytes(&self, entries: &[(&str, &[u8], Ttl)]) -> kv_module::Result<()> {
        self.count("set_many_bytes");
        self.inner.set_many_bytes(entries).await
    }
    async fn delete(&self, key: &str) -> kv_module::Result<bool> {
        self.count("delete");
        self.inner.delete(key).await
    }
    async fn delete_keys(&self, keys: &[&str]) -> kv_module::Result<u64> {
        self.count("delete_keys");
        self.inner.delete_keys(keys).await
    }
    async fn keys(&self, pattern: &str) -> kv_module::Result<Vec<String>> {
        self.count("keys");
        self.inner.keys(pattern).await
    }
    async fn exists(&self, key: &str) -> kv_module::Result<bool> {
        self.count("exists");
        self.inner.exists(key).await
    }
    async fn expire(&self, key: &str, ttl: Duration) -> kv_module::Result<bool> {
        self.count("expire");
        self.inner.expire(key, ttl).await
    }
    async fn ttl(&self, key: &str) -> kv_module::Result<KeyTtl> {
        self.count("ttl");
        self.inner.ttl(key).await
    }
    async fn persist(&self, key: &str) -> kv_module::Result<bool> {
        self.count("persist");
        self.inner.persist(key).await
    }
    async fn incr_by(&self, key: &str, delta: i64) -> kv_module::Result<i64> {
        self.count("incr_by");
        self.inner.incr_by(key, delta).await
    }
    async fn run_script(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> kv_module::Result<ScriptValue> {
        self.count("run_script");
        self.inner.run_script(script, keys, args).await
    }
    async fn ping(&self) -> kv_module::Result<()> {
        self.count("ping");
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

/// Every check, allowed or denied, of every algorithm, is exactly one
/// script call on the store and nothing else (without the denial memo,
/// which answers repeated denials from memory).
async fn every_check_is_one_script_call(b: &mut impl Backend) {
    let counting = Arc::new(CountingStore {
        inner: store(b).await,
        calls: Mutex::default(),
    });
    let store: Arc<dyn KvStore> = counting.clone();
    for algorithm in ALGORITHMS {
        let limiter = limiter(
            &store,
            algorithm.as_str(),
            policy(algorithm, 2, Duration::from_secs(60)),
        )
        .with_denial_memo(0);
        for _ in 0..4 {
            check(&limiter, "k").await;
        }
        assert_eq!(
            counting.take(),
            BTreeMap::from([("run_script", 4)]),
            "{algorithm}"
        );
    }
    assert_every_key_expires(b).await;
}

/// The commands of 10 fixed-window checks of cost 1 (3 allowed, 7
/// denied): one `INCRBY`, `PEXPIRE … NX`, `PTTL` pipeline each.
fn assert_one_pipeline_each(calls: &BTreeMap<String, u64>) {
    let expected = [("incrby", 10), ("pexpire", 10), ("pttl", 10)].map(|(c, n)| (c.to_owned(), n));
    assert_eq!(
        calls,
        &BTreeMap::from(expected),
        "fixed_window: 10 checks (3 allowed, 7 denied), one pipeline each"
    );
}

/// On Redis a check is one round trip: one `EVALSHA` (once the script is
/// cached by the server), whose script runs `GET`, `SET`, ... inside; or,
/// for a fixed-window check of cost 1, one pipeline of `INCRBY`,
/// `PEXPIRE … NX` and `PTTL`. No other command comes from a client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_check_is_one_round_trip() {
    use kv_module_tests::command_stats::{command_calls, delta};

    let backend = RedisBackend::start().await;
    let store = store(&backend).await;
    let mut raw = backend.server.raw(0).await;
    for algorithm in ALGORITHMS {
        let limiter = limiter(
            &store,
            algorithm.as_str(),
            policy(algorithm, 3, Duration::from_secs(60)),
        )
        .with_denial_memo(0);
        // The first run loads the script (EVALSHA, NOSCRIPT, SCRIPT LOAD).
        check(&limiter, "warm-up").await;
        let before = command_calls(&mut raw).await;
        for _ in 0..10 {
            check(&limiter, "k").await;
        }
        let after = command_calls(&mut raw).await;
        let mut calls = delta(&before, &after);
        if algorithm == Algorithm::FixedWindow {
            assert_one_pipeline_each(&calls);
            continue;
        }
        assert_eq!(
            calls.remove("evalsha"),
            Some(10),
            "{algorithm}: 10 checks (3 allowed, 7 denied): {calls:?}"
        );
        let inside_scripts = ["decrby", "get", "incrby", "pexpire", "pttl", "set", "time"];
        for command in calls.keys() {
            assert!(
                inside_scripts.contains(&command.as_str()),
                "{algorithm}: `{command}` is not run by a limiter script: {calls:?}"
            );
        }
    }
    assert_every_key_expires(&backend).await;
}

/// Fixed-window checks of one key in flight together on one instance
/// share round trips (one `INCRBY` of their number per batch), and still
/// allow exactly the limit, each with a count of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_checks_of_one_key_share_round_trips() {
    use kv_module_tests::command_stats::{command_calls, delta};

    let backend = RedisBackend::start().await;
    let store = store(&backend).await;
    let mut raw = backend.server.raw(0).await;
    let limiter = limiter(
        &store,
        "batched",
        policy(Algorithm::FixedWindow, 50, Duration::from_secs(60)),
    )
    .with_denial_memo(0);
    check(&limiter, "warm-up").await;
    let before = command_calls(&mut raw).await;
    let tasks = spawn_checks(&[&limiter], 200, "k");
    let mut remaining = BTreeSet::new();
    for task in tasks {
        let decision = task.await.expect("task").expect("check");
        if decision.allowed {
            assert!(remaining.insert(decision.remaining), "{decision:?}");
        }
    }
    assert_eq!(remaining, (0..50).collect(), "exactly 50, one per count");
    let calls = delta(&before, &command_calls(&mut raw).await);
    let increments = calls.get("incrby").copied().unwrap_or(0);
    assert!(
        (1..200).contains(&increments),
        "200 checks in flight together: {increments} INCRBY ({calls:?})"
    );
    assert_every_key_expires(&backend).await;
}

/// [`redis_check_is_one_round_trip`] on the shared cluster, whose `INFO
/// commandstats` counts the commands of every test of this binary: a
/// [`CommandMonitor`](kv_module_tests::command_monitor::CommandMonitor)
/// counts the test's own. Every primary has a script cache of its own, so
/// each script is loaded with a key on the primary of the measured one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_check_is_one_round_trip() {
    use kv_module_tests::backends::ClusterBackend;
    use kv_module_tests::command_monitor::CommandMonitor;

    let backend = ClusterBackend::shared();
    let store = store(&backend).await;
    let stored = |name: &str, key: &str| format!("{}:{name}:{key}", store.prefix());
    for algorithm in ALGORITHMS {
        let name = algorithm.as_str();
        let limiter = limiter(&store, name, policy(algorithm, 3, Duration::from_secs(60)))
            .with_denial_memo(0);
        let primary = backend.cluster.primary_for_key(&stored(name, "k")).await;
        let mut warm_up = 0;
        while backend
            .cluster
            .primary_for_key(&stored(name, &format!("warm-up-{warm_up}")))
            .await
            != primary
        {
            warm_up += 1;
        }
        // The first run loads the script (EVALSHA, NOSCRIPT, SCRIPT LOAD).
        check(&limiter, &format!("warm-up-{warm_up}")).await;
        let monitor = CommandMonitor::start(&backend.cluster, &backend.full_prefix(0, "")).await;
        for _ in 0..10 {
            check(&limiter, "k").await;
        }
        let mut calls = monitor.finish().await;
        if algorithm == Algorithm::FixedWindow {
            assert_one_pipeline_each(&calls);
            continue;
        }
        assert_eq!(
            calls.remove("evalsha"),
            Some(10),
            "{algorithm}: 10 checks (3 allowed, 7 denied): {calls:?}"
        );
        let inside_scripts = ["decrby", "get", "incrby", "pexpire", "pttl", "set", "time"];
        for command in calls.keys() {
            assert!(
                inside_scripts.contains(&command.as_str()),
                "{algorithm}: `{command}` is not run by a limiter script: {calls:?}"
            );
        }
    }
    assert_every_key_expires(&backend).await;
}

/// A flood past the limit, from two instances on two connections: exactly
/// the limit is allowed in total, and once an instance has seen a key
/// denied, the store hears nothing more of that key from it this window
/// (`INFO commandstats`): at most one denied call per key per instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_denied_checks_is_answered_in_memory() {
    use kv_module_tests::command_stats::{command_calls, delta};

    let backend = RedisBackend::start().await;
    let (first_store, second_store) = (store(&backend).await, store(&backend).await);
    let mut raw = backend.server.raw(0).await;
    for algorithm in ALGORITHMS {
        let name = algorithm.as_str();
        let window = Duration::from_secs(60);
        let first = limiter(&first_store, name, policy(algorithm, 10, window));
        let second = limiter(&second_store, name, policy(algorithm, 10, window));
        // The scripts are loaded (EVALSHA, NOSCRIPT, SCRIPT LOAD) by a
        // check of another key on each connection.
        check(&first, "warm-up").await;
        check(&second, "warm-up").await;
        let before = command_calls(&mut raw).await;
        let tasks = spawn_checks(&[&first, &second], 2_000, "flood");
        let mut allowed = 0;
        for task in tasks {
            let decision = task.await.expect("task").expect("check");
            if !decision.allowed {
                assert!(decision.retry_after.is_some(), "{decision:?}");
            }
            allowed += usize::from(decision.allowed);
        }
        assert_eq!(
            allowed, 10,
            "{algorithm}: exactly the limit across both instances"
        );
        let calls = delta(&before, &command_calls(&mut raw).await);
        // A check is one `EVALSHA`, or one `INCRBY` pipeline (fixed window).
        let evalsha =
            calls.get("evalsha").copied().unwrap_or(0) + calls.get("incrby").copied().unwrap_or(0);
        // 10 allowed, and the checks already in flight when an
        // instance's first denial came back (all 2 000 are spawned at
        // once): fewer than one per check.
        assert!(
            evalsha < 2_000,
            "{algorithm}: {evalsha} calls for 2 000 checks: {calls:?}"
        );
        // Once the denials are known, more checks send nothing.
        let before = command_calls(&mut raw).await;
        for limiter in [&first, &second] {
            for _ in 0..500 {
                assert!(!check(limiter, "flood").await.allowed);
            }
        }
        let calls = delta(&before, &command_calls(&mut raw).await);
        assert_eq!(calls.get("evalsha"), None, "{algorithm}: {calls:?}");
        assert_eq!(calls.get("incrby"), None, "{algorithm}: {calls:?}");
    }
    assert_every_key_expires(&backend).await;
}
