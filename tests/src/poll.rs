//! Polling a condition with a short interval and a real deadline: how the
//! fixtures wait for servers, instead of sleeping for a guessed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// Pause between two checks: short next to the timings being waited for
/// (a failover takes seconds), long enough not to busy the 2-core machine.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `check` until it returns `Ok`, every [`POLL_INTERVAL`], and
/// returns its value. `Err` describes what was seen instead, for the
/// panic when `timeout` passes.
///
/// The deadline is on the std clock, so a test running with paused tokio
/// time still gets a real one.
///
/// # Panics
///
/// When `check` has not succeeded within `timeout`, with `what` and the
/// last state seen.
pub(crate) async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) if Instant::now() >= deadline => {
                panic!("{what}: not done within {timeout:?}; last seen: {state}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// Runs `check` every [`POLL_INTERVAL`] until it returns true (then
/// true) or `timeout` passes (then false): for a wait that may fail and be
/// retried.
pub(crate) async fn within<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
