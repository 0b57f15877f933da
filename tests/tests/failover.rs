//! Failovers and frozen servers under stores that stay open throughout:
//! every call returns within `command_timeout` (never hangs), and calls
//! succeed again within 5 s of the promotion (cluster) or of the switch
//! (Sentinel), with no restart of the store or of anything else.
//!
//! Each case runs on a fixture of its own (never the shared ones: faults
//! would disturb other tests). A *probe* calls the store in rounds — a
//! session `get`, then a `set` and a `get` of a key in the same hash slot —
//! timing each call with [`Instant`], while the test injects the fault and
//! waits for the failover; the assertions then read the timeline. The
//! measured times are printed (run with `--nocapture`):
//!
//! ```text
//! cargo test -p kv-module-tests --test failover -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use kv_module::otp::{IssueOutcome, KvOneTimeCodes, OneTimeCodes, OtpConfig, VerifyOutcome};
use kv_module::rate_limit::{Algorithm, KvRateLimiter, RateLimitPolicy};
use kv_module::registry::StoreRef;
use kv_module::session::{KvSessions, SessionConfig, SessionData, SessionId, Sessions};
use kv_module::store::{DIGEST_TAG_CHARS, key_slot};
use kv_module::{KvError, KvStore, KvStoreExt, RedisConfig, RedisStore, Secret, Ttl};
use kv_module_tests::error_chain::chain;
use kv_module_tests::{TestCluster, TestRedis, TestSentinel};
use redis::aio::MultiplexedConnection;
use tokio::task::JoinHandle;

/// The `command_timeout` of every store here — the library's default —:
/// the deadline each call must keep, failover or not. (Recovery after a
/// promotion takes up to two of them for a store that was idle during the
/// failover: its first call still goes to the old node.)
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// What a call may take beyond `command_timeout`: scheduling on a loaded
/// 2-core machine (other engineers build at the same time), not waiting.
const LATENCY_MARGIN: Duration = Duration::from_millis(500);
/// Calls must succeed again within this of the promotion (cluster), the
/// switch (Sentinel) — issue 10.
const RECOVERY_LIMIT: Duration = Duration::from_secs(5);
/// A thawed server is found by the circuit breaker's probe, which pings at
/// most 2 s apart (then 500 ms for the reply), or by a call in flight.
const BREAKER_RECOVERY: Duration = Duration::from_secs(3);
/// A call refused by an open breaker sends nothing: far quicker than
/// this, which no wait for a frozen server is.
const REFUSED_FAST: Duration = Duration::from_millis(100);
/// For a fixture to report the promotion or the switch (measured: 2.5 s
/// cluster, 3.2 s Sentinel after SIGSTOP): a failed failover, not a slow
/// store, exceeds it.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long calls must keep succeeding after the first success, so that a
/// store that recovers and falls back is caught.
const STABLE_FOR: Duration = Duration::from_secs(1);
/// How long after the promotion a probe keeps watching for a recovery that
/// does not come: long past [`RECOVERY_LIMIT`], so the report says how late
/// it was rather than only that it was late.
const GIVE_UP_AFTER: Duration = Duration::from_secs(20);
/// Pause between two probe rounds: keeps a probe whose calls fail at once
/// (a killed node refuses connections) from spinning a core. It is the
/// resolution of the recovery times, not a wait for anything.
const ROUND_PAUSE: Duration = Duration::from_millis(20);
/// The name of every store here: errors must name it.
const STORE: &str = "failover_store";
/// The prefix of the probe's store.
const PREFIX: &str = "fo";
const USER: &str = "ada@example.com";
const OTP_SECRET: &str = "a test secret that is at least 32 bytes long";

// ---- the probe --------------------------------------------------------------

/// One timed call of a probe.
#[derive(Debug)]
struct Call {
    round: u64,
    op: &'static str,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

impl Call {
    fn latency(&self) -> Duration {
        self.ended - self.started
    }
}

#[derive(Debug)]
enum Outcome {
    Ok,
    /// The store reported an error.
    Failed(KvError),
    /// The call returned `Ok` with a wrong answer.
    Wrong(String),
}

impl Outcome {
    fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

/// A store with a session in it: what a probe round calls.
struct Probe {
    store: Arc<RedisStore>,
    sessions: KvSessions,
    id: SessionId,
    /// The session's hash tag: the id's first characters.
    tag: String,
    /// A key of the probe's own under the session's tag (same slot).
    key: String,
}

impl Probe {
    /// Opens a store with `config`, creates a session, and writes the
    /// probe key once.
    async fn open(config: RedisConfig) -> Probe {
        let store = Arc::new(
            RedisStore::open(STORE, config.with_prefix(PREFIX))
                .await
                .unwrap_or_else(|e| panic!("open the probe store: {}", chain(&e))),
        );
        let sessions = KvSessions::new(store.clone(), SessionConfig::new(StoreRef::new(STORE)))
            .expect("valid session settings");
        let id = sessions
            .create(SessionData::new(USER))
            .await
            .unwrap_or_else(|e| panic!("create a session: {}", chain(&e)));
        let tag = id.expose()[..DIGEST_TAG_CHARS].to_owned();
        let key = format!("probe:{{{tag}}}");
        store
            .set(&key, &0_i64, Ttl::secs(600))
            .await
            .unwrap_or_else(|e| panic!("write the probe key: {}", chain(&e)));
        let probe = Probe {
            store,
            sessions,
            id,
            tag,
            key,
        };
        assert_eq!(
            key_slot(&probe.stored_record_key()),
            key_slot(&probe.stored_probe_key()),
            "the probe key shares the session record's slot"
        );
        probe
    }

    /// The session record as stored: `<prefix>:session:{tag}:<handle>`.
    fn stored_record_key(&self) -> String {
        format!("{PREFIX}:session:{{{}}}:{}", self.tag, self.id.handle())
    }

    fn stored_probe_key(&self) -> String {
        format!("{PREFIX}:{}", self.key)
    }

    /// One round: session `get`, `set` of the probe key to `round`, `get`
    /// of it; each call pushed to `calls` as it ends.
    async fn round(&self, round: u64, calls: &Mutex<Vec<Call>>) {
        let push = |op, started, outcome| {
            let call = Call {
                round,
                op,
                started,
                ended: Instant::now(),
                outcome,
            };
            calls.lock().expect("calls lock").push(call);
        };

        let started = Instant::now();
        let outcome = match self.sessions.get(&self.id).await {
            Ok(Some(session)) if session.data.user_id == USER => Outcome::Ok,
            Ok(Some(session)) => Outcome::Wrong(format!("a session of {}", session.data.user_id)),
            Ok(None) => Outcome::Wrong("the session is gone".to_owned()),
            Err(e) => Outcome::Failed(e),
        };
        push("session get", started, outcome);

        let value = i64::try_from(round).expect("few rounds");
        let started = Instant::now();
        let set = self.store.set(&self.key, &value, Ttl::secs(600)).await;
        let written = set.is_ok();
        push(
            "set",
            started,
            set.map_or_else(Outcome::Failed, |()| Outcome::Ok),
        );

        let started = Instant::now();
        let outcome = match self.store.get::<i64>(&self.key).await {
            Ok(Some(read)) if read == value => Outcome::Ok,
            // After a failed write any earlier value may be there.
            Ok(_) if !written => Outcome::Ok,
            Ok(read) => Outcome::Wrong(format!("read {read:?} right after writing {value}")),
            Err(e) => Outcome::Failed(e),
        };
        push("get", started, outcome);
    }
}

/// A probe calling its store in rounds on a task of its own until stopped.
struct ProbeRun {
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl ProbeRun {
    fn start(probe: Arc<Probe>) -> ProbeRun {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (calls, stop) = (calls.clone(), stop.clone());
            async move {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    probe.round(round, &calls).await;
                    round += 1;
                    tokio::time::sleep(ROUND_PAUSE).await;
                }
            }
        });
        ProbeRun { calls, stop, task }
    }

    /// Polls `condition` on the calls so far until it holds (true) or
    /// `deadline` passes (false).
    async fn wait_until(&self, deadline: Instant, condition: impl Fn(&[Call]) -> bool) -> bool {
        loop {
            if condition(&self.calls.lock().expect("calls lock")) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a few good rounds: the store works before the fault.
    async fn wait_for_good_rounds(&self) {
        let healthy = self
            .wait_until(Instant::now() + Duration::from_secs(10), |calls| {
                rounds(calls).iter().filter(|r| r.all_ok).count() >= 3
            })
            .await;
        assert!(healthy, "the probe never worked: {:?}", self.calls);
    }

    /// Watches until calls have succeeded for [`STABLE_FOR`] since the
    /// first good round after `fault_at`, or until [`GIVE_UP_AFTER`] past
    /// `reference` (the promotion); then stops the probe and returns every
    /// call.
    async fn finish_after_recovery(self, fault_at: Instant, reference: Instant) -> Vec<Call> {
        self.wait_until(reference + GIVE_UP_AFTER, |calls| {
            recovered_at(calls, fault_at).is_some_and(|at| at.elapsed() >= STABLE_FOR)
        })
        .await;
        self.stop().await
    }

    async fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the probe task panicked");
        std::mem::take(&mut *self.calls.lock().expect("calls lock"))
    }
}

/// One probe round as a whole.
#[derive(Debug)]
struct Round {
    started: Instant,
    ended: Instant,
    all_ok: bool,
}

fn rounds(calls: &[Call]) -> Vec<Round> {
    let mut rounds: BTreeMap<u64, Round> = BTreeMap::new();
    for call in calls {
        let round = rounds.entry(call.round).or_insert(Round {
            started: call.started,
            ended: call.ended,
            all_ok: true,
        });
        round.started = round.started.min(call.started);
        round.ended = round.ended.max(call.ended);
        round.all_ok &= call.outcome.is_ok();
    }
    rounds.into_values().collect()
}

/// The end of the first round started after `after` in which every call
/// succeeded.
fn recovered_at(calls: &[Call], after: Instant) -> Option<Instant> {
    rounds(calls)
        .iter()
        .find(|r| r.started >= after && r.all_ok)
        .map(|r| r.ended)
}

// ---- what every outage must show ---------------------------------------------

/// The measured timeline of one outage.
#[derive(Debug)]
struct Numbers {
    /// From the fault to the promotion or switch (or the thaw).
    fault_to_reference: Duration,
    /// From the promotion/switch/thaw to the end of the first good round.
    reference_to_success: Option<Duration>,
    max_latency: Duration,
    max_latency_op: &'static str,
    failed: usize,
    /// Failed calls per error kind.
    kinds: BTreeMap<&'static str, usize>,
    /// The first error message of each kind.
    messages: BTreeMap<&'static str, String>,
}

/// Checks the timeline of an outage, prints its numbers, and returns them:
///
/// * every call returned within `command_timeout` + [`LATENCY_MARGIN`];
/// * no call returned a wrong answer (`Ok` with other data);
/// * the fault was felt (calls failed after `fault_at`), and each failure
///   is a timeout or an unavailable store, naming the store;
/// * a round started after the fault succeeded within `limit` of
///   `reference` (the promotion, switch or thaw), and every round after it
///   too.
fn check_outage(
    label: &str,
    calls: &[Call],
    fault_at: Instant,
    reference: Instant,
    limit: Duration,
) -> Numbers {
    let recovered = recovered_at(calls, fault_at);
    let slowest = calls
        .iter()
        .max_by_key(|c| c.latency())
        .expect("the probe made calls");
    let mut numbers = Numbers {
        fault_to_reference: reference.saturating_duration_since(fault_at),
        reference_to_success: recovered.map(|at| at.saturating_duration_since(reference)),
        max_latency: slowest.latency(),
        max_latency_op: slowest.op,
        failed: 0,
        kinds: BTreeMap::new(),
        messages: BTreeMap::new(),
    };
    for call in calls {
        if let Outcome::Failed(e) = &call.outcome {
            numbers.failed += 1;
            *numbers.kinds.entry(kind(e)).or_default() += 1;
            numbers.messages.entry(kind(e)).or_insert_with(|| chain(e));
        }
    }
    println!("{label}: {} calls, {numbers:#?}", calls.len());

    let bound = COMMAND_TIMEOUT + LATENCY_MARGIN;
    let slow: Vec<_> = calls.iter().filter(|c| c.latency() > bound).collect();
    assert!(
        slow.is_empty(),
        "{label}: {} calls took longer than command_timeout + margin ({bound:?}): {slow:#?}",
        slow.len()
    );
    let wrong: Vec<String> = calls
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Wrong(what) => Some(format!("round {} `{}`: {what}", c.round, c.op)),
            _ => None,
        })
        .collect();
    assert!(wrong.is_empty(), "{label}: wrong answers: {wrong:#?}");
    assert!(
        calls
            .iter()
            .any(|c| c.started >= fault_at && !c.outcome.is_ok()),
        "{label}: no call failed after the fault, so the test proves nothing"
    );
    for call in calls {
        if let Outcome::Failed(e) = &call.outcome {
            assert!(
                e.is_timeout() || e.is_unavailable(),
                "{label}: `{}` failed with neither a timeout nor an unavailable store: {}",
                call.op,
                chain(e)
            );
            assert_eq!(e.store(), STORE, "{label}: {}", chain(e));
            assert!(e.to_string().contains(STORE), "{label}: {e}");
        }
    }
    let Some(recovered) = recovered else {
        panic!(
            "{label}: no call succeeded again within {GIVE_UP_AFTER:?} of the \
             promotion/switch ({numbers:?})"
        );
    };
    let recovery = recovered.saturating_duration_since(reference);
    assert!(
        recovery <= limit,
        "{label}: calls succeeded again {recovery:?} after the promotion/switch, \
         more than {limit:?}"
    );
    let relapses: Vec<_> = rounds(calls)
        .into_iter()
        .filter(|r| r.started >= recovered && !r.all_ok)
        .collect();
    let failed_after: Vec<_> = calls
        .iter()
        .filter(|c| c.started >= recovered && !c.outcome.is_ok())
        .collect();
    assert!(
        relapses.is_empty(),
        "{label}: calls failed again after recovering at +{recovery:?}: {failed_after:#?}"
    );
    numbers
}

fn kind(e: &KvError) -> &'static str {
    match e {
        KvError::Timeout { .. } => "Timeout",
        KvError::Unavailable { .. } => "Unavailable",
        KvError::Backend { .. } => "Backend",
        _ => "other",
    }
}

/// Polls `condition` every 20 ms until it holds, or panics with `what`.
async fn eventually(what: &str, timeout: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many of `keys` exist, asked on `conn`.
async fn existing(conn: &mut MultiplexedConnection, keys: &[String]) -> usize {
    redis::cmd("EXISTS")
        .arg(keys)
        .query_async(conn)
        .await
        .unwrap_or(0)
}

// ---- Redis Cluster ------------------------------------------------------------

/// How a cluster primary is taken out.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGSTOP: its connections stay open and nothing answers.
    Freeze,
    /// SIGKILL: connections are refused.
    Kill,
}

fn cluster_config(cluster: &TestCluster) -> RedisConfig {
    RedisConfig::cluster(cluster.seed_nodes()).with_command_timeout(COMMAND_TIMEOUT)
}

/// A probe on a fresh cluster; the primary owning the session's slot is
/// frozen or killed once its replica has the session, and the probe must
/// come back on the promoted replica.
async fn cluster_primary_outage(fault: Fault) {
    let mut cluster = TestCluster::start().await;
    let probe = Arc::new(Probe::open(cluster_config(&cluster)).await);
    let primary = cluster.primary_for_key(&probe.stored_record_key()).await;
    assert_eq!(
        cluster.primary_for_key(&probe.stored_probe_key()).await,
        primary
    );
    let replica = cluster.replica_of(primary).await;
    // The replica has the session before the primary goes: a session that
    // is gone afterwards is then a wrong answer, not replication lag.
    let mut on_replica = cluster.raw_node(replica).await;
    let () = redis::cmd("READONLY")
        .query_async(&mut on_replica)
        .await
        .expect("READONLY on the replica");
    let keys = [probe.stored_record_key(), probe.stored_probe_key()];
    eventually(
        "the replica to have the session",
        Duration::from_secs(10),
        async || existing(&mut on_replica, &keys).await == keys.len(),
    )
    .await;

    let run = ProbeRun::start(probe.clone());
    run.wait_for_good_rounds().await;
    match fault {
        Fault::Freeze => cluster.freeze(primary).await,
        Fault::Kill => cluster.kill(primary).await,
    }
    // Taken once the signal is sent: a round started after this cannot be
    // answered by the old primary.
    let fault_at = Instant::now();
    let promoted_at = cluster.wait_for_failover(primary, FAILOVER_TIMEOUT).await;
    let calls = run.finish_after_recovery(fault_at, promoted_at).await;

    let label = format!("cluster, {fault:?} primary {primary} (replica {replica})");
    let numbers = check_outage(&label, &calls, fault_at, promoted_at, RECOVERY_LIMIT);
    println!(
        "{label}: fault -> promotion {:?}, promotion -> first success {:?}, max call {:?} ({})",
        numbers.fault_to_reference,
        numbers.reference_to_success,
        numbers.max_latency,
        numbers.max_latency_op
    );
    assert_eq!(
        cluster.primary_for_key(&probe.stored_record_key()).await,
        replica,
        "the session's slot is served by the promoted replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_calls_recover_after_a_frozen_primary_is_failed_over() {
    cluster_primary_outage(Fault::Freeze).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_calls_recover_after_a_killed_primary_is_failed_over() {
    cluster_primary_outage(Fault::Kill).await;
}

/// The components' guarantees on the promoted topology: stores opened
/// before a primary is frozen, idle through the failover and never
/// reopened, come back within 5 s of the promotion; then a one-time code
/// whose keys live on the promoted node verifies exactly once among 20
/// concurrent verifies, and a limit of N across two limiter instances (two
/// stores, as two processes) allows exactly N for keys on that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_components_keep_their_guarantees_after_a_failover() {
    const LIMIT: u64 = 20;
    const CHECKS: usize = 60;
    const VERIFIES: usize = 20;
    const OTP_PREFIX: &str = "fo-otp";
    const LIMIT_PREFIX: &str = "fo-rl";
    let algorithms = [
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
        Algorithm::Gcra,
    ];

    let mut cluster = TestCluster::start().await;
    let open = async |prefix: &str| -> Arc<dyn KvStore> {
        let config = cluster_config(&cluster).with_prefix(prefix);
        match RedisStore::open(STORE, config).await {
            Ok(store) => Arc::new(store) as Arc<dyn KvStore>,
            Err(e) => panic!("open a store on the cluster: {}", chain(&e)),
        }
    };
    let otp_store = open(OTP_PREFIX).await;
    let (first_store, second_store) = (open(LIMIT_PREFIX).await, open(LIMIT_PREFIX).await);
    let otp = KvOneTimeCodes::new(
        otp_store.clone(),
        OtpConfig::new(StoreRef::new(STORE)).with_secret(Secret::new(OTP_SECRET)),
    )
    .expect("valid OTP settings");
    let limiters: Vec<(Algorithm, KvRateLimiter, KvRateLimiter)> = algorithms
        .iter()
        .map(|&algorithm| {
            let policy = || RateLimitPolicy::new(algorithm, LIMIT, Duration::from_secs(60));
            let make = |store: &Arc<dyn KvStore>| {
                KvRateLimiter::new(store.clone(), algorithm.as_str(), policy())
                    .expect("valid policy")
            };
            (algorithm, make(&first_store), make(&second_store))
        })
        .collect();

    let primary = cluster.primary_for_slot(0).await;
    let replica = cluster.replica_of(primary).await;
    // A key of each limiter on the primary that is about to fail.
    let mut limit_keys = Vec::new();
    for (algorithm, limiter, _) in &limiters {
        let mut found = None;
        for i in 0..300 {
            let key = format!("user:{i}");
            let stored = format!("{LIMIT_PREFIX}:{}", limiter.stored_key(&key));
            if cluster.primary_for_key(&stored).await == primary {
                found = Some(key);
                break;
            }
        }
        limit_keys.push(found.unwrap_or_else(|| panic!("{algorithm}: no key on {primary}")));
    }
    let otp_probe_key = {
        let mut found = None;
        for i in 0..300 {
            let key = format!("probe:{i}");
            if cluster
                .primary_for_key(&format!("{OTP_PREFIX}:{key}"))
                .await
                == primary
            {
                found = Some(key);
                break;
            }
        }
        found.expect("a key of the OTP store on the primary")
    };

    cluster.freeze(primary).await;
    let promoted_at = cluster.wait_for_failover(primary, FAILOVER_TIMEOUT).await;

    // Every store comes back by itself: polled with a key in the slots
    // that moved, each call within its deadline.
    let recover = async |store: &Arc<dyn KvStore>, key: &str| {
        loop {
            let started = Instant::now();
            let result = store.get_bytes(key).await;
            let latency = started.elapsed();
            assert!(
                latency <= COMMAND_TIMEOUT + LATENCY_MARGIN,
                "a call took {latency:?}"
            );
            if result.is_ok() {
                return Instant::now();
            }
            assert!(
                promoted_at.elapsed() < GIVE_UP_AFTER,
                "no recovery: {}",
                chain(&result.expect_err("failed"))
            );
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    };
    let recovered = join_all([
        recover(&otp_store, &otp_probe_key),
        recover(&first_store, &limiters[0].1.stored_key(&limit_keys[0])),
        recover(&second_store, &limiters[0].2.stored_key(&limit_keys[0])),
    ])
    .await;
    let recovery: Vec<Duration> = recovered
        .iter()
        .map(|at| at.saturating_duration_since(promoted_at))
        .collect();
    println!("components: idle stores recovered {recovery:?} after the promotion");
    for (store, time) in ["otp", "first limiter", "second limiter"]
        .iter()
        .zip(&recovery)
    {
        assert!(
            *time <= RECOVERY_LIMIT,
            "the {store} store recovered {time:?} after the promotion"
        );
    }

    // A subject whose code lives on the promoted replica: each candidate's
    // code is issued, and kept if its keys appeared there.
    let mut on_promoted = cluster.raw_node(replica).await;
    let mut chosen = None;
    for i in 0..30 {
        let subject = format!("user-{i}@example.com");
        let before = scan(&mut on_promoted, &format!("{OTP_PREFIX}:*"))
            .await
            .len();
        let IssueOutcome::Issued(issued) = otp
            .issue(&subject, "login")
            .await
            .unwrap_or_else(|e| panic!("issue after the failover: {}", chain(&e)))
        else {
            panic!("a first code for {subject} is issued");
        };
        if scan(&mut on_promoted, &format!("{OTP_PREFIX}:*"))
            .await
            .len()
            > before
        {
            chosen = Some((subject, issued.code));
            break;
        }
    }
    let (subject, code) = chosen.expect("a subject whose keys are on the promoted replica");
    let otp = Arc::new(otp);
    let verifies = (0..VERIFIES).map(|_| {
        let (otp, subject, code) = (otp.clone(), subject.clone(), code.clone());
        tokio::spawn(async move { otp.verify(&subject, "login", code.expose()).await })
    });
    let mut outcomes = Vec::new();
    for task in join_all(verifies).await {
        let outcome = task.expect("verify task");
        outcomes.push(outcome.unwrap_or_else(|e| panic!("verify: {}", chain(&e))));
    }
    let verified = outcomes.iter().filter(|o| o.is_verified()).count();
    assert_eq!(
        verified, 1,
        "exactly one of {VERIFIES} verifies: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| o.is_verified() || *o == VerifyOutcome::ExpiredOrUnknown),
        "{outcomes:?}"
    );

    for ((algorithm, first, second), key) in limiters.iter().zip(&limit_keys) {
        let stored = format!("{LIMIT_PREFIX}:{}", first.stored_key(key));
        assert_eq!(
            cluster.primary_for_key(&stored).await,
            replica,
            "{algorithm}: the key is on the promoted replica"
        );
        let checks = (0..CHECKS).map(|i| {
            let limiter = (if i % 2 == 0 { first } else { second }).clone();
            let key = key.clone();
            tokio::spawn(async move { limiter.check(&key).await })
        });
        let mut allowed = 0;
        for task in join_all(checks).await {
            let decision = task
                .expect("check task")
                .unwrap_or_else(|e| panic!("{algorithm}: check after the failover: {e}"));
            allowed += u64::from(decision.allowed);
        }
        assert_eq!(
            allowed, LIMIT,
            "{algorithm}: exactly {LIMIT} of {CHECKS} across two instances"
        );
    }
}

/// The keys matching `pattern` on one node (`SCAN`; `KEYS` is disabled).
async fn scan(conn: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

// ---- Sentinel -------------------------------------------------------------------

fn sentinel_config(set: &TestSentinel) -> RedisConfig {
    RedisConfig::sentinel(set.sentinel_addrs(), set.master_name())
        .with_command_timeout(COMMAND_TIMEOUT)
}

/// One write of [`sentinel_writes_follow_sentinel_failover`].
#[derive(Debug)]
struct Write {
    n: u64,
    started: Instant,
    ended: Instant,
    result: Result<(), KvError>,
}

/// With a store writing in a loop, `SENTINEL FAILOVER`: from at most 5 s
/// after the switch on, every acknowledged write is on the new primary
/// (read there with a raw connection), and no write exceeds its deadline.
///
/// Each write is its own key `w:<n>`, so the new primary's keys say which
/// acknowledged writes reached it. Writes the old primary acknowledges
/// after the replica's promotion are lost (the old primary later becomes a
/// replica of the new one and drops them): Sentinel cannot prevent that
/// (replication is asynchronous and the old primary is not paused), so it
/// is printed, not asserted; the store must only stop writing there within
/// 5 s of the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_writes_follow_sentinel_failover() {
    const WRITE_PREFIX: &str = "fo-w";
    let mut set = TestSentinel::start().await;
    let store = Arc::new(
        RedisStore::open(STORE, sentinel_config(&set).with_prefix(WRITE_PREFIX))
            .await
            .unwrap_or_else(|e| panic!("open the store: {}", chain(&e))),
    );
    let writes: Arc<Mutex<Vec<Write>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, writes, stop) = (store.clone(), writes.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let result = store.set(&format!("w:{n}"), &n, Ttl::secs(600)).await;
                let ended = Instant::now();
                writes.lock().expect("writes lock").push(Write {
                    n,
                    started,
                    ended,
                    result,
                });
                tokio::time::sleep(ROUND_PAUSE).await;
            }
        }
    });
    let acked_since = |since: Instant| {
        writes
            .lock()
            .expect("writes lock")
            .iter()
            .filter(|w| w.started >= since && w.result.is_ok())
            .count()
    };
    let begun = Instant::now();
    eventually("the first writes", Duration::from_secs(10), async || {
        acked_since(begun) >= 5
    })
    .await;

    let old = set.master_addr().await;
    let asked = Instant::now();
    let new = set.failover().await;
    // `failover` returns right after it saw the switch (one more
    // `SENTINEL GET-MASTER-ADDR-BY-NAME`): a few ms late at most, which
    // only loosens the bound by as much.
    let switched_at = Instant::now();
    assert_ne!(new, old);
    // Writes go on until some are acknowledged well past the bound.
    let watched = Instant::now() + GIVE_UP_AFTER;
    while acked_since(switched_at + RECOVERY_LIMIT + STABLE_FOR) < 5 && Instant::now() < watched {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("the writer panicked");
    let writes = std::mem::take(&mut *writes.lock().expect("writes lock"));

    // Which acknowledged writes the new primary has.
    let new_port = set
        .data_ports()
        .into_iter()
        .find(|port| new.ends_with(&format!(":{port}")))
        .expect("the new primary is a data node");
    let mut on_new = set.raw_node(new_port).await;
    let acked: Vec<&Write> = writes.iter().filter(|w| w.result.is_ok()).collect();
    let mut landed = Vec::with_capacity(acked.len());
    for chunk in acked.chunks(500) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|w| format!("{WRITE_PREFIX}:w:{}", w.n))
            .collect();
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut on_new)
            .await
            .expect("MGET on the new primary");
        landed.extend(values.iter().zip(chunk).map(|(v, w)| *v == Some(w.n)));
    }
    // From `landing_from` on, every acknowledged write is on the new primary.
    let last_lost = acked.iter().zip(&landed).rposition(|(_, landed)| !landed);
    let landing_from = match last_lost {
        None => acked.first().map(|w| w.started),
        Some(i) => acked.get(i + 1).map(|w| w.started),
    };
    let lost: Vec<(u64, i128)> = acked
        .iter()
        .zip(&landed)
        .filter(|(_, landed)| !**landed)
        .map(|(w, _)| (w.n, signed_ms(w.started, switched_at)))
        .collect();
    let failed: Vec<String> = writes
        .iter()
        .filter_map(|w| w.result.as_ref().err().map(|e| chain(e)))
        .collect();
    let slowest = writes
        .iter()
        .map(|w| w.ended - w.started)
        .max()
        .expect("writes were made");
    println!(
        "sentinel failover: asked -> switch {:?}; {} writes, {} acknowledged, {} failed, \
         {} acknowledged but not on the new primary (n, ms from the switch): {lost:?}; \
         every acknowledged write on the new primary from {:?} ms after the switch; \
         max write {slowest:?}; first failure: {:?}",
        switched_at - asked,
        writes.len(),
        acked.len(),
        failed.len(),
        lost.len(),
        landing_from.map(|at| signed_ms(at, switched_at)),
        failed.first(),
    );

    let bound = COMMAND_TIMEOUT + LATENCY_MARGIN;
    assert!(slowest <= bound, "a write took {slowest:?}, over {bound:?}");
    for w in &writes {
        if let Err(e) = &w.result {
            assert!(e.is_timeout() || e.is_unavailable(), "{}", chain(e));
            assert_eq!(e.store(), STORE);
        }
    }
    assert!(
        acked_after(&acked, switched_at + RECOVERY_LIMIT + STABLE_FOR) > 0,
        "no write was acknowledged in the {GIVE_UP_AFTER:?} after the switch"
    );
    let landing_from = landing_from.expect("acknowledged writes");
    let late = landing_from.saturating_duration_since(switched_at);
    assert!(
        late <= RECOVERY_LIMIT,
        "acknowledged writes missed the new primary until {late:?} after the switch: {lost:?}"
    );
}

fn acked_after(acked: &[&Write], since: Instant) -> usize {
    acked.iter().filter(|w| w.started >= since).count()
}

/// `at - reference` in milliseconds, negative when `at` is earlier.
fn signed_ms(at: Instant, reference: Instant) -> i128 {
    if at >= reference {
        i128::try_from((at - reference).as_millis()).unwrap_or(i128::MAX)
    } else {
        -i128::try_from((reference - at).as_millis()).unwrap_or(i128::MAX)
    }
}

/// The primary behind the Sentinels is frozen: calls fail within
/// `command_timeout` and succeed again within 5 s of the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_calls_recover_after_a_frozen_primary_is_replaced() {
    let mut set = TestSentinel::start().await;
    let probe = Arc::new(Probe::open(sentinel_config(&set)).await);
    let replica = set.replica().await;
    let mut on_replica = set.raw_node(replica).await;
    let keys = [probe.stored_record_key(), probe.stored_probe_key()];
    eventually(
        "the replica to have the session",
        Duration::from_secs(10),
        async || existing(&mut on_replica, &keys).await == keys.len(),
    )
    .await;

    let run = ProbeRun::start(probe.clone());
    run.wait_for_good_rounds().await;
    let old = set.master_addr().await;
    let frozen = set.freeze_primary().await;
    let fault_at = Instant::now();
    let switched_at = set.wait_for_switch(&old, FAILOVER_TIMEOUT).await;
    let calls = run.finish_after_recovery(fault_at, switched_at).await;

    let label = format!("sentinel, frozen primary {frozen}");
    let numbers = check_outage(&label, &calls, fault_at, switched_at, RECOVERY_LIMIT);
    println!(
        "{label}: freeze -> switch {:?}, switch -> first success {:?}, max call {:?} ({})",
        numbers.fault_to_reference,
        numbers.reference_to_success,
        numbers.max_latency,
        numbers.max_latency_op
    );
}

// ---- one server -------------------------------------------------------------------

/// A frozen standalone server: the first call fails with a timeout within
/// `command_timeout`, and it is the only one that waits: the store's
/// circuit breaker then refuses every call at once (unavailable, saying
/// so) until its probe finds the server answering. Once the server is
/// thawed, calls succeed again on the same store within
/// [`BREAKER_RECOVERY`], and no call after the thaw waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_calls_time_out_once_while_frozen_and_succeed_after_thaw() {
    let mut redis = TestRedis::start().await;
    let config = RedisConfig::new(redis.addr()).with_command_timeout(COMMAND_TIMEOUT);
    let probe = Arc::new(Probe::open(config).await);
    let run = ProbeRun::start(probe.clone());
    run.wait_for_good_rounds().await;

    redis.freeze();
    let fault_at = Instant::now();
    // Frozen until a few rounds have been refused after the first timeout.
    let felt = run
        .wait_until(fault_at + Duration::from_secs(15), |calls| {
            calls
                .iter()
                .filter(|c| c.started >= fault_at && !c.outcome.is_ok())
                .count()
                >= 10
        })
        .await;
    assert!(felt, "calls to a frozen server did not fail");
    redis.thaw();
    let thawed_at = Instant::now();
    let calls = run.finish_after_recovery(fault_at, thawed_at).await;

    let label = "standalone, frozen then thawed";
    let numbers = check_outage(label, &calls, fault_at, thawed_at, BREAKER_RECOVERY);
    // Every failure, including one of a call started just before the
    // freeze (nothing failed before it).
    let failed: Vec<&Call> = calls.iter().filter(|c| !c.outcome.is_ok()).collect();
    let Outcome::Failed(first) = &failed[0].outcome else {
        unreachable!("filtered on failures")
    };
    assert!(
        first.is_timeout(),
        "a frozen server is a timeout: {}",
        chain(first)
    );
    let waited: Vec<&&Call> = failed
        .iter()
        .filter(|c| c.latency() > REFUSED_FAST)
        .collect();
    assert_eq!(
        waited.len(),
        1,
        "only the first call waits for the frozen server: {waited:#?}"
    );
    for call in &failed[1..] {
        let Outcome::Failed(e) = &call.outcome else {
            unreachable!("filtered on failures")
        };
        assert!(
            e.is_unavailable() && chain(e).contains("circuit breaker open"),
            "later calls are refused by the breaker: {}",
            chain(e)
        );
    }
    let after_thaw: Vec<_> = calls
        .iter()
        .filter(|c| c.started >= thawed_at && c.latency() > REFUSED_FAST)
        .collect();
    assert!(
        after_thaw.iter().all(|c| c.outcome.is_ok()),
        "a call started after the thaw waited and failed: {after_thaw:#?}"
    );
    println!(
        "{label}: frozen for {:?}, first call {:?}, slowest refused call {:?}, \
         thaw -> first success {:?}, max call {:?} ({})",
        numbers.fault_to_reference,
        failed[0].latency(),
        failed[1..].iter().map(|c| c.latency()).max(),
        numbers.reference_to_success,
        numbers.max_latency,
        numbers.max_latency_op
    );
}
