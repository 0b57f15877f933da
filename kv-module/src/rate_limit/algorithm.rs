//! [`Algorithm`]: how a policy counts, and [`OnStoreError`]: what it does
//! when the store fails.

use serde::Deserialize;

use super::scripts::{FIXED_WINDOW, GCRA, SLIDING_WINDOW};
use crate::store::Script;

/// How a rate-limit policy counts requests. Every check is one round trip
/// on Redis at most (one critical section in memory) on the store's clock,
/// so application instances with skewed clocks agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// At most `limit` per `window`, the window starting at a key's first
    /// hit and never re-armed by later hits. One counter key whose TTL is
    /// the rest of the window. Cheapest; allows up to twice the limit
    /// across a window boundary.
    FixedWindow,
    /// Sliding-window counter: the count of the current window plus the
    /// previous window's count weighted by how much of it the sliding
    /// window still overlaps. A key's windows follow each other from its
    /// first hit (as the fixed window's, on the store's clock). Smooths the
    /// boundary burst of a fixed window. One key (both counts) living until
    /// the end of the window after the current one.
    SlidingWindow,
    /// Generic cell rate algorithm: a token bucket refilled at
    /// `limit / window` holding at most `burst` tokens, stored as one
    /// "theoretical arrival time" whose key lives until the bucket is full
    /// again. Spreads requests evenly; `burst` is the tolerance.
    Gcra,
}

impl Algorithm {
    /// The configuration name (`fixed_window`, `sliding_window`, `gcra`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FixedWindow => "fixed_window",
            Self::SlidingWindow => "sliding_window",
            Self::Gcra => "gcra",
        }
    }

    /// The script one check of this algorithm runs, for inspection (its
    /// Lua source) and benchmarks (a fixed-window check of cost 1 runs no
    /// script: it counts). `KEYS[1]` is the client's key; `ARGV` is limit,
    /// window in ms and cost for the window algorithms, and emission
    /// interval in µs (`window / limit`, rounded up), capacity in µs
    /// (`burst × interval`) and cost for GCRA. The fixed window replies
    /// `{allowed, remaining, reset_after_ms, retry_after_ms}`; the sliding
    /// window and GCRA answer an allowed check with one integer (see
    /// their documentation in `scripts.rs`).
    pub fn script(self) -> &'static Script {
        match self {
            Self::FixedWindow => &FIXED_WINDOW,
            Self::SlidingWindow => &SLIDING_WINDOW,
            Self::Gcra => &GCRA,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check does when the store fails (unreachable, timed out, or any
/// other store error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Let the request through (the default): an outage of the store must
    /// not take the application down with it. Each such check is logged
    /// (`warn`) and counted
    /// ([`KvRateLimiter::failed_open`](super::KvRateLimiter::failed_open)).
    /// A check still waits for the store's own failure: at once when the
    /// server refuses connections, up to the store's `response_timeout`
    /// when it does not answer.
    #[default]
    FailOpen,
    /// Refuse the request: the check returns
    /// [`RateLimitError::Store`](super::RateLimitError::Store), which
    /// [`RateLimitLayer`](super::RateLimitLayer) answers with
    /// `503 Service Unavailable`. For endpoints where an unlimited attacker
    /// costs more than an outage (one-time codes, password login).
    FailClosed,
}
