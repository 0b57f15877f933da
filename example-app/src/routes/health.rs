//! `GET /healthz` (the process is up) and `GET /readyz` (the app can do
//! its work: every store answers and accepts a write, SQLite answers a
//! query).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kv_module::registry::ServiceState;
use kv_module::store::Ttl;
use serde_json::{Value, json};

use crate::state::AppState;

/// How long each readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The key each store's write probe sets (under the store's prefix).
const PROBE_KEY: &str = "readyz:probe";
/// The probe key expires by itself soon after.
const PROBE_TTL: Duration = Duration::from_secs(10);

/// 200 `{"status":"ok"}`, without touching any dependency.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Runs one check within [`CHECK_TIMEOUT`]; a failure is logged (with its
/// cause) and reported by name only.
async fn check<E: std::fmt::Display>(
    name: String,
    probe: impl Future<Output = Result<(), E>>,
) -> (String, bool) {
    let ok = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(check = %name, error = %e, "readiness check failed");
            false
        }
        Err(_) => {
            tracing::warn!(check = %name, timeout = ?CHECK_TIMEOUT, "readiness check timed out");
            false
        }
    };
    (name, ok)
}

/// 200 when every check passes, else 503. The body lists each service's
/// state and latency (`services`), each check by name (`checks`: a store's
/// `PING`, `<store>.write`: a `SET` of a short-lived probe key, so a store
/// that refuses writes, full at `maxmemory` say, is not ready; `sqlite`: a
/// query on the users table) and the names of the failed ones (`failed`).
/// Causes go to the log, never to the body.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let services = state.registry.health().await;
    let mut checks: Vec<(String, bool)> = Vec::new();
    let mut listed = Vec::new();
    for service in &services {
        let state_name = match &service.state {
            ServiceState::Up => "up",
            ServiceState::Down(e) => {
                tracing::warn!(service = %service.name, error = %e, "store down");
                "down"
            }
            ServiceState::NotChecked => "not_checked",
        };
        if !matches!(service.state, ServiceState::NotChecked) {
            checks.push((service.name.clone(), service.is_ok()));
        }
        listed.push(json!({
            "name": service.name,
            "type": service.type_name,
            "state": state_name,
            "latency_ms": service.latency.as_secs_f64() * 1000.0,
        }));
    }
    let writes = state
        .registry
        .names()
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), state.registry.store(name).ok()?)))
        .map(|(name, store)| async move {
            check(format!("{name}.write"), async move {
                store
                    .set_bytes(PROBE_KEY, b"1", Ttl::After(PROBE_TTL))
                    .await
            })
            .await
        });
    let db = state.db.clone();
    let sqlite = check("sqlite".to_owned(), async move {
        db.run(|c| c.query_row("SELECT count(*) FROM users WHERE id = 0", [], |_| Ok(())))
            .await
    });
    let (writes, sqlite) = tokio::join!(futures::future::join_all(writes), sqlite);
    checks.extend(writes);
    checks.push(sqlite);

    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name.as_str())
        .collect();
    let ready = failed.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let checks: Vec<Value> = checks
        .iter()
        .map(|(name, ok)| json!({ "name": name, "state": if *ok { "up" } else { "down" } }))
        .collect();
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "services": listed,
            "checks": checks,
            "failed": failed,
        })),
    )
}
