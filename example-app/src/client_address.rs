//! [`ClientAddress`]: the client's IP address, as the rate limiter sees it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use kv_module::rate_limit::TrustedProxies;

use crate::error::ApiError;

/// The client's IP address: the peer's, or, when the peer is one of
/// `TRUSTED_PROXIES`, the rightmost untrusted address of `X-Forwarded-For`
/// — the same rule as the `/api/` rate limit's key
/// ([`TrustedProxies::client_ip`]), so a client cannot choose its address
/// by sending the header itself. For limits per client (one-time codes per
/// IP as well as per user).
///
/// Needs `ConnectInfo<SocketAddr>` (the app serves with
/// `into_make_service_with_connect_info`); without it the request is
/// rejected with a 500, since that is a wiring mistake, not the client's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl<S> FromRequestParts<S> for ClientAddress
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(ApiError::Internal(
                "no ConnectInfo<SocketAddr>: serve with into_make_service_with_connect_info".into(),
            ));
        };
        let proxies = TrustedProxies::from_ref(state);
        Ok(Self(proxies.client_ip(peer.ip(), &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    async fn client(proxies: &TrustedProxies, peer: &str, xff: Option<&str>) -> ClientAddress {
        let mut request = Request::builder();
        if let Some(xff) = xff {
            request = request.header("x-forwarded-for", xff);
        }
        let peer: SocketAddr = peer.parse().unwrap();
        let (mut parts, ()) = request
            .extension(ConnectInfo(peer))
            .body(())
            .unwrap()
            .into_parts();
        ClientAddress::from_request_parts(&mut parts, proxies)
            .await
            .unwrap()
    }

    fn ip(text: &str) -> ClientAddress {
        ClientAddress(text.parse().unwrap())
    }

    #[tokio::test]
    async fn forwarded_only_through_trusted_proxies() {
        let none = TrustedProxies::none();
        let local = TrustedProxies::parse(["127.0.0.1/32"]).unwrap();
        let xff = Some("6.6.6.6, 198.51.100.9");
        // Trusting no one: the header is ignored.
        assert_eq!(client(&none, "127.0.0.1:5000", xff).await, ip("127.0.0.1"));
        // From a trusted proxy: the rightmost untrusted hop.
        assert_eq!(
            client(&local, "127.0.0.1:5000", xff).await,
            ip("198.51.100.9")
        );
        // From anyone else: the peer, whatever it claims.
        assert_eq!(
            client(&local, "203.0.113.5:5000", xff).await,
            ip("203.0.113.5")
        );
        assert_eq!(
            client(&local, "127.0.0.1:5000", None).await,
            ip("127.0.0.1")
        );
    }

    #[tokio::test]
    async fn without_connect_info_it_is_a_server_error() {
        let (mut parts, ()) = Request::builder().body(()).unwrap().into_parts();
        let rejected = ClientAddress::from_request_parts(&mut parts, &TrustedProxies::none()).await;
        assert!(matches!(rejected, Err(ApiError::Internal(_))));
    }
}
