//! Maps redis-rs errors to [`KvError`]s with the store's context.

use std::sync::Arc;

use redis::{ErrorKind, RedisError};

use crate::error::KvError;

/// The context every error of one Redis store carries.
#[derive(Clone, Debug)]
pub(crate) struct ErrorContext {
    pub(crate) store: Arc<str>,
    pub(crate) addr: Arc<str>,
}

impl ErrorContext {
    /// Classifies `err`: unreachable server, timeout, counter errors, or any
    /// other backend error.
    pub(crate) fn map(&self, op: &'static str, key: Option<&str>, err: RedisError) -> KvError {
        let store = self.store.clone();
        if err.is_timeout() {
            return KvError::Timeout {
                store,
                op,
                key: key.map(str::to_owned),
                source: Box::new(err),
            };
        }
        // A demoted primary (`READONLY`), a cluster without a primary for
        // the slot (`CLUSTERDOWN`, `MASTERDOWN`), in the middle of moving
        // it (`TRYAGAIN`), or a redirection redis-rs could not follow within
        // its retries (`MOVED`/`ASK` to a node that is down): the store
        // cannot serve the call now, which is what callers choosing
        // fail-open need to know.
        let failing_over = matches!(
            err.kind(),
            ErrorKind::Server(
                redis::ServerErrorKind::ReadOnly
                    | redis::ServerErrorKind::ClusterDown
                    | redis::ServerErrorKind::MasterDown
                    | redis::ServerErrorKind::TryAgain
                    | redis::ServerErrorKind::Moved
                    | redis::ServerErrorKind::Ask
            )
        );
        if failing_over
            || err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
        {
            return KvError::Unavailable {
                store,
                addr: self.addr.clone(),
                source: Box::new(err),
            };
        }
        if let (Some("WRONGTYPE"), Some(key)) = (err.code(), key) {
            return KvError::WrongType {
                store,
                key: key.to_owned(),
            };
        }
        let response_error = err.kind() == ErrorKind::Server(redis::ServerErrorKind::ResponseError);
        if let (true, Some(key), Some(detail)) = (response_error, key, err.detail()) {
            if detail.contains("not an integer") {
                return KvError::NotAnInteger {
                    store,
                    key: key.to_owned(),
                };
            }
            if detail.contains("not a number (NaN)") {
                return KvError::InvalidArgument {
                    store,
                    key: Some(key.to_owned()),
                    reason: "the resulting score is not a number (NaN)".to_owned(),
                };
            }
            if detail.contains("would overflow") {
                return KvError::Overflow {
                    store,
                    key: key.to_owned(),
                };
            }
        }
        KvError::Backend {
            store,
            op,
            key: key.map(str::to_owned),
            source: Box::new(err),
        }
    }

    /// The store cannot reach its server(s), for `source`.
    pub(crate) fn unavailable(&self, source: crate::error::BoxError) -> KvError {
        KvError::Unavailable {
            store: self.store.clone(),
            addr: self.addr.clone(),
            source,
        }
    }

    /// The error for an operation on a closed store.
    pub(crate) fn closed(&self) -> KvError {
        KvError::Unavailable {
            store: self.store.clone(),
            addr: self.addr.clone(),
            source: "the store is closed".into(),
        }
    }
}
