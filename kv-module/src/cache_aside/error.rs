//! [`CacheError`]: why a cached read failed — always the repository,
//! never the cache.

use std::sync::Arc;

/// A failed [`KvCachedRepository::get`](super::KvCachedRepository::get). The cache itself
/// never fails a read (a store failure falls through to the repository),
/// so this is the repository's error, or a load that never finished.
///
/// One load serves every concurrent miss of a key, so its error is shared
/// by them: the application's error is kept unchanged behind an [`Arc`],
/// reachable with [`repository_error`](Self::repository_error) or as the
/// [`source`](std::error::Error::source).
///
/// Writes ([`update`](super::KvCachedRepository::update),
/// [`delete`](super::KvCachedRepository::delete)) return the repository's error
/// type itself: only the repository can fail them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError<E: std::error::Error + 'static> {
    /// The repository's `load` returned an error.
    #[error("cache `{cache}`: loading `{key}` from the repository failed")]
    Load {
        /// The cache's name.
        cache: Arc<str>,
        /// The entry key (`{key_prefix}:{key}`).
        key: String,
        /// The repository's error, unchanged.
        #[source]
        source: Arc<E>,
    },
    /// The load panicked, or its task was cancelled by a runtime shutdown.
    #[error("cache `{cache}`: the load of `{key}` did not finish (it panicked or was cancelled)")]
    LoadAborted {
        /// The cache's name.
        cache: Arc<str>,
        /// The entry key.
        key: String,
    },
}

impl<E: std::error::Error + 'static> CacheError<E> {
    /// The repository's error, when that is what failed.
    pub fn repository_error(&self) -> Option<&E> {
        match self {
            Self::Load { source, .. } => Some(source),
            Self::LoadAborted { .. } => None,
        }
    }

    /// The cache's name.
    pub fn cache(&self) -> &str {
        match self {
            Self::Load { cache, .. } | Self::LoadAborted { cache, .. } => cache,
        }
    }
}

/// How a shared load failed, before it is given each caller's context.
#[derive(Debug)]
pub(crate) enum LoadFailure<E> {
    Repository(Arc<E>),
    Aborted,
}

impl<E> Clone for LoadFailure<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Repository(err) => Self::Repository(Arc::clone(err)),
            Self::Aborted => Self::Aborted,
        }
    }
}

impl<E: std::error::Error + 'static> LoadFailure<E> {
    pub(crate) fn into_error(self, cache: &Arc<str>, key: String) -> CacheError<E> {
        let cache = Arc::clone(cache);
        match self {
            Self::Repository(source) => CacheError::Load { cache, key, source },
            Self::Aborted => CacheError::LoadAborted { cache, key },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[derive(Debug, thiserror::Error, PartialEq)]
    #[error("db down")]
    struct DbDown;

    #[test]
    fn the_repository_error_passes_through() {
        let cache: Arc<str> = Arc::from("users");
        let err = LoadFailure::Repository(Arc::new(DbDown)).into_error(&cache, "user:1".into());
        assert_eq!(err.repository_error(), Some(&DbDown));
        assert_eq!(err.cache(), "users");
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("db down")
        );
        assert!(err.to_string().contains("user:1"));
        let aborted = LoadFailure::<DbDown>::Aborted.into_error(&cache, "user:1".into());
        assert!(aborted.repository_error().is_none());
    }
}
