//! A full issue → verify → create-session → cycle → delete flow, with every
//! span and event captured at `TRACE` by a minimal subscriber, writes
//! neither a one-time code nor a session id to the logs, nor to any `Debug`
//! output of the values it hands out — on Redis, on the memory backend and
//! on a Redis Cluster.

use std::sync::Arc;
use std::time::Duration;

use kv_module::Secret;
use kv_module::otp::{
    ClientId, DeliveryOutcome, HandoverOutcome, IssueOutcome, KvOneTimeCodes, OneTimeCodes,
    OneTimeCodesExt, OtpConfig, VerifyOutcome,
};
use kv_module::registry::StoreRef;
use kv_module::session::{KvSessions, SessionConfig, SessionData, Sessions};
use kv_module::store::KvStore;
use kv_module_tests::backends::{ClusterBackend, MemoryBackend, RedisBackend};
use kv_module_tests::conformance::Backend;
use kv_module_tests::log_capture::LogCapture;
use kv_module_tests::slot_checking_store::SlotCheckedBackend;

// The capture is the thread's default subscriber, so the flow runs on a
// current-thread runtime: every task (redis-rs' connection tasks too) is
// polled on this thread and seen by the capture.
#[tokio::test(flavor = "current_thread")]
async fn redis_no_code_or_session_id_in_logs_of_a_full_flow() {
    let backend = SlotCheckedBackend::new(RedisBackend::start().await);
    full_flow_logs_no_secret(&backend).await;
}

#[tokio::test(flavor = "current_thread")]
async fn memory_no_code_or_session_id_in_logs_of_a_full_flow() {
    full_flow_logs_no_secret(&SlotCheckedBackend::new(MemoryBackend::new())).await;
}

#[tokio::test(flavor = "current_thread")]
async fn cluster_no_code_or_session_id_in_logs_of_a_full_flow() {
    let backend = SlotCheckedBackend::new(ClusterBackend::shared());
    full_flow_logs_no_secret(&backend).await;
}

async fn full_flow_logs_no_secret(backend: &impl Backend) {
    let capture = LogCapture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let store: Arc<dyn KvStore> = backend.store("auth", 0, "app").await;
    // Eight digits, so the code cannot appear by chance in a hash.
    let otp = KvOneTimeCodes::new(
        store.clone(),
        OtpConfig::new(StoreRef::new("auth"))
            .with_secret(Secret::new("a test secret that is at least 32 bytes long"))
            .with_code_length(8)
            .with_resend_cooldown(Duration::ZERO),
    )
    .unwrap();
    let dev = KvOneTimeCodes::new(
        store.clone(),
        OtpConfig::new(StoreRef::new("auth")).with_dev_secret(true),
    )
    .unwrap();
    let sessions = KvSessions::new(store, SessionConfig::new(StoreRef::new("auth"))).unwrap();
    let mut secrets = Vec::new();
    let mut debug = String::new();

    let IssueOutcome::Issued(issued) = otp.issue("ada@example.com", "login").await.unwrap() else {
        panic!("first code");
    };
    secrets.push(issued.code.expose().to_owned());
    debug.push_str(&format!("{issued:?} {:?} {}", issued.code, issued.code));
    let wrong = "00000000";
    let outcome = otp.verify("ada@example.com", "login", wrong).await.unwrap();
    debug.push_str(&format!("{outcome:?}"));
    let outcome = otp
        .verify("ada@example.com", "login", issued.code.expose())
        .await
        .unwrap();
    assert_eq!(outcome, VerifyOutcome::Verified);
    // The hand-over forms, from a client whose address must not be logged
    // either: a failed delivery (withdrawn), a delivered code, a failed and
    // then a successful hand-over.
    let client = ClientId::from_ip([203, 0, 113, 77].into());
    debug.push_str(&format!("{client:?}"));
    let failed = otp
        .issue_and("bo@example.com", "login", &client, |_| async {
            Err::<(), _>("mail down")
        })
        .await
        .unwrap();
    assert_eq!(failed, DeliveryOutcome::Failed("mail down"));
    let DeliveryOutcome::Delivered(code) = otp
        .issue_and("bo@example.com", "login", &client, |issued| async move {
            Ok::<_, ()>(issued.code)
        })
        .await
        .unwrap()
    else {
        panic!("a withdrawn code spends no cooldown");
    };
    secrets.push(code.expose().to_owned());
    let handover = otp
        .verify_and(
            "bo@example.com",
            "login",
            code.expose(),
            &client,
            || async { Err::<(), _>("store down") },
        )
        .await
        .unwrap();
    assert_eq!(handover, HandoverOutcome::Failed("store down"));
    let handover = otp
        .verify_and(
            "bo@example.com",
            "login",
            code.expose(),
            &client,
            || async { Ok::<_, ()>(()) },
        )
        .await
        .unwrap();
    assert_eq!(handover, HandoverOutcome::Verified(()));
    debug.push_str(&format!("{handover:?}"));
    secrets.push("203.0.113.77".to_owned());

    if let IssueOutcome::Issued(other) = dev.issue("ada@example.com", "login").await.unwrap() {
        secrets.push(other.code.expose().to_owned());
    }

    let id = sessions
        .create(SessionData::new("ada@example.com"))
        .await
        .unwrap();
    secrets.push(id.expose().to_owned());
    let session = sessions.load(&id).await.unwrap().expect("created");
    debug.push_str(&format!("{id:?} {id} {session:?} {sessions:?} {otp:?}"));
    let new_id = sessions.cycle_id(&id).await.unwrap().expect("exists");
    secrets.push(new_id.expose().to_owned());
    assert!(sessions.refresh(&new_id).await.unwrap());
    assert_eq!(
        sessions
            .list_user_sessions("ada@example.com")
            .await
            .unwrap()
            .len(),
        1
    );
    // Error paths log too (`err` on the spans).
    assert!(sessions.create(SessionData::new("")).await.is_err());
    assert!(otp.verify("", "login", issued.code.expose()).await.is_err());
    assert!(sessions.delete(&new_id).await.unwrap());
    assert!(!sessions.delete(&id).await.unwrap());

    let logs = capture.text();
    assert!(
        logs.contains("span create") && logs.contains("session created"),
        "{logs}"
    );
    assert!(
        logs.contains("span verify") && logs.contains("WARN"),
        "{logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "`{secret}` logged:\n{logs}"
        );
        assert!(
            !debug.contains(secret.as_str()),
            "`{secret}` in Debug:\n{debug}"
        );
    }
    assert!(!logs.contains("a test secret"), "{logs}");
}
