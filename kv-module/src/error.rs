//! [`KvError`]: the one error type of the key-value layer.

use std::sync::Arc;

/// A boxed error kept as the source of a [`KvError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across the crate.
pub type Result<T, E = KvError> = std::result::Result<T, E>;

/// Everything a [`KvStore`](crate::KvStore) operation can fail with.
///
/// Every variant names the store it came from (its service name, and for
/// Redis its address) and, where one is involved, the key. The original
/// error is kept as the [`source`](std::error::Error::source).
///
/// Callers that want to keep serving when the store is down (a cache, a
/// fail-open rate limiter) ask [`KvError::is_unavailable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The backend cannot be reached: connection refused, reset or dropped.
    #[error("kv store `{store}`: cannot reach {addr}")]
    Unavailable {
        /// Store name.
        store: Arc<str>,
        /// Address the store talks to.
        addr: Arc<str>,
        /// Underlying error.
        #[source]
        source: BoxError,
    },
    /// The backend did not answer in time.
    #[error("kv store `{store}`: `{op}` timed out{}", key_suffix(key))]
    Timeout {
        /// Store name.
        store: Arc<str>,
        /// Operation that timed out.
        op: &'static str,
        /// Key involved, if one.
        key: Option<String>,
        /// Underlying error.
        #[source]
        source: BoxError,
    },
    /// A value could not be serialized to JSON.
    #[error("kv store `{store}`: cannot encode the value for key `{key}`")]
    Encode {
        /// Store name.
        store: Arc<str>,
        /// Key being written.
        key: String,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored value does not decode as the requested type.
    #[error("kv store `{store}`: the value at key `{key}` does not decode as `{type_name}`")]
    Decode {
        /// Store name.
        store: Arc<str>,
        /// Key being read.
        key: String,
        /// The Rust type requested.
        type_name: &'static str,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// `incr_by` on a value that is not a 64-bit integer.
    #[error("kv store `{store}`: the value at key `{key}` is not an integer")]
    NotAnInteger {
        /// Store name.
        store: Arc<str>,
        /// Key of the counter.
        key: String,
    },
    /// `incr_by` would overflow an `i64`; the counter is unchanged.
    #[error("kv store `{store}`: incrementing key `{key}` would overflow")]
    Overflow {
        /// Store name.
        store: Arc<str>,
        /// Key of the counter.
        key: String,
    },
    /// An argument was rejected before reaching the backend (zero TTL, ...).
    #[error("kv store `{store}`: invalid argument{}: {reason}", key_suffix(key))]
    InvalidArgument {
        /// Store name.
        store: Arc<str>,
        /// Key involved, if one.
        key: Option<String>,
        /// What was wrong.
        reason: String,
    },
    /// The store's configuration is invalid (bad address, `db` out of range, ...).
    #[error("kv store `{store}`: invalid configuration: {reason}")]
    Config {
        /// Store name.
        store: Arc<str>,
        /// What was wrong.
        reason: String,
    },
    /// A multi-key operation that must be atomic (a script) names keys of
    /// several Redis Cluster hash slots. Nothing was sent: put one hash tag
    /// (`{...}`) in every key of the operation (see
    /// [`SlotTag`](crate::store::SlotTag)).
    #[error(
        "kv store `{store}`: `{op}` names keys of several cluster hash slots ({}); \
         an atomic operation needs one hash tag in all its keys",
        keys.join(", ")
    )]
    CrossSlot {
        /// Store name.
        store: Arc<str>,
        /// Operation refused.
        op: &'static str,
        /// The keys, as the caller gave them.
        keys: Vec<String>,
    },
    /// The key holds a value of another type than the operation needs (a
    /// hash operation on a list, `incr_by` on a set, ...): Redis's
    /// `WRONGTYPE`. Nothing changed.
    #[error(
        "kv store `{store}`: the key `{key}` holds a value of another type than the operation needs (WRONGTYPE)"
    )]
    WrongType {
        /// Store name.
        store: Arc<str>,
        /// The key, as the caller gave it.
        key: String,
    },
    /// The store does not provide an operation family (a wrapper store that
    /// does not forward [`hashes`](crate::KvStore::hashes) and the other
    /// data-type accessors). Nothing was sent.
    #[error("kv store: `{op}` is not provided by this store ({reason})")]
    Unsupported {
        /// Operation refused.
        op: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A compare-and-set [`update`](crate::KvTransactions::update) met a
    /// concurrent write on every one of its attempts; nothing was written.
    #[error(
        "kv store `{store}`: `update` of key `{key}` gave up after {attempts} conflicting attempts"
    )]
    Conflict {
        /// Store name.
        store: Arc<str>,
        /// The key, as the caller gave it.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Any other error the backend reported (script error, ...).
    #[error("kv store `{store}`: `{op}` failed{}", key_suffix(key))]
    Backend {
        /// Store name.
        store: Arc<str>,
        /// Operation that failed.
        op: &'static str,
        /// Key involved, if one.
        key: Option<String>,
        /// Underlying error.
        #[source]
        source: BoxError,
    },
}

fn key_suffix(key: &Option<String>) -> String {
    match key {
        Some(key) => format!(" for key `{key}`"),
        None => String::new(),
    }
}

impl KvError {
    /// True when the store could not be reached or did not answer in time:
    /// the cases where a caller may choose to fail open.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    /// True for a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// True when a key held a value of another type (`WRONGTYPE`).
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, Self::WrongType { .. })
    }

    /// The name of the store the error came from (empty for
    /// [`KvError::Unsupported`], raised before any store is involved).
    pub fn store(&self) -> &str {
        match self {
            Self::Unavailable { store, .. }
            | Self::Timeout { store, .. }
            | Self::Encode { store, .. }
            | Self::Decode { store, .. }
            | Self::NotAnInteger { store, .. }
            | Self::Overflow { store, .. }
            | Self::InvalidArgument { store, .. }
            | Self::Config { store, .. }
            | Self::CrossSlot { store, .. }
            | Self::WrongType { store, .. }
            | Self::Conflict { store, .. }
            | Self::Backend { store, .. } => store,
            Self::Unsupported { .. } => "",
        }
    }

    /// The key the failed operation was about, when there was one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Encode { key, .. }
            | Self::Decode { key, .. }
            | Self::NotAnInteger { key, .. }
            | Self::Overflow { key, .. }
            | Self::WrongType { key, .. }
            | Self::Conflict { key, .. } => Some(key),
            Self::Timeout { key, .. }
            | Self::InvalidArgument { key, .. }
            | Self::Backend { key, .. } => key.as_deref(),
            Self::CrossSlot { keys, .. } => keys.first().map(String::as_str),
            Self::Unavailable { .. } | Self::Config { .. } | Self::Unsupported { .. } => None,
        }
    }
}
