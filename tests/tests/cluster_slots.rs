//! Every script of every component, once, on stores that check each
//! script's keys hash to one Redis Cluster slot — on Redis, on the memory
//! backend, which also refuses any key a script was not given, and on a
//! Redis Cluster.
//!
//! The component suites run on the same checking stores; this file counts
//! the scripts, so that a script that stopped being checked (or a new one
//! no case reaches) shows.

use std::sync::Arc;
use std::time::Duration;

use kv_module::Secret;
use kv_module::cache_aside::{
    CacheAsideConfig, KvCachedRepository, LeaseConfig, Repository, WriteMode,
};
use kv_module::otp::{IssueOutcome, KvOneTimeCodes, OneTimeCodes, OtpConfig};
use kv_module::rate_limit::{Algorithm, KvRateLimiter, RateLimitPolicy};
use kv_module::registry::StoreRef;
use kv_module::session::{KvSessions, SessionConfig, SessionData, Sessions};
use kv_module_tests::backends::{ClusterBackend, MemoryBackend, RedisBackend};
use kv_module_tests::conformance::Backend;
use kv_module_tests::slot_checking_store::SlotCheckedBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_every_script_keeps_to_one_slot() {
    every_script_keeps_to_one_slot(SlotCheckedBackend::new(RedisBackend::start().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_every_script_keeps_to_one_slot() {
    every_script_keeps_to_one_slot(SlotCheckedBackend::new(MemoryBackend::new())).await;
}

/// On a real cluster, which refuses a script whose keys span slots
/// (`CROSSSLOT`) and routes each one to the primary of its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_every_script_keeps_to_one_slot() {
    every_script_keeps_to_one_slot(SlotCheckedBackend::new(ClusterBackend::shared())).await;
}

async fn every_script_keeps_to_one_slot<B: Backend>(b: SlotCheckedBackend<B>) {
    let log = b.log().clone();
    let mut expected = 0;
    let mut checked = |n: u64, what: &str| {
        expected += n;
        assert_eq!(log.scripts_checked(), expected, "{what}");
        assert!(log.violations().is_empty(), "{what}");
    };

    // Sessions: every write is a script of the user's tag.
    let store = b.store("sessions", 0, "app").await;
    let sessions = KvSessions::new(store, SessionConfig::new(StoreRef::new("s"))).unwrap();
    let user = "ada@example.com";
    let id = sessions.create(SessionData::new(user)).await.unwrap();
    assert!(sessions.refresh(&id).await.unwrap());
    assert!(sessions.update(&id, SessionData::new(user)).await.unwrap());
    let id = sessions.cycle_id(&id).await.unwrap().expect("exists");
    assert!(sessions.delete(&id).await.unwrap());
    let other = sessions.create(SessionData::new(user)).await.unwrap();
    assert!(
        sessions
            .delete_user_session(user, &other.handle())
            .await
            .unwrap()
    );
    sessions.create(SessionData::new(user)).await.unwrap();
    assert_eq!(sessions.delete_user_sessions(user).await.unwrap(), 1);
    checked(
        9,
        "create, refresh, update, cycle, delete, create, revoke, create, log out",
    );

    // One-time codes: issue and verify, four keys and two under one tag.
    let store = b.store("otp", 0, "otp").await;
    let config = OtpConfig::new(StoreRef::new("otp"))
        .with_secret(Secret::new("a test secret that is at least 32 bytes long"));
    let otp = KvOneTimeCodes::new(store, config).unwrap();
    let IssueOutcome::Issued(issued) = otp.issue(user, "login").await.unwrap() else {
        panic!("a first code is issued");
    };
    assert!(
        otp.verify(user, "login", issued.code.expose())
            .await
            .unwrap()
            .is_verified()
    );
    checked(2, "issue, verify");

    // The rate limiter: one key per check. A fixed-window check of cost 1
    // runs no script (it counts), so that one is of cost 2.
    let store = b.store("limits", 0, "rl").await;
    for (algorithm, cost) in [
        (Algorithm::FixedWindow, 2),
        (Algorithm::SlidingWindow, 1),
        (Algorithm::Gcra, 1),
    ] {
        let policy = RateLimitPolicy::new(algorithm, 5, Duration::from_secs(60));
        let limiter = KvRateLimiter::new(store.clone(), algorithm.as_str(), policy).unwrap();
        let decision = limiter.check_cost("ip:127.0.0.1", cost).await.unwrap();
        assert!(decision.allowed);
    }
    checked(3, "fixed window, sliding window, gcra");

    // Cache-aside with the lease: the entry and its lease share the key's
    // tag whatever the key holds.
    let store = b.store("cache", 0, "users").await;
    let config = CacheAsideConfig::new(StoreRef::new("cache"), "user", Duration::from_secs(60))
        .with_write_mode(WriteMode::WriteThrough)
        .with_lease(LeaseConfig::enabled());
    let cache = KvCachedRepository::new("users", store, Arc::new(Names), config).unwrap();
    for key in ["42", "", "}", "a{b}c", "\\"] {
        let key = key.to_owned();
        assert_eq!(
            cache.get(&key).await.unwrap(),
            Some(format!("name of {key}"))
        );
        assert_eq!(cache.update(&key, "new".to_owned()).await.unwrap(), "new");
        cache.invalidate(&key).await.unwrap();
    }
    checked(
        20,
        "observe, fill, mark, finish write, for 5 keys (invalidate is one UNLINK)",
    );
    assert!(cache.get(&"boom".to_owned()).await.is_err());
    checked(2, "observe, then release of the lease after a failed load");
    assert_eq!(cache.metrics().store_errors, 0);
}

/// A repository where every key has a name but `boom`, which fails.
struct Names;

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the database is down")
    }
}

impl std::error::Error for Down {}

impl Repository for Names {
    type Key = String;
    type Value = String;
    type New = String;
    type Update = String;
    type Error = Down;

    async fn create(&self, key: String) -> Result<(String, String), Down> {
        Ok((key.clone(), format!("name of {key}")))
    }

    async fn load(&self, key: &String) -> Result<Option<String>, Down> {
        if key == "boom" {
            return Err(Down);
        }
        Ok(Some(format!("name of {key}")))
    }

    async fn update(&self, _: &String, name: String) -> Result<String, Down> {
        Ok(name)
    }

    async fn delete(&self, _: &String) -> Result<bool, Down> {
        Ok(true)
    }
}
