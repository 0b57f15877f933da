//! `GET /metrics`: the Prometheus text of every metric the process
//! records through the `metrics` facade (kv-module's stores and
//! components, and the HTTP figures of [`request_span`](crate::request_span)),
//! rendered by `metrics-exporter-prometheus`. The names are listed in
//! `docs/EXAMPLE_APP.md`. Routed only when `app.metrics` is on
//! (`APP_METRICS`, the default); off, `/metrics` is an unknown route (404).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;

/// The metrics in the Prometheus text format (version 0.0.4). Rendering
/// reads local counters only: it answers while a store is down.
pub async fn metrics(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}
