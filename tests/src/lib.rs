//! End-to-end test support for kv-module: real `redis-server` processes
//! owned by the tests that use them, and helpers to assert on what those
//! servers were asked to do.
//!
//! Nothing here talks to a Redis the developer already runs (port 6379 is
//! never used): every [`TestRedis`] is a fresh server on a free port below
//! 32768 with its own temporary directory, killed when the fixture is
//! dropped, and also when the test process dies without dropping it (the
//! shared cluster lives in a `static`, which is never dropped).
//! [`TestCluster`] and [`TestSentinel`] are sets of such servers; TLS
//! variants use certificates made by [`TestCerts`].
//!
//! ```no_run
//! use kv_module::KvStoreExt;
//! use kv_module_tests::TestRedis;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let redis = TestRedis::start().await;
//! let store = redis.store("cache", 0, "app").await;
//! store.set("k", &1, kv_module::Ttl::Never).await.expect("set");
//! # }
//! ```
//!
//! # Layout
//!
//! * [`process`]: [`ServerProcess`](process::ServerProcess), a server
//!   under an `sh` supervisor that kills it when the test process dies
//!   (however it dies), SIGSTOP/SIGCONT, and [`free_port`](process::free_port).
//! * [`redis_server`]: [`TestRedis`], a `redis-server` started on a free
//!   port (binary from `REDIS_SERVER_BIN`), plain or TLS, with raw redis-rs
//!   connections, ready-made [`RedisStore`](kv_module::RedisStore)s,
//!   `stop`/`restart`/`freeze`/`thaw` for outage tests, and its log printed
//!   when a test panics. The building block of the fixtures below.
//! * [`tls`]: [`TestCerts`] (a CA, a node certificate for `127.0.0.1`
//!   with serverAuth and clientAuth, a client certificate, an unrelated
//!   CA) and [`TlsClientAuth`].
//! * [`cluster`]: [`TestCluster`], three primaries and three replicas
//!   (plain or TLS), routing questions (`primary_for_key`), fault
//!   injection and failover waits, and the per-process
//!   [`TestCluster::shared`] cluster with [`TestCluster::namespace`].
//! * [`sentinel`]: [`TestSentinel`], a primary, a replica and three
//!   sentinels, with switch waits and optional passwords.
//! * [`role`]: [`Role`], primary or replica, as a server reports it.
//! * `poll` (private): waiting for a condition with a deadline.
//! * [`command_stats`]: per-command call counts from `INFO commandstats`
//!   and their difference, to assert how many round trips (and which
//!   commands) an operation cost.
//! * [`command_monitor`]: the same counts on the shared cluster, for one
//!   test's stores only, from `MONITOR` on every primary.
//! * [`bench`](mod@bench): what the bench binaries share (paired
//!   comparisons, medians, the machine header).
//! * [`suite`]: [`backend_suite!`], the one macro that instantiates a
//!   suite of generic async cases as a `#[tokio::test]` per backend (or
//!   app driver) and case, named `<backend>::<case>`.
//! * [`conformance`]: the one conformance suite of the `KvStore` contract,
//!   generic over a [`Backend`](conformance::Backend), instantiated per
//!   backend by [`conformance_suite!`]; its sections per data type are
//!   [`conformance_hashes`] (and the like), listed in the same macro.
//! * [`backends`]: the [`Backend`](conformance::Backend)s: a Redis server
//!   per test, memory, the shared cluster and Sentinel set (namespaced),
//!   and a mutual-TLS server per test.
//! * [`counting_store`]: a `KvStore` wrapper counting calls (round trips),
//!   to bound a component's round trips on any backend.
//! * [`slot_checking_store`]: a `KvStore` wrapper asserting that every
//!   script's keys share one Redis Cluster slot, and a `Backend` wrapping
//!   all its stores so; the component suites run on it.
//! * `tests/conformance.rs`: the suite on every backend and topology;
//!   `tests/redis_store.rs`: Redis-only checks (round trips, glob parity);
//!   `tests/cluster.rs`: what only a cluster does (cross-slot scripts
//!   refused, `keys` over every primary, batches split per slot, seeds);
//!   `tests/tls.rs`: TLS set-ups that work and the clear, bounded errors
//!   of those that must not; `tests/failover.rs`: frozen, killed and
//!   failed-over primaries (cluster, Sentinel) and a frozen server under
//!   live stores: bounded calls, recovery without a restart;
//!   `tests/breaker.rs`: a frozen or killed server costs one timeout, then
//!   its stores (and only its) fail fast until it answers again.
//! * [`error_chain`]: [`chain`](error_chain::chain), an error with its
//!   sources in one line, for failure messages.
//! * [`log_capture`]: [`LogCapture`](log_capture::LogCapture), every span
//!   and event as text (`tests/otp_logs.rs`, `tests/app_smtp.rs`).
//! * [`smtp_sink`]: [`SmtpSink`](smtp_sink::SmtpSink), an SMTP server
//!   recording the mail it is given (or refusing it, or down), for the
//!   app's code delivery; `tests/app_smtp.rs` uses it.
//! * [`test_app`]: [`TestApp`](test_app::TestApp), the example app started
//!   in-process on port 0 (Redis, memory, or cluster driver) and driven
//!   over HTTP; `spawn_beside` starts a second instance of the same
//!   service (same stores, same SQLite file).
//! * `tests/app.rs`: the app's HTTP contract on Redis and memory;
//!   `tests/app_cluster.rs`: two instances on the shared cluster (login
//!   across them, log out everywhere, a shared exact rate limit, the key
//!   layout on the cluster); `tests/app_hardening.rs`: authorization,
//!   problem+json and request ids, names, the Secure cookie, `/readyz`;
//!   `tests/app_connections.rs`: slow and idle clients over raw sockets,
//!   the connection cap, the shutdown deadline; `tests/app_error_logs.rs`:
//!   a 5xx's cause logged under its request id; `tests/app_frozen_redis.rs`:
//!   one timeout per request while Redis is frozen; `tests/app_cache.rs`:
//!   a created user is found at once, writes with Redis full;
//!   `tests/app_otp_abuse.rs`: per-client OTP budgets, the hand-over, one
//!   secret for two instances; `tests/app_proxies.rs`: `TRUSTED_PROXIES`;
//!   `tests/app_metrics.rs`: `/metrics` parsed after a scripted run;
//!   `tests/app_metrics_off.rs`: `APP_METRICS=false` installs no recorder
//!   and `/metrics` answers 404; `tests/app_json_logs.rs`: the login flow
//!   at `TRACE` through the app's JSON layer, without secrets.
//! * `tests/fixture.rs`: tests of the fixture itself;
//!   `tests/fixture_scaleout.rs`: of the cluster, sentinel and TLS
//!   fixtures and of the supervisor (start-up times printed).
//! * `tests/cluster_slots.rs`: every component's scripts once each, on
//!   stores checking that each script's keys share one Redis Cluster slot.
//! * `benches/store.rs`: kv-module against raw redis-rs, and the memory
//!   backend, in operations per second; `benches/cluster.rs`: the same
//!   on a Redis Cluster against raw redis-rs `ClusterConnection`, and the
//!   cluster against a standalone server.
#![forbid(unsafe_code)]

pub mod backends;
pub mod bare_axum;
pub mod bench;
pub mod cluster;
pub mod command_monitor;
pub mod command_stats;
pub mod conformance;
pub mod conformance_hashes;
pub mod conformance_lists;
pub mod conformance_sets;
pub mod conformance_sorted_sets;
pub mod conformance_transactions;
pub mod conformance_typed;
pub mod counting_store;
pub mod error_chain;
pub mod log_buffer;
pub mod log_capture;
mod poll;
pub mod process;
pub mod redis_server;
pub mod role;
pub mod sentinel;
pub mod slot_checking_store;
pub mod smtp_sink;
pub mod suite;
pub mod test_app;
pub mod tls;

pub use cluster::{ClusterNode, TestCluster};
pub use redis_server::TestRedis;
pub use role::Role;
pub use sentinel::{SentinelAuth, TestSentinel};
pub use tls::{TestCerts, TlsClientAuth};
