//! [`RateLimitLayer`]: a tower layer applying a rate limiter to a router or
//! a route, with the IETF rate-limit headers on every response.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, StatusCode};
use tower::{Layer, Service};

use super::decision::{Decision, ceil_secs};
use super::error::RateLimitError;
use super::headers;
use super::key_extractor::KeyExtractor;
use super::rate_limiter::RateLimiter;

/// What the layer does with a request its [`KeyExtractor`] finds no key
/// for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingKey {
    /// Answer `400 Bad Request` (problem+json) without calling the
    /// service. The default: a missing key usually means a
    /// misconfiguration (the app is served without
    /// `into_make_service_with_connect_info`, or a user extractor on a
    /// route that does not require a login), which must be loud rather
    /// than silently unlimited.
    #[default]
    Reject,
    /// Call the service without any check (the response still carries
    /// `RateLimiter-Policy`). For routes where another layer limits
    /// anonymous requests.
    Allow,
    /// Count every keyless request against this one shared key.
    Shared(String),
}

/// Applies a [`RateLimiter`] to every request of a router or route, keyed
/// by a [`KeyExtractor`]; each request is one check of cost 1.
///
/// Responses:
///
/// * allowed: the service's response, plus
///   `RateLimiter-Policy: "<name>";q=<limit>;w=<window s>` and
///   `RateLimiter: "<name>";r=<remaining>;t=<s to reset>`
///   (draft-ietf-httpapi-ratelimit-headers; appended, so nested layers
///   each add theirs);
/// * denied: `429 Too Many Requests`, the same headers, `Retry-After`
///   (seconds, rounded up) and an `application/problem+json` body;
/// * store failed under a fail-closed policy: `503 Service Unavailable`
///   with `RateLimiter-Policy` and a problem+json body (the limit could not
///   be checked; claiming the client exceeded it would be false). Under a
///   fail-open policy the request proceeds as if the key were unused;
/// * no key: see [`MissingKey`] (default `400 Bad Request`).
///
/// ```
/// use std::net::SocketAddr;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use kv_module::MemoryStore;
/// use kv_module::rate_limit::{
///     Algorithm, KeyExtractor, RateLimitLayer, RateLimitPolicy, KvRateLimiter, TrustedProxies,
/// };
///
/// # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new("limits", "rl"));
/// let api = KvRateLimiter::new(store.clone(),
///     "api", RateLimitPolicy::new(Algorithm::SlidingWindow, 100, Duration::from_secs(60)))?;
/// let login = KvRateLimiter::new(store,
///     "login", RateLimitPolicy::new(Algorithm::Gcra, 5, Duration::from_secs(60)).with_burst(3))?;
/// let client = KeyExtractor::client_ip(TrustedProxies::parse(["10.0.0.0/8"])?);
///
/// let app = Router::new()
///     // One route with its own policy (only matched requests are counted)...
///     .route("/login", get(|| async { "login" })
///         .route_layer(RateLimitLayer::new(Arc::new(login), client.clone())))
///     .route("/items", get(|| async { "items" }))
///     // ...and one policy for the whole router.
///     .layer(RateLimitLayer::new(Arc::new(api), client));
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// // The peer address reaches the extractor through ConnectInfo.
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

struct Shared {
    limiter: Arc<dyn RateLimiter>,
    extractor: KeyExtractor,
    missing_key: MissingKey,
    /// `RateLimit-Policy`, formatted once.
    policy_value: Option<HeaderValue>,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("policy", &self.shared.limiter.policy().name())
            .field("missing_key", &self.shared.missing_key)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// A layer checking `limiter` for the key `extractor` finds.
    pub fn new(limiter: Arc<dyn RateLimiter>, extractor: KeyExtractor) -> Self {
        let policy_value = headers::policy_value(limiter.policy());
        Self {
            shared: Arc::new(Shared {
                limiter,
                extractor,
                missing_key: MissingKey::default(),
                policy_value,
            }),
        }
    }

    /// Sets what happens to a request without a key. Default:
    /// [`MissingKey::Reject`] (`400 Bad Request`).
    pub fn with_missing_key(self, missing_key: MissingKey) -> Self {
        Self {
            shared: Arc::new(Shared {
                limiter: self.shared.limiter.clone(),
                extractor: self.shared.extractor.clone(),
                missing_key,
                policy_value: self.shared.policy_value.clone(),
            }),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around another.
#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for RateLimitService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitService")
            .field("policy", &self.shared.limiter.policy().name())
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for RateLimitService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready: swap it in and keep the ready one for
        // this request (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let policy = shared.limiter.policy();
            let (parts, body) = request.into_parts();
            let key = shared.extractor.extract(&parts);
            let request = Request::from_parts(parts, body);
            let key = match (key, &shared.missing_key) {
                (Some(key), _) => key,
                (None, MissingKey::Shared(key)) => key.clone(),
                (None, MissingKey::Allow) => {
                    let mut response = inner.call(request).await?;
                    headers::append(
                        response.headers_mut(),
                        policy,
                        shared.policy_value.as_ref(),
                        None,
                    );
                    return Ok(response);
                }
                (None, MissingKey::Reject) => {
                    tracing::debug!(policy = %policy.name(), "request without a rate-limit key");
                    let detail = format!(
                        "the request carries no client identity for rate limit `{}`",
                        policy.name()
                    );
                    return Ok(problem(StatusCode::BAD_REQUEST, detail, &shared, None));
                }
            };
            match shared.limiter.check(&key).await {
                Ok(decision) if decision.allowed => {
                    let mut response = inner.call(request).await?;
                    headers::append(
                        response.headers_mut(),
                        policy,
                        shared.policy_value.as_ref(),
                        Some(&decision),
                    );
                    Ok(response)
                }
                Ok(decision) => {
                    let detail = format!(
                        "rate limit `{}` exceeded: {} per {} s; retry in {} s",
                        policy.name(),
                        policy.limit(),
                        ceil_secs(policy.window()),
                        decision.retry_after_secs().unwrap_or(0)
                    );
                    Ok(problem(
                        StatusCode::TOO_MANY_REQUESTS,
                        detail,
                        &shared,
                        Some(&decision),
                    ))
                }
                Err(RateLimitError::Store { .. }) => {
                    let detail = format!(
                        "rate limit `{}` cannot be checked right now; try again later",
                        policy.name()
                    );
                    Ok(problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        detail,
                        &shared,
                        None,
                    ))
                }
                Err(error) => {
                    tracing::error!(policy = %policy.name(), %error, "rate limit check failed");
                    let detail = format!("rate limit `{}` failed", policy.name());
                    Ok(problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        detail,
                        &shared,
                        None,
                    ))
                }
            }
        })
    }
}

fn problem(
    status: StatusCode,
    detail: String,
    shared: &Shared,
    decision: Option<&Decision>,
) -> Response {
    let mut response = crate::http::Problem::new(status, detail).into_response();
    headers::append(
        response.headers_mut(),
        shared.limiter.policy(),
        shared.policy_value.as_ref(),
        decision,
    );
    response
}
