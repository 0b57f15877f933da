//! [`serve`]: the accept loop, one task per connection, and the graceful
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::connection_clock::{ConnectionClock, Verdict};
use super::limits::ServerLimits;
use super::tracked_io::TrackedIo;

/// After a failed `accept` (out of file descriptors, say), wait this long
/// before the next: retrying at once would spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting (the listener is closed, so new clients are refused), lets
/// the open connections finish their requests for at most
/// `limits.shutdown_timeout`, and closes whatever is still open.
///
/// At most `limits.max_connections` connections are served at once; more
/// clients wait in the listen backlog. Each connection is closed when its
/// client misses the header deadline or idles past the keep-alive
/// timeout; bodies have their deadline in [`read_body`](super::read_body).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            builder.clone(),
            limits.clone(),
            permit,
            stopping.clone(),
        ));
    }

    // Stop accepting: from here connections are refused by the kernel.
    drop(listener);
    let _ = stop.send(true);
    let open = connections.len();
    tracing::info!(open, deadline = ?limits.shutdown_timeout, "draining connections");
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            still_open = connections.len(),
            "shutdown deadline passed: closing the remaining connections"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Serves one connection until it ends, its client is too slow or idle,
/// or the server shuts down and its last request is answered.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Arc<ServerLimits>,
    permit: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    // Small JSON requests and responses: send them without Nagle's delay.
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(ConnectionClock::new());
    let io = TokioIo::new(TrackedIo::new(stream, clock.clone()));
    let service_clock = clock.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = service_clock.request_started();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            drop(in_flight);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let watchdog = watchdog(&clock, &limits);
    tokio::pin!(watchdog);
    let mut draining = *stopping.borrow();
    if draining {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            verdict = &mut watchdog => {
                tracing::debug!(%peer, ?verdict, "closing a slow or idle connection");
                break;
            }
            changed = stopping.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    // Idle connections close now; busy ones after their
                    // current response.
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
    drop(permit);
}

/// Completes when the connection should be closed.
async fn watchdog(clock: &ConnectionClock, limits: &ServerLimits) -> Verdict {
    loop {
        match clock.verdict(limits) {
            Verdict::Keep(wait) => tokio::time::sleep(wait).await,
            verdict => return verdict,
        }
    }
}
