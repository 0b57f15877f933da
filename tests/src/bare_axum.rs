//! The bare axum server, the baseline of the example app's HTTP benchmark
//! (`benches/app_http.rs`, issue 16 part 3): a bare axum handler per
//! route doing ONE raw redis-rs `GET` (a multiplexed connection, TCP_NODELAY) of the
//! bytes the app would read for it, returned as the JSON body. No rate
//! limit, no logs, no metrics, no request id, no session check: what any
//! service must pay at least to answer the same request from Redis.
//!
//! * `GET /api/users/{id}`: `GET users:user:{<id>}` in DB 0 (the app's
//!   `user_cache` entry: exactly the user's JSON); 400 for an id that is
//!   not an integer, 404 when the key is absent.
//! * `GET /api/session`: `GET $BARE_SESSION_KEY` in DB 1 (the session
//!   record the app reads for the caller's bearer token; the bench finds
//!   its name with `SCAN`); 404 when absent or unset.
//!
//! Environment: `BARE_ADDR` (listen address, default `127.0.0.1:8081`),
//! `REDIS_ADDR` (`host:port`, default `127.0.0.1:6379`, as the app's),
//! `BARE_SESSION_KEY`. It prints `listening on <addr>` once bound and runs
//! until killed.
//!
//! Two binaries serve it: `bare_axum` (the system allocator, what a
//! hand-rolled service gets by default) and `bare_axum_mimalloc` (the
//! allocator the example app uses), so the app is compared with both.
//!
//! ```text
//! cargo build --release -p kv-module-tests --bin bare_axum --bin bare_axum_mimalloc
//! BARE_ADDR=127.0.0.1:8081 REDIS_ADDR=127.0.0.1:6379 target/release/bare_axum
//! ```

use std::process::ExitCode;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use redis::aio::MultiplexedConnection;

/// The connections and the session key the handlers read.
#[derive(Clone)]
struct Bare {
    /// DB 0: the users' cache entries.
    users: MultiplexedConnection,
    /// DB 1: session records.
    sessions: MultiplexedConnection,
    /// The session record `GET /api/session` reads.
    session_key: Option<String>,
}

/// Runs the server until killed; the process's exit code on failure.
pub async fn serve() -> ExitCode {
    let addr = std::env::var("BARE_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_owned());
    let redis_addr = std::env::var("REDIS_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".to_owned());
    let session_key = std::env::var("BARE_SESSION_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let started = async {
        let users = connect(&redis_addr, 0).await?;
        let sessions = connect(&redis_addr, 1).await?;
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        Ok::<_, String>((
            listener,
            Bare {
                users,
                sessions,
                session_key,
            },
        ))
    };
    let (listener, bare) = match started.await {
        Ok(started) => started,
        Err(message) => {
            eprintln!("bare_axum: {message}");
            return ExitCode::FAILURE;
        }
    };
    let app = Router::new()
        .route("/api/users/{id}", get(user))
        .route("/api/session", get(session))
        .with_state(bare);
    println!("listening on {addr}");
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_axum: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A multiplexed connection to database `db` of `addr`, with TCP_NODELAY
/// as the app's stores set it.
async fn connect(addr: &str, db: u8) -> Result<MultiplexedConnection, String> {
    let url = format!("redis://{addr}/{db}");
    let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
        .map_err(|e| format!("{url}: {e}"))?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info).map_err(|e| format!("{url}: {e}"))?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))
}

/// `GET /api/users/{id}`: the cache entry as it is stored.
async fn user(State(bare): State<Bare>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    read(bare.users, format!("users:user:{{{id}}}")).await
}

/// `GET /api/session`: the session record as it is stored.
async fn session(State(bare): State<Bare>) -> Response {
    match bare.session_key {
        Some(key) => read(bare.sessions, key).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// One `GET` of `key`: 200 with its bytes as JSON, 404 when absent, 502
/// when Redis fails.
async fn read(mut conn: MultiplexedConnection, key: String) -> Response {
    let value: redis::RedisResult<Option<Vec<u8>>> =
        redis::cmd("GET").arg(key).query_async(&mut conn).await;
    match value {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
