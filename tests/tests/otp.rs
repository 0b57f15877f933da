//! The one-time-code service on every backend: every case is written once
//! as a generic async function over a [`Backend`] and instantiated for
//! Redis (a `redis-server` per test), for the memory backend and for the
//! shared Redis Cluster of this test binary by `backend_suite!`. The last cases run the whole login flow — code, session,
//! logout — over HTTP with both components injected by shaku.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRef, Path};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kv_module::config::ConfigLoader;
use kv_module::otp::{
    ClaimOutcome, ClientId, DeliveryOutcome, HandoverOutcome, IssueOutcome, IssuedCode,
    KvOneTimeCodes, OneTimeCodes, OneTimeCodesExt, OtpCode, OtpConfig, RefusalReason, RetryAfter,
    VerifyOutcome,
};
use kv_module::registry::{ServiceRegistry, ServiceTypes, StoreRef};
use kv_module::session::{CurrentSession, KvSessions, SessionConfig, SessionData, Sessions};
use kv_module::{KeyTtl, KvError, Secret};
use kv_module_tests::conformance::Backend;
use shaku::{HasComponent, module};
use shaku_axum::Inject;

kv_module_tests::backend_suite! {
    components:
    concurrent_verifies_of_the_right_code_succeed_once,
    concurrent_issues_respect_the_cooldown,
    max_attempts_burn_the_code,
    subject_failure_budget_locks_until_the_window_passes,
    reissue_invalidates_the_previous_code,
    cooldown_and_daily_cap_return_retry_after,
    a_code_verifies_only_its_purpose_and_subject,
    codes_expire_with_their_lifetime,
    code_lengths_are_configurable,
    no_code_or_session_id_in_the_store_and_every_key_expires,
    login_flow_over_http_with_shaku,
    one_client_exhausting_its_budget_does_not_stop_another,
    per_subject_ceilings_hold_across_clients,
    verify_and_with_a_failing_closure_leaves_the_code_usable,
    a_claim_whose_holder_died_expires,
    a_failed_issue_and_spends_neither_cooldown_nor_cap,
    withdraw_leaves_a_newer_or_tried_code_alone,
    concurrent_verify_and_has_one_winner_and_every_key_expires,
}

// ---- helpers

const SECRET: &str = "a test secret that is at least 32 bytes long";
const SUBJECT: &str = "ada@example.com";

fn config() -> OtpConfig {
    OtpConfig::new(StoreRef::new("otp")).with_secret(Secret::new(SECRET))
}

async fn service(b: &impl Backend, config: OtpConfig) -> KvOneTimeCodes {
    KvOneTimeCodes::new(b.store("otp", 0, "otp").await, config).expect("valid config")
}

async fn issue(otp: &KvOneTimeCodes, subject: &str, purpose: &str) -> IssuedCode {
    match otp.issue(subject, purpose).await.unwrap() {
        IssueOutcome::Issued(issued) => issued,
        IssueOutcome::Refused(refused) => panic!("refused: {refused:?}"),
    }
}

async fn refused(otp: &KvOneTimeCodes, subject: &str, purpose: &str) -> RetryAfter {
    match otp.issue(subject, purpose).await.unwrap() {
        IssueOutcome::Refused(refused) => refused,
        IssueOutcome::Issued(_) => panic!("a code was issued"),
    }
}

/// A code of the same length that is not `code`.
fn wrong(code: &OtpCode) -> String {
    code.expose()
        .bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

// ---- cases

/// Acceptance 1: 50 concurrent verifications of the right code — exactly
/// one succeeds, the others find no code.
async fn concurrent_verifies_of_the_right_code_succeed_once(b: &impl Backend) {
    let otp = Arc::new(service(b, config()).await);
    for round in 0..3 {
        let subject = format!("user-{round}@example.com");
        let code = issue(&otp, &subject, "login").await.code;
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (otp, subject, code) = (otp.clone(), subject.clone(), code.clone());
                tokio::spawn(async move { otp.verify(&subject, "login", code.expose()).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().unwrap());
        }
        let verified = outcomes.iter().filter(|o| o.is_verified()).count();
        assert_eq!(verified, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| o.is_verified() || *o == VerifyOutcome::ExpiredOrUnknown),
            "{outcomes:?}"
        );
    }
}

/// 20 concurrent requests for a code: one is issued, the others are
/// refused by the cooldown.
async fn concurrent_issues_respect_the_cooldown(b: &impl Backend) {
    let otp = Arc::new(service(b, config()).await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let otp = otp.clone();
            tokio::spawn(async move { otp.issue(SUBJECT, "login").await })
        })
        .collect();
    let mut issued = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            IssueOutcome::Issued(code) => issued.push(code),
            IssueOutcome::Refused(r) => assert_eq!(r.reason, RefusalReason::Cooldown),
        }
    }
    assert_eq!(issued.len(), 1);
    let outcome = otp.verify(SUBJECT, "login", issued[0].code.expose()).await;
    assert_eq!(outcome.unwrap(), VerifyOutcome::Verified);
}

/// Acceptance 2 (per code): after `max_attempts` wrong guesses the right
/// code no longer verifies.
async fn max_attempts_burn_the_code(b: &impl Backend) {
    let otp = service(b, config().with_max_attempts(3)).await;
    let code = issue(&otp, SUBJECT, "login").await.code;
    let guess = wrong(&code);
    for left in [2, 1, 0] {
        assert_eq!(
            otp.verify(SUBJECT, "login", &guess).await.unwrap(),
            VerifyOutcome::Invalid {
                attempts_left: left
            }
        );
    }
    assert_eq!(
        otp.verify(SUBJECT, "login", code.expose()).await.unwrap(),
        VerifyOutcome::ExpiredOrUnknown,
        "burned"
    );
}

/// Acceptance 2 (per subject): failures count across codes and purposes;
/// past the budget the subject gets no codes and no checks until the
/// window passes.
async fn subject_failure_budget_locks_until_the_window_passes(b: &impl Backend) {
    let window = Duration::from_millis(1_500);
    let config = config()
        .with_max_attempts(3)
        .with_resend_cooldown(Duration::ZERO)
        .with_subject_failure_limit(4)
        .with_subject_failure_window(window);
    let otp = service(b, config).await;
    let started = Instant::now();
    let first = issue(&otp, SUBJECT, "login").await.code;
    for _ in 0..3 {
        let outcome = otp.verify(SUBJECT, "login", &wrong(&first)).await.unwrap();
        assert!(
            matches!(outcome, VerifyOutcome::Invalid { .. }),
            "{outcome:?}"
        );
    }
    // A new code does not reset the subject's budget: one failure left.
    let second = issue(&otp, SUBJECT, "reset").await.code;
    let outcome = otp.verify(SUBJECT, "reset", &wrong(&second)).await.unwrap();
    let VerifyOutcome::Locked { retry_after } = outcome else {
        panic!("the fourth failure locks: {outcome:?}");
    };
    assert!(
        retry_after <= window && retry_after > Duration::ZERO,
        "{retry_after:?}"
    );

    let locked = refused(&otp, SUBJECT, "login").await;
    assert_eq!(locked.reason, RefusalReason::Locked);
    assert!(locked.retry_after <= window);
    assert!(matches!(
        otp.verify(SUBJECT, "reset", second.expose()).await.unwrap(),
        VerifyOutcome::Locked { .. }
    ));
    let other = issue(&otp, "someone-else@example.com", "login").await;
    assert!(
        other.lifetime > Duration::ZERO,
        "other subjects are unaffected"
    );

    tokio::time::sleep((window + Duration::from_millis(200)).saturating_sub(started.elapsed()))
        .await;
    let fresh = issue(&otp, SUBJECT, "login").await.code;
    assert_eq!(
        otp.verify(SUBJECT, "login", fresh.expose()).await.unwrap(),
        VerifyOutcome::Verified
    );
}

/// Acceptance 3: only the latest code of a subject and purpose verifies.
async fn reissue_invalidates_the_previous_code(b: &impl Backend) {
    let otp = service(b, config().with_resend_cooldown(Duration::ZERO)).await;
    let first = issue(&otp, SUBJECT, "login").await.code;
    let mut second = issue(&otp, SUBJECT, "login").await.code;
    while second == first {
        // One draw in a million repeats the code; draw again.
        second = issue(&otp, SUBJECT, "login").await.code;
    }
    assert!(matches!(
        otp.verify(SUBJECT, "login", first.expose()).await.unwrap(),
        VerifyOutcome::Invalid { .. }
    ));
    assert_eq!(
        otp.verify(SUBJECT, "login", second.expose()).await.unwrap(),
        VerifyOutcome::Verified
    );
}

/// Acceptance 3: the cooldown (per subject and purpose) and the daily cap
/// (per subject) refuse with a `retry_after`.
async fn cooldown_and_daily_cap_return_retry_after(b: &impl Backend) {
    let otp = service(b, config()).await;
    let issued = issue(&otp, SUBJECT, "login").await;
    assert_eq!(issued.lifetime, Duration::from_secs(300));
    let cooldown = refused(&otp, SUBJECT, "login").await;
    assert_eq!(cooldown.reason, RefusalReason::Cooldown);
    assert!(
        cooldown.retry_after > Duration::from_secs(25)
            && cooldown.retry_after <= Duration::from_secs(30),
        "{cooldown:?}"
    );
    issue(&otp, SUBJECT, "reset").await; // another purpose: its own cooldown
    assert_eq!(
        otp.verify(SUBJECT, "login", issued.code.expose())
            .await
            .unwrap(),
        VerifyOutcome::Verified,
        "a refused re-issue leaves the code valid"
    );

    let capped = service(
        b,
        config()
            .with_resend_cooldown(Duration::ZERO)
            .with_daily_cap(3),
    )
    .await;
    let subject = "capped@example.com";
    for purpose in ["login", "login", "reset"] {
        issue(&capped, subject, purpose).await;
    }
    for purpose in ["login", "other"] {
        let cap = refused(&capped, subject, purpose).await;
        assert_eq!(cap.reason, RefusalReason::DailyCap);
        assert!(
            cap.retry_after > Duration::from_secs(23 * 3600)
                && cap.retry_after <= Duration::from_secs(24 * 3600),
            "{cap:?}"
        );
    }
    issue(&capped, "uncapped@example.com", "login").await;
}

/// A code verifies only for the subject and purpose it was issued for.
async fn a_code_verifies_only_its_purpose_and_subject(b: &impl Backend) {
    let otp = service(b, config()).await;
    let login = issue(&otp, SUBJECT, "login").await.code;
    assert_eq!(
        otp.verify(SUBJECT, "reset-password", login.expose())
            .await
            .unwrap(),
        VerifyOutcome::ExpiredOrUnknown
    );
    assert_eq!(
        otp.verify("eve@example.com", "login", login.expose())
            .await
            .unwrap(),
        VerifyOutcome::ExpiredOrUnknown
    );
    let reset = issue(&otp, SUBJECT, "reset-password").await.code;
    if reset != login {
        assert!(matches!(
            otp.verify(SUBJECT, "reset-password", login.expose())
                .await
                .unwrap(),
            VerifyOutcome::Invalid { .. }
        ));
    }
    assert!(
        otp.verify(SUBJECT, "login", login.expose())
            .await
            .unwrap()
            .is_verified()
    );
    assert!(
        otp.verify(SUBJECT, "reset-password", reset.expose())
            .await
            .unwrap()
            .is_verified()
    );
    assert!(matches!(
        otp.issue("", "login").await,
        Err(KvError::InvalidArgument { .. })
    ));
}

/// A code past its lifetime is unknown.
async fn codes_expire_with_their_lifetime(b: &impl Backend) {
    let otp = service(b, config().with_ttl(Duration::from_millis(300))).await;
    let issued = issue(&otp, SUBJECT, "login").await;
    assert_eq!(issued.lifetime, Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        otp.verify(SUBJECT, "login", issued.code.expose())
            .await
            .unwrap(),
        VerifyOutcome::ExpiredOrUnknown
    );
}

/// Codes have the configured number of digits, from 4 to 10.
async fn code_lengths_are_configurable(b: &impl Backend) {
    for digits in [4_u8, 6, 10] {
        let otp = service(b, config().with_code_length(digits)).await;
        let subject = format!("digits-{digits}");
        let code = issue(&otp, &subject, "login").await.code;
        assert_eq!(code.expose().len(), usize::from(digits));
        assert!(code.expose().bytes().all(|c| c.is_ascii_digit()));
        assert!(
            otp.verify(&subject, "login", code.expose())
                .await
                .unwrap()
                .is_verified()
        );
    }
}

/// Acceptance 4 (store): through issue → wrong guess → verify → session →
/// cycle → delete, no key or value holds the code or the session ids, no
/// key names the subject, and every key carries a TTL.
async fn no_code_or_session_id_in_the_store_and_every_key_expires(b: &impl Backend) {
    // Eight digits, so that the code cannot appear by chance inside a
    // 13-digit timestamp or a hex digest of the store's other values.
    let otp = service(b, config().with_code_length(8)).await;
    let sessions = KvSessions::new(
        b.store("sessions", 0, "sessions").await,
        SessionConfig::new(StoreRef::new("sessions")),
    )
    .unwrap();
    let raw = b.store("raw", 0, "").await;
    let mut secrets: Vec<String> = Vec::new();
    let scan = |secrets: Vec<String>| {
        let raw = raw.clone();
        async move {
            let keys = raw.keys("*").await.unwrap();
            assert!(!keys.is_empty());
            for key in keys {
                let value = raw.get_bytes(&key).await.unwrap().unwrap_or_default();
                let value = String::from_utf8_lossy(&value);
                for secret in &secrets {
                    assert!(!key.contains(secret.as_str()), "`{secret}` in key `{key}`");
                    assert!(!value.contains(secret.as_str()), "`{secret}` in `{key}`");
                }
                // The subject is in no key name, and in no value but the
                // session record's data (its user id).
                assert!(!key.contains(SUBJECT), "subject in key `{key}`");
                if key.starts_with("otp:") {
                    assert!(!value.contains(SUBJECT), "subject in `{key}`");
                }
                assert!(
                    matches!(raw.ttl(&key).await.unwrap(), KeyTtl::ExpiresIn(_)),
                    "`{key}` must expire"
                );
            }
        }
    };

    let code = issue(&otp, SUBJECT, "login").await.code;
    secrets.push(code.expose().to_owned());
    scan(secrets.clone()).await;
    assert!(matches!(
        otp.verify(SUBJECT, "login", &wrong(&code)).await.unwrap(),
        VerifyOutcome::Invalid { .. }
    ));
    scan(secrets.clone()).await;
    assert!(
        otp.verify(SUBJECT, "login", code.expose())
            .await
            .unwrap()
            .is_verified()
    );
    let id = sessions.create(SessionData::new(SUBJECT)).await.unwrap();
    secrets.push(id.expose().to_owned());
    scan(secrets.clone()).await;
    let id = sessions.cycle_id(&id).await.unwrap().expect("exists");
    secrets.push(id.expose().to_owned());
    scan(secrets.clone()).await;
    assert!(sessions.delete(&id).await.unwrap());
    scan(secrets.clone()).await;
    let distinct: BTreeSet<&String> = secrets.iter().collect();
    assert_eq!(distinct.len(), 3);
}

// ---- abuse: budgets per client, ceilings per subject

fn client(n: u8) -> ClientId {
    ClientId::from_ip(std::net::IpAddr::from([198, 51, 100, n]))
}

async fn issue_from(otp: &KvOneTimeCodes, subject: &str, client: &ClientId) -> IssueOutcome {
    otp.issue_from(subject, "login", client).await.unwrap()
}

/// Defect 5: one client spending its daily cap and its failure budget on a
/// subject leaves another client able to get and use a code.
async fn one_client_exhausting_its_budget_does_not_stop_another(b: &impl Backend) {
    let config = config()
        .with_resend_cooldown(Duration::ZERO)
        .with_client_daily_cap(3)
        .with_client_failure_limit(4)
        .with_max_attempts(20);
    let otp = service(b, config).await;
    let (attacker, user) = (client(1), client(2));
    let mut last = None;
    for _ in 0..3 {
        match issue_from(&otp, SUBJECT, &attacker).await {
            IssueOutcome::Issued(issued) => last = Some(issued.code),
            IssueOutcome::Refused(r) => panic!("within the client's cap: {r:?}"),
        }
    }
    let IssueOutcome::Refused(capped) = issue_from(&otp, SUBJECT, &attacker).await else {
        panic!("the attacker's fourth code must be refused");
    };
    assert_eq!(capped.reason, RefusalReason::ClientDailyCap);
    assert!(
        capped.retry_after > Duration::from_secs(23 * 3600),
        "{capped:?}"
    );

    // The attacker's wrong guesses lock the attacker, not the subject.
    let guess = wrong(&last.expect("issued"));
    for _ in 0..3 {
        let outcome = otp
            .verify_from(SUBJECT, "login", &guess, &attacker)
            .await
            .unwrap();
        assert!(
            matches!(outcome, VerifyOutcome::Invalid { .. }),
            "{outcome:?}"
        );
    }
    let outcome = otp
        .verify_from(SUBJECT, "login", &guess, &attacker)
        .await
        .unwrap();
    assert!(
        matches!(outcome, VerifyOutcome::Locked { .. }),
        "{outcome:?}"
    );
    let IssueOutcome::Refused(locked) = issue_from(&otp, SUBJECT, &attacker).await else {
        panic!("a locked client gets no code");
    };
    assert_eq!(locked.reason, RefusalReason::Locked);

    // The user, from another client, gets a code and logs in.
    let IssueOutcome::Issued(mine) = issue_from(&otp, SUBJECT, &user).await else {
        panic!("another client must get a code");
    };
    assert_eq!(
        otp.verify_from(SUBJECT, "login", mine.code.expose(), &user)
            .await
            .unwrap(),
        VerifyOutcome::Verified
    );
}

/// The per-subject ceilings (issues per day, failures per window) hold
/// whatever the number of clients.
async fn per_subject_ceilings_hold_across_clients(b: &impl Backend) {
    let config = config()
        .with_resend_cooldown(Duration::ZERO)
        .with_daily_cap(4)
        .with_client_daily_cap(2)
        .with_subject_failure_limit(6)
        .with_client_failure_limit(3)
        .with_max_attempts(20);
    let otp = service(b, config).await;
    let mut code = None;
    for n in [1, 1, 2, 2] {
        match issue_from(&otp, SUBJECT, &client(n)).await {
            IssueOutcome::Issued(issued) => code = Some(issued.code),
            IssueOutcome::Refused(r) => panic!("under both caps: {r:?}"),
        }
    }
    let IssueOutcome::Refused(ceiling) = issue_from(&otp, SUBJECT, &client(3)).await else {
        panic!("the subject's ceiling must hold for a third client");
    };
    assert_eq!(ceiling.reason, RefusalReason::DailyCap);

    let code = code.expect("issued");
    for n in [4, 5] {
        for _ in 0..3 {
            let outcome = otp
                .verify_from(SUBJECT, "login", &wrong(&code), &client(n))
                .await
                .unwrap();
            assert!(
                matches!(
                    outcome,
                    VerifyOutcome::Invalid { .. } | VerifyOutcome::Locked { .. }
                ),
                "{outcome:?}"
            );
        }
    }
    let outcome = otp
        .verify_from(SUBJECT, "login", code.expose(), &client(6))
        .await
        .unwrap();
    assert!(
        matches!(outcome, VerifyOutcome::Locked { .. }),
        "six failures lock the subject for every client: {outcome:?}"
    );
}

// ---- hand-over: claim, then commit or release

#[derive(Debug, PartialEq, Eq)]
struct StoreDown;

/// Defect 8: when the work after a right code fails (no session could be
/// created), the code stays usable and no attempt is spent; during the
/// work the code is claimed (a concurrent verification is told so).
async fn verify_and_with_a_failing_closure_leaves_the_code_usable(b: &impl Backend) {
    let otp = Arc::new(service(b, config().with_max_attempts(1)).await);
    let code = issue(&otp, SUBJECT, "login").await.code;
    let me = client(1);
    for _ in 0..3 {
        let outcome = otp
            .verify_and(SUBJECT, "login", code.expose(), &me, || async {
                Err::<(), _>(StoreDown)
            })
            .await
            .unwrap();
        assert_eq!(outcome, HandoverOutcome::Failed(StoreDown));
    }
    let inner = otp.clone();
    let right = code.clone();
    let outcome = otp
        .verify_and(SUBJECT, "login", code.expose(), &me, || async move {
            let during = inner
                .verify_from(SUBJECT, "login", right.expose(), &client(2))
                .await
                .unwrap();
            Ok::<_, StoreDown>(during)
        })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        HandoverOutcome::Verified(VerifyOutcome::InProgress),
        "the claimed code verifies for nobody else meanwhile"
    );
    let again = otp
        .verify_and(SUBJECT, "login", code.expose(), &me, || async {
            Ok::<_, StoreDown>(())
        })
        .await
        .unwrap();
    assert_eq!(
        again,
        HandoverOutcome::Rejected(VerifyOutcome::ExpiredOrUnknown),
        "committed: single use"
    );
}

/// A claim whose holder never commits nor releases (it died) expires after
/// `claim_ttl`, and the code is usable again.
async fn a_claim_whose_holder_died_expires(b: &impl Backend) {
    let claim_ttl = Duration::from_millis(400);
    let otp = service(b, config().with_claim_ttl(claim_ttl)).await;
    let code = issue(&otp, SUBJECT, "login").await.code;
    let started = Instant::now();
    let ClaimOutcome::Claimed(claim) = otp
        .claim(SUBJECT, "login", code.expose(), &client(1))
        .await
        .unwrap()
    else {
        panic!("the right code is claimed");
    };
    drop(claim); // the holder dies
    assert_eq!(
        otp.verify(SUBJECT, "login", code.expose()).await.unwrap(),
        VerifyOutcome::InProgress
    );
    tokio::time::sleep((claim_ttl + Duration::from_millis(150)).saturating_sub(started.elapsed()))
        .await;
    assert_eq!(
        otp.verify(SUBJECT, "login", code.expose()).await.unwrap(),
        VerifyOutcome::Verified
    );
}

/// A failed delivery (`issue_and` whose closure fails) withdraws the code:
/// neither the cooldown nor the daily caps are spent.
async fn a_failed_issue_and_spends_neither_cooldown_nor_cap(b: &impl Backend) {
    let config = config()
        .with_resend_cooldown(Duration::from_secs(30))
        .with_daily_cap(1)
        .with_client_daily_cap(1);
    let otp = service(b, config).await;
    let me = client(1);
    let mut withdrawn = None;
    let failed = otp
        .issue_and(SUBJECT, "login", &me, |issued| {
            withdrawn = Some(issued.code.clone());
            async { Err::<(), _>(StoreDown) }
        })
        .await
        .unwrap();
    assert_eq!(failed, DeliveryOutcome::Failed(StoreDown));
    let withdrawn = withdrawn.expect("the closure saw the code");
    assert_eq!(
        otp.verify(SUBJECT, "login", withdrawn.expose())
            .await
            .unwrap(),
        VerifyOutcome::ExpiredOrUnknown,
        "a withdrawn code does not verify"
    );
    let delivered = otp
        .issue_and(SUBJECT, "login", &me, |issued| async move {
            Ok::<_, StoreDown>(issued.code)
        })
        .await
        .unwrap();
    let DeliveryOutcome::Delivered(code) = delivered else {
        panic!("no cooldown and no cap were spent: {delivered:?}");
    };
    let refused = otp
        .issue_and(SUBJECT, "login", &me, |_| async { Ok::<_, StoreDown>(()) })
        .await
        .unwrap();
    assert!(
        matches!(refused, DeliveryOutcome::Refused(_)),
        "{refused:?}"
    );
    assert_eq!(
        otp.verify(SUBJECT, "login", code.expose()).await.unwrap(),
        VerifyOutcome::Verified
    );
}

/// Withdrawing removes only the code it names, still unused: a newer code
/// and a code already tried stay, and the counters are left alone.
async fn withdraw_leaves_a_newer_or_tried_code_alone(b: &impl Backend) {
    let config = config()
        .with_resend_cooldown(Duration::ZERO)
        .with_daily_cap(3)
        .with_max_attempts(5);
    let otp = service(b, config).await;
    let me = client(1);
    let older = issue(&otp, SUBJECT, "login").await.code;
    let mut newer = issue(&otp, SUBJECT, "login").await.code;
    while newer == older {
        newer = issue(&otp, SUBJECT, "login").await.code;
    }
    assert!(!otp.withdraw(SUBJECT, "login", &me, &older).await.unwrap());
    assert!(
        otp.verify(SUBJECT, "login", newer.expose())
            .await
            .unwrap()
            .is_verified(),
        "the newer code survives"
    );

    let tried = match otp.issue(SUBJECT, "login").await.unwrap() {
        IssueOutcome::Issued(issued) => issued.code,
        IssueOutcome::Refused(r) => panic!("the third code is within the cap: {r:?}"),
    };
    assert!(matches!(
        otp.verify(SUBJECT, "login", &wrong(&tried)).await.unwrap(),
        VerifyOutcome::Invalid { .. }
    ));
    assert!(!otp.withdraw(SUBJECT, "login", &me, &tried).await.unwrap());
    assert!(
        otp.verify(SUBJECT, "login", tried.expose())
            .await
            .unwrap()
            .is_verified(),
        "a tried code is not withdrawn"
    );
    let capped = refused(&otp, SUBJECT, "login").await;
    assert_eq!(
        capped.reason,
        RefusalReason::DailyCap,
        "no count was given back"
    );
}

/// 20 concurrent `verify_and` of the right code: exactly one hand-over
/// runs; the others are told the code is in progress or gone. Every key
/// the service wrote carries a TTL.
async fn concurrent_verify_and_has_one_winner_and_every_key_expires(b: &impl Backend) {
    let otp = Arc::new(service(b, config()).await);
    for round in 0..3 {
        let subject = format!("racer-{round}@example.com");
        let code = issue(&otp, &subject, "login").await.code;
        let tasks: Vec<_> = (0..20_u8)
            .map(|n| {
                let (otp, subject, code) = (otp.clone(), subject.clone(), code.clone());
                tokio::spawn(async move {
                    otp.verify_and(
                        &subject,
                        "login",
                        code.expose(),
                        &client(n),
                        || async move {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, StoreDown>(n)
                        },
                    )
                    .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().unwrap());
        }
        let winners = outcomes
            .iter()
            .filter(|o| matches!(o, HandoverOutcome::Verified(_)))
            .count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.iter().all(|o| matches!(
                o,
                HandoverOutcome::Verified(_)
                    | HandoverOutcome::Rejected(
                        VerifyOutcome::InProgress | VerifyOutcome::ExpiredOrUnknown
                    )
            )),
            "{outcomes:?}"
        );
    }
    let raw = b.store("raw", 0, "").await;
    let keys = raw.keys("otp:*").await.unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(
            matches!(raw.ttl(&key).await.unwrap(), KeyTtl::ExpiresIn(_)),
            "`{key}` must expire"
        );
    }
}

// ---- the login flow over HTTP

module! {
    AuthModule {
        components = [KvOneTimeCodes, KvSessions],
        providers = []
    }
}

#[derive(Clone)]
struct AppState {
    module: Arc<AuthModule>,
}

impl FromRef<AppState> for Arc<AuthModule> {
    fn from_ref(state: &AppState) -> Self {
        state.module.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Sessions> {
    fn from_ref(state: &AppState) -> Self {
        state.module.resolve()
    }
}

/// Sends a code; the test app "mails" it in the response body.
async fn send_code(
    otp: Inject<AuthModule, dyn OneTimeCodes>,
    Path(email): Path<String>,
) -> Response {
    match otp.issue(&email, "login").await {
        Ok(IssueOutcome::Issued(issued)) => issued.code.expose().to_owned().into_response(),
        Ok(IssueOutcome::Refused(retry)) => retry.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Verifies a code and logs the user in with a fresh session.
async fn verify_code(
    otp: Inject<AuthModule, dyn OneTimeCodes>,
    sessions: Inject<AuthModule, dyn Sessions>,
    Path((email, code)): Path<(String, String)>,
) -> Response {
    match otp.verify(&email, "login", &code).await {
        Ok(VerifyOutcome::Verified) => match sessions.create(SessionData::new(email)).await {
            Ok(id) => {
                ([(SET_COOKIE, sessions.config().set_cookie(&id))], "welcome").into_response()
            }
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        Ok(_) => StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn me(current: CurrentSession) -> String {
    current.session.data.user_id
}

/// Acceptance 7 and the wiring: code → session cookie → authenticated
/// request, both components injected by shaku from stores on one backend.
async fn login_flow_over_http_with_shaku(b: &impl Backend) {
    let otp = service(b, config()).await;
    let sessions = KvSessions::new(
        b.store("sessions", 0, "sessions").await,
        SessionConfig::new(StoreRef::new("sessions")).with_cookie_secure(true),
    )
    .unwrap();
    let module = AuthModule::builder()
        .with_component_parameters::<KvOneTimeCodes>(otp.into_parameters())
        .with_component_parameters::<KvSessions>(sessions.into_parameters())
        .build();
    let app = Router::new()
        .route("/codes/{email}", post(send_code))
        .route("/codes/{email}/{code}", post(verify_code))
        .route("/me", get(me))
        .with_state(AppState {
            module: Arc::new(module),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();

    let sent = client
        .post(format!("{base}/codes/{SUBJECT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let code = sent.text().await.unwrap();
    let again = client
        .post(format!("{base}/codes/{SUBJECT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 429);
    assert_eq!(again.headers()["content-type"], "application/problem+json");
    let retry: u64 = again.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");

    let me_without = client.get(format!("{base}/me")).send().await.unwrap();
    assert_eq!(me_without.status(), 401);
    assert_eq!(
        me_without.headers()["content-type"],
        "application/problem+json"
    );

    let verified = client
        .post(format!("{base}/codes/{SUBJECT}/{code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    let cookie = verified.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let replay = client
        .post(format!("{base}/codes/{SUBJECT}/{code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "a code is single use");

    let me = client
        .get(format!("{base}/me"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.text().await.unwrap(), SUBJECT);
    server.abort();
}

// ---- configuration (backend-independent)

#[tokio::test]
async fn configuration_requires_a_secret_unless_dev_secret() {
    let load = |otp: &str| {
        ConfigLoader::new().load_str(
            "app.yaml",
            &format!(
                "services:\n  otp_cache:\n    type: kvstore_memory\n    config: {{ prefix: otp }}\notp:\n  store: otp_cache\n{otp}"
            ),
        )
    };
    let missing = load("  code_length: 6\n").unwrap();
    let err = missing.section::<OtpConfig>("otp").unwrap_err().to_string();
    assert!(
        err.contains("app.yaml:") && err.contains("secret is required"),
        "{err}"
    );

    let short = load("  secret: too-short\n").unwrap();
    let err = short.section::<OtpConfig>("otp").unwrap_err().to_string();
    assert!(
        err.contains("at least 32 bytes") && !err.contains("too-short"),
        "{err}"
    );

    let bad_length = load(&format!("  secret: {SECRET}\n  code_length: 12\n")).unwrap();
    let err = bad_length
        .section::<OtpConfig>("otp")
        .unwrap_err()
        .to_string();
    assert!(err.contains("code_length"), "{err}");
    let long_ttl = load(&format!("  secret: {SECRET}\n  ttl: 11m\n")).unwrap();
    let err = long_ttl
        .section::<OtpConfig>("otp")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ttl"), "{err}");

    let dev = load("  dev_secret: true\n").unwrap();
    let config: OtpConfig = dev.section("otp").unwrap().unwrap();
    assert!(config.dev_secret);
    let registry = ServiceRegistry::build(&dev, &ServiceTypes::builtin())
        .await
        .unwrap();
    let otp = KvOneTimeCodes::from_registry(&registry, "otp", config).unwrap();
    let code = issue(&otp, SUBJECT, "login").await.code;
    assert!(
        otp.verify(SUBJECT, "login", code.expose())
            .await
            .unwrap()
            .is_verified()
    );

    // A given secret with `dev_secret: true` (codes echoed in development)
    // is used, so that two instances sharing it accept each other's codes.
    let both = load(&format!("  secret: {SECRET}\n  dev_secret: true\n")).unwrap();
    let with_dev: OtpConfig = both.section("otp").unwrap().unwrap();
    let plain: OtpConfig = load(&format!("  secret: {SECRET}\n"))
        .unwrap()
        .section("otp")
        .unwrap()
        .unwrap();
    let store = registry.store("otp_cache").unwrap();
    let first = KvOneTimeCodes::new(store.clone(), with_dev).unwrap();
    let second = KvOneTimeCodes::new(store, plain).unwrap();
    let code = issue(&first, "both@example.com", "login").await.code;
    assert_eq!(
        second
            .verify("both@example.com", "login", code.expose())
            .await
            .unwrap(),
        VerifyOutcome::Verified,
        "the given secret is used, not a random one"
    );

    let full = load(&format!(
        "  secret: {SECRET}\n  code_length: 8\n  ttl: 2m\n  max_attempts: 3\n  resend_cooldown: 10s\n  daily_cap: 4\n  subject_failure_limit: 9\n  subject_failure_window: 30m\n"
    ))
    .unwrap();
    let config: OtpConfig = full.section("otp").unwrap().unwrap();
    assert_eq!(
        (
            config.code_length,
            config.ttl,
            config.max_attempts,
            config.resend_cooldown,
            config.daily_cap,
            config.subject_failure_limit,
            config.subject_failure_window,
        ),
        (
            8,
            Duration::from_secs(120),
            3,
            Duration::from_secs(10),
            4,
            9,
            Duration::from_secs(1800)
        )
    );
    assert!(!format!("{config:?}").contains(SECRET));
    registry.close().await;
}
