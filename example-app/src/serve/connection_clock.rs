//! [`ConnectionClock`]: what one connection is doing and since when, so
//! that a watchdog can close it when a client is too slow or idle too
//! long.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a
//! keep-alive connection waits for its next request, so the idle timeout
//! could never be longer than the header deadline, and with HTTP/2
//! detection (`auto::Builder`) a client that sends nothing at all is never
//! timed out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::limits::ServerLimits;

/// The phases of a connection: reading a request head (from its accept,
/// or from the first byte after an idle spell), serving requests (their
/// bodies have deadlines of their own, see
/// [`read_body`](super::read_body)), idle between requests.
#[derive(Debug)]
pub struct ConnectionClock {
    epoch: Instant,
    /// Milliseconds after `epoch` when the current phase began.
    since_ms: AtomicU64,
    in_flight: AtomicUsize,
    reading_head: AtomicBool,
}

/// What the watchdog should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the connection; look again after this long.
    Keep(Duration),
    /// Close it: the client is past the header deadline.
    HeaderTimeout,
    /// Close it: idle longer than the keep-alive timeout.
    Idle,
}

/// A request being served; dropping it (the response is ready, or the
/// connection died) starts the idle phase.
#[derive(Debug)]
pub struct InFlight {
    clock: Arc<ConnectionClock>,
}

impl Default for ConnectionClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionClock {
    /// A clock for a connection just accepted: its first request head is
    /// due within the header deadline.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            reading_head: AtomicBool::new(true),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `n` bytes were read from the client. The first bytes after an idle
    /// spell start the header deadline of the next request.
    pub fn on_read(&self, n: usize) {
        if n > 0
            && self.in_flight.load(Ordering::Acquire) == 0
            && !self.reading_head.swap(true, Ordering::AcqRel)
        {
            self.since_ms.store(self.now_ms(), Ordering::Release);
        }
    }

    /// Bytes were written to the client: a response still being sent is
    /// not idleness.
    pub fn on_write(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 && !self.reading_head.load(Ordering::Acquire)
        {
            self.since_ms.store(self.now_ms(), Ordering::Release);
        }
    }

    /// A request head was parsed: the header deadline is met.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.reading_head.store(false, Ordering::Release);
        InFlight {
            clock: self.clone(),
        }
    }

    /// Whether to keep the connection, given `limits`.
    pub fn verdict(&self, limits: &ServerLimits) -> Verdict {
        let recheck = limits.header_read_timeout.min(limits.keep_alive_timeout);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::Keep(recheck);
        }
        let reading_head = self.reading_head.load(Ordering::Acquire);
        let elapsed = Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.since_ms.load(Ordering::Acquire)),
        );
        let (limit, expired) = if reading_head {
            (limits.header_read_timeout, Verdict::HeaderTimeout)
        } else {
            (limits.keep_alive_timeout, Verdict::Idle)
        };
        match limit.checked_sub(elapsed) {
            Some(left) if !left.is_zero() => Verdict::Keep(left),
            _ => expired,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let clock = &self.clock;
        clock.since_ms.store(clock.now_ms(), Ordering::Release);
        clock.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_millis(40),
            keep_alive_timeout: Duration::from_millis(400),
            ..ServerLimits::default()
        }
    }

    #[test]
    fn phases_have_their_own_deadlines() {
        let clock = Arc::new(ConnectionClock::new());
        assert!(matches!(clock.verdict(&limits()), Verdict::Keep(_)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(clock.verdict(&limits()), Verdict::HeaderTimeout);

        let request = clock.request_started();
        assert!(matches!(clock.verdict(&limits()), Verdict::Keep(_)));
        drop(request);
        // Idle now: the header deadline no longer applies.
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(clock.verdict(&limits()), Verdict::Keep(_)));
        // A byte of the next request starts its header deadline.
        clock.on_read(1);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(clock.verdict(&limits()), Verdict::HeaderTimeout);
    }
}
