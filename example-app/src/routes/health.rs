//! `GET /healthz` (the process is up) and `GET /readyz` (every store
//! answers).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// 200 `{"status":"ok"}`, without touching any dependency.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when every store answers, else 503; the body lists each service's
/// state and latency.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let services = state.registry.health().await;
    let ready = services.iter().all(|s| s.is_ok());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "services": services,
        })),
    )
}
