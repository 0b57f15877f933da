//! [`KeyExtractor`]: which client a request counts against.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use http::request::Parts;

use super::trusted_proxies::TrustedProxies;

type Extract = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// Turns a request into the key its checks count against, or `None` when
/// the request carries none (what happens then is the layer's
/// [`MissingKey`](super::MissingKey) setting).
///
/// Built-in keys are namespaced (`ip:198.51.100.9`) so that combined
/// extractors cannot collide; keys of your own closures should be too
/// (`user:42`).
///
/// ```
/// use axum::extract::ConnectInfo;
/// use http::Request;
/// use kv_module::rate_limit::{KeyExtractor, TrustedProxies};
///
/// #[derive(Clone)]
/// struct UserId(u64);
///
/// // The authenticated user (set as an extension by the auth middleware),
/// // else the client's address through the trusted proxies.
/// let key = KeyExtractor::extension(|user: &UserId| Some(format!("user:{}", user.0)))
///     .or(KeyExtractor::client_ip(TrustedProxies::parse(["10.0.0.0/8"])?));
///
/// let peer: std::net::SocketAddr = "10.0.0.1:50000".parse()?;
/// let request = Request::builder()
///     .header("x-forwarded-for", "198.51.100.9")
///     .extension(ConnectInfo(peer))
///     .body(())?;
/// let (parts, _) = request.into_parts();
/// assert_eq!(key.extract(&parts).as_deref(), Some("ip:198.51.100.9"));
///
/// let mut request = http::Request::from_parts(parts, ());
/// request.extensions_mut().insert(UserId(42));
/// let (parts, _) = request.into_parts();
/// assert_eq!(key.extract(&parts).as_deref(), Some("user:42"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct KeyExtractor {
    extract: Arc<Extract>,
}

impl std::fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyExtractor").finish_non_exhaustive()
    }
}

impl KeyExtractor {
    /// The peer's IP address (`ip:<addr>`), from axum's
    /// `ConnectInfo<SocketAddr>`: serve the app with
    /// `into_make_service_with_connect_info::<SocketAddr>()`, or every
    /// request lacks a key. Forwarding headers are ignored; behind a proxy
    /// use [`client_ip`](Self::client_ip).
    pub fn peer_ip() -> Self {
        Self::client_ip(TrustedProxies::none())
    }

    /// The client's IP address (`ip:<addr>`): the peer's, or, when the peer
    /// is one of `proxies`, the rightmost untrusted address of their
    /// forwarding header (see [`TrustedProxies::client_ip`]). Needs
    /// `ConnectInfo<SocketAddr>` like [`peer_ip`](Self::peer_ip).
    ///
    /// Each IPv6 address is its own key; a client holding a whole /64 can
    /// rotate through it, so pair IP limits on IPv6 with user limits.
    pub fn client_ip(proxies: TrustedProxies) -> Self {
        Self::from_fn(move |parts| {
            let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
            Some(format!(
                "ip:{}",
                proxies.client_ip(peer.ip(), &parts.headers)
            ))
        })
    }

    /// A key from a request extension of type `T` (the authenticated user
    /// or session an earlier middleware inserted); `None` when the
    /// extension is absent or `key` returns `None`.
    pub fn extension<T, F>(key: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(&T) -> Option<String> + Send + Sync + 'static,
    {
        Self::from_fn(move |parts| parts.extensions.get::<T>().and_then(&key))
    }

    /// Any closure over the request's head.
    pub fn from_fn<F>(extract: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            extract: Arc::new(extract),
        }
    }

    /// This extractor's key, else `fallback`'s (for example the user, else
    /// the IP address).
    pub fn or(self, fallback: KeyExtractor) -> Self {
        Self::from_fn(move |parts| self.extract(parts).or_else(|| fallback.extract(parts)))
    }

    /// The key of a request.
    pub fn extract(&self, parts: &Parts) -> Option<String> {
        (self.extract)(parts)
    }
}
