//! The session store a user would pick instead of `KvSessions`:
//! tower-sessions 0.14 with tower-sessions-redis-store 0.16 (on fred),
//! holding the same data as the kv-module bench sessions
//! (`kv_module_tests::bench::session_fixture`). Shared by the `sessions`
//! and `instructions` benches.

use std::collections::HashMap;

use kv_module_tests::TestRedis;
use kv_module_tests::bench::session_fixture::{TENANT, metadata, user_id};
use serde_json::{Value, json};
use tower_sessions::cookie::time::{self, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::SessionStore;
pub use tower_sessions_redis_store::RedisStore as TowerRedisStore;
pub use tower_sessions_redis_store::fred::prelude::Client as FredClient;
use tower_sessions_redis_store::fred::prelude::{
    ClientLike, Config as FredConfig, ConnectionConfig, TcpConfig,
};

/// The same data as a tower-sessions record.
pub fn tower_record(i: usize) -> Record {
    let mut data: HashMap<String, Value> = metadata(i)
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    data.insert("user_id".to_owned(), json!(user_id(i)));
    data.insert("tenant_id".to_owned(), json!(TENANT));
    Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(24),
    }
}

/// tower-sessions' Redis store on one fred client ([`fred_client`]),
/// holding the same data as the kv-module sessions.
pub async fn tower_store(
    server: &TestRedis,
    count: usize,
) -> (TowerRedisStore<FredClient>, Vec<Id>) {
    let store = TowerRedisStore::new(fred_client(server).await);
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let mut record = tower_record(i);
        store
            .create(&mut record)
            .await
            .expect("tower-sessions create must succeed");
        ids.push(record.id);
    }
    (store, ids)
}

/// A fred client on DB 0 of `server`: one connection, TCP_NODELAY on (as
/// every client of the benches).
pub async fn fred_client(server: &TestRedis) -> FredClient {
    let config = FredConfig::from_url(&server.url(0)).expect("test Redis URL must parse");
    let connection = ConnectionConfig {
        tcp: TcpConfig {
            nodelay: Some(true),
            ..TcpConfig::default()
        },
        ..ConnectionConfig::default()
    };
    let client = FredClient::new(config, None, Some(connection), None);
    client
        .init()
        .await
        .expect("fred must connect to the test Redis");
    client
}
