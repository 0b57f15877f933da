//! [`ServiceHealth`]: what [`ServiceRegistry::health`](super::ServiceRegistry::health)
//! reports for each service.

use std::time::Duration;

/// The state of one service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "error")]
pub enum ServiceState {
    /// The service answered its check.
    Up,
    /// The check failed; the error message (never a secret).
    Down(String),
    /// The service has no check (it is not a store).
    NotChecked,
}

/// The health of one service: its state and how long the check took.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServiceHealth {
    /// Service name.
    pub name: String,
    /// Service type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The outcome.
    #[serde(flatten)]
    pub state: ServiceState,
    /// Time the check took, in milliseconds (fractional).
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
}

impl ServiceHealth {
    /// Whether the service is usable (up, or not checked).
    pub fn is_ok(&self) -> bool {
        !matches!(self.state, ServiceState::Down(_))
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}
