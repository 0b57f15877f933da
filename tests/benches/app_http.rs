//! The example app over HTTP against a bare axum handler (issue 16 part
//! 3, issue 15's logs and metrics, issue 14's near cache), with `wrk`.
//!
//! ```text
//! scripts/bench.sh                      # installs wrk if missing, builds, runs this
//! cargo build --release -p example-app -p kv-module-tests --bins
//! cargo bench -p kv-module-tests --bench app_http
//! BENCH_SECS=5 BENCH_ROUNDS=5 cargo bench -p kv-module-tests --bench app_http
//! ```
//!
//! The release binaries `example-app` and `bare_axum` are run as child
//! processes from this bench's own target directory (the bench fails,
//! naming the command that builds them, when one is missing). `cargo
//! bench` does not rebuild them: after changing the app, build them again
//! (`scripts/bench.sh` always does). A
//! [`TestRedis`] is started for the run; every server runs under the
//! fixtures' supervisor ([`ServerProcess`]), so each is killed when the
//! bench ends, however it ends (a panic drops them; a killed bench closes
//! their supervisors' pipes).
//!
//! Servers, all on that Redis, each on a free port, with their standard
//! output and error in a file of a temporary directory:
//!
//! * **bare**: `bare_axum` (`tests/src/bare_axum.rs`): one raw
//!   redis-rs `GET` of the bytes the app reads, returned as JSON, on the
//!   system allocator; **bare on mimalloc**: the same on mimalloc, the
//!   example app's allocator;
//! * **app full**: `example-app` as issue 16.3 states its target: rate
//!   limiter on (`RATE_LIMIT_REQUESTS=1000000000`: checked on every
//!   request, never denying), `RUST_LOG=info` with `LOG_FORMAT=json` to a
//!   file, metrics on, the near cache on;
//! * **app near cache off**: the same with `USER_NEAR_CACHE=false`;
//! * **app warn**: the same as full with `RUST_LOG=warn`;
//! * **app metrics off**: the same as full with `APP_METRICS=false`;
//! * **app, limiter in memory**: the same as full with the
//!   `ratelimit_cache` store on `kvstore_memory` (a copy of
//!   `config/services.yaml` with that one `type:` changed): the app with
//!   a rate-limit check that costs no round trip, which bounds what any
//!   cheaper Redis check could give (not a deployment: each instance
//!   would count alone).
//!
//! The app instances share one SQLite file (started one after the other,
//! each waited for on `/readyz`). One user is created, read once through
//! every instance (hot: in Redis; each near cache keeps it from its second
//! read, during the warm-up), and logged in
//! through the OTP flow (development echo) for a session. Then each round
//! runs `wrk -t2 -c50 -d<BENCH_SECS>s --latency` once per case (every
//! server on `GET /api/users/{id}`; the bare ones, app full and the app
//! with its limiter in memory on `GET /api/session` with
//! `Authorization: Bearer`), the order reversed every
//! other round. Reported: medians of requests per second and of wrk's 99th
//! percentile latency per case, and medians of the per-round ratios,
//! against the issues' targets. Every response must be 2xx (wrk's
//! `Non-2xx` count must be zero).
//!
//! `BENCH_SECS` (default 10) sets a run's length in whole seconds,
//! `BENCH_ROUNDS` (default 3) the rounds: about 5 minutes by default.
//! `wrk` and the servers share the machine's cores, as they would on a
//! one-box deployment: the numbers compare the servers with each other,
//! they are not the servers' capacity.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kv_module_tests::TestRedis;
use kv_module_tests::bench::{
    command_output, median, print_machine, run_duration, run_rounds, thousands,
};
use kv_module_tests::process::{ServerProcess, free_port};
use serde_json::{Value, json};

const DEFAULT_SECS: f64 = 10.0;
const DEFAULT_ROUNDS: usize = 3;
const THREADS: u32 = 2;
const CONNECTIONS: u32 = 50;
/// An untimed `wrk` run per case before the first round (connections,
/// caches and allocators settled).
const WARM_UP_SECS: u64 = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const BUILD: &str = "cargo build --release -p example-app -p kv-module-tests --bins";

/// A server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Server {
    Bare,
    BareMimalloc,
    Full,
    NearOff,
    Warn,
    MetricsOff,
    LimiterMemory,
}

impl Server {
    const APPS: [Server; 5] = [
        Server::Full,
        Server::NearOff,
        Server::Warn,
        Server::MetricsOff,
        Server::LimiterMemory,
    ];

    fn label(self) -> &'static str {
        match self {
            Server::Bare => "bare axum (one raw GET)",
            Server::BareMimalloc => "bare axum on mimalloc",
            Server::Full => "app full",
            Server::NearOff => "app, USER_NEAR_CACHE=false",
            Server::Warn => "app, RUST_LOG=warn",
            Server::MetricsOff => "app, APP_METRICS=false",
            Server::LimiterMemory => "app, limiter in memory",
        }
    }

    /// What this app instance changes from the full one.
    fn app_env(self) -> [(&'static str, &'static str); 3] {
        [
            (
                "RUST_LOG",
                if self == Server::Warn { "warn" } else { "info" },
            ),
            (
                "USER_NEAR_CACHE",
                if self == Server::NearOff {
                    "false"
                } else {
                    "true"
                },
            ),
            (
                "APP_METRICS",
                if self == Server::MetricsOff {
                    "false"
                } else {
                    "true"
                },
            ),
        ]
    }
}

/// A route under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    User,
    Session,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::User => "GET /api/users/{id}",
            Route::Session => "GET /api/session",
        }
    }
}

/// Every measured (server, route), in the order of an even round.
const CASES: [(Server, Route); 11] = [
    (Server::Bare, Route::User),
    (Server::BareMimalloc, Route::User),
    (Server::Full, Route::User),
    (Server::NearOff, Route::User),
    (Server::Warn, Route::User),
    (Server::MetricsOff, Route::User),
    (Server::LimiterMemory, Route::User),
    (Server::Bare, Route::Session),
    (Server::BareMimalloc, Route::Session),
    (Server::Full, Route::Session),
    (Server::LimiterMemory, Route::Session),
];

/// A ratio reported: `(numerator, denominator)` cases, what it is called,
/// and the target `(minimum, which issue)` if one is set.
struct Ratio {
    name: &'static str,
    top: (Server, Route),
    bottom: (Server, Route),
    target: Option<(f64, &'static str)>,
}

const RATIOS: [Ratio; 10] = [
    Ratio {
        name: "users: app full / bare",
        top: (Server::Full, Route::User),
        bottom: (Server::Bare, Route::User),
        target: Some((0.8, "16.3")),
    },
    Ratio {
        name: "users: app full / bare on mimalloc",
        top: (Server::Full, Route::User),
        bottom: (Server::BareMimalloc, Route::User),
        target: Some((0.8, "16.3")),
    },
    Ratio {
        name: "session: app full / bare",
        top: (Server::Full, Route::Session),
        bottom: (Server::Bare, Route::Session),
        target: Some((0.5, "16.3")),
    },
    Ratio {
        name: "session: app full / bare on mimalloc",
        top: (Server::Full, Route::Session),
        bottom: (Server::BareMimalloc, Route::Session),
        target: Some((0.5, "16.3")),
    },
    Ratio {
        name: "users: near cache on / off",
        top: (Server::Full, Route::User),
        bottom: (Server::NearOff, Route::User),
        target: None,
    },
    Ratio {
        name: "users: logs info / warn",
        top: (Server::Full, Route::User),
        bottom: (Server::Warn, Route::User),
        target: Some((0.9, "15")),
    },
    Ratio {
        name: "users: metrics on / off",
        top: (Server::Full, Route::User),
        bottom: (Server::MetricsOff, Route::User),
        target: Some((0.9, "15")),
    },
    Ratio {
        name: "users: app full / limiter in memory",
        top: (Server::Full, Route::User),
        bottom: (Server::LimiterMemory, Route::User),
        target: None,
    },
    Ratio {
        name: "users: app, limiter in memory / bare on mimalloc",
        top: (Server::LimiterMemory, Route::User),
        bottom: (Server::BareMimalloc, Route::User),
        target: None,
    },
    Ratio {
        name: "session: app, limiter in memory / bare on mimalloc",
        top: (Server::LimiterMemory, Route::Session),
        bottom: (Server::BareMimalloc, Route::Session),
        target: None,
    },
];

/// Issue 16.3's latency target for the app full on users: p99 below this.
const P99_TARGET_MS: f64 = 5.0;

/// One `wrk` run's figures.
#[derive(Clone, Copy, Debug)]
struct WrkRun {
    requests_per_sec: f64,
    p99_ms: f64,
    socket_errors: u64,
}

/// A server process, its base URL and its console file.
struct Child {
    name: &'static str,
    base: String,
    console: PathBuf,
    process: ServerProcess,
}

impl Child {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The last lines of the console, for a failure message.
    fn console_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.console).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Panics, with the console's end, if the process has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.process.exit_status() {
            panic!(
                "{} exited early ({status}); its console {}:\n{}",
                self.name,
                self.console.display(),
                self.console_tail()
            );
        }
    }

    /// Waits until `GET path` (with `headers`) answers 200, checking that
    /// the process still runs between two tries.
    async fn wait_for(&mut self, client: &reqwest::Client, path: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url(path);
        loop {
            self.assert_running();
            let seen = match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => format!("status {}", r.status()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                panic!(
                    "{} did not answer 200 on {path} within {READY_TIMEOUT:?} (last: {seen}); \
                     its console:\n{}",
                    self.name,
                    self.console_tail()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Starts `bin` with exactly `env` (nothing inherited: a variable set in
/// the shell cannot change a variant) under the fixtures' supervisor.
fn spawn(name: &'static str, bin: &Path, env: &[(String, String)], dir: &Path) -> Child {
    let port = free_port();
    let console = dir.join(format!("{}.log", name.replace([' ', ',', '='], "_")));
    let file = File::create(&console)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", console.display()));
    // The one port under both names: `example-app` reads APP_ADDR,
    // `bare_axum` BARE_ADDR.
    let mut args: Vec<OsString> = vec!["-i".into()];
    args.extend(
        env.iter()
            .map(|(k, v)| OsString::from(format!("{k}={v}")))
            .chain([OsString::from(format!("APP_ADDR=127.0.0.1:{port}"))])
            .chain([OsString::from(format!("BARE_ADDR=127.0.0.1:{port}"))]),
    );
    args.push(bin.into());
    let process = ServerProcess::spawn("env".as_ref(), &args, &file, &[dir]);
    Child {
        name,
        base: format!("http://127.0.0.1:{port}"),
        console,
        process,
    }
}

/// Writes `to`: the app's configuration `from` with the `ratelimit_cache`
/// store on `kvstore_memory` (it ignores the Redis fields).
fn write_limiter_in_memory_config(from: &Path, to: &Path) {
    const STORE: &str = "  ratelimit_cache:\n    type: ${KV_DRIVER:kvstore_redis}\n";
    let text = std::fs::read_to_string(from)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    assert!(
        text.contains(STORE),
        "{} no longer declares `ratelimit_cache` as this bench expects:\n{STORE}",
        from.display()
    );
    let changed = text.replace(STORE, "  ratelimit_cache:\n    type: kvstore_memory\n");
    std::fs::write(to, changed).unwrap_or_else(|e| panic!("cannot write {}: {e}", to.display()));
}

/// The release binary `name` beside this bench (`target/release/deps/..`).
fn release_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find this bench's own path: {e}"));
    let release = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} has no target/release directory", exe.display()));
    let bin = release.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the release binaries first with `{BUILD}` (scripts/bench.sh does it)",
        bin.display()
    );
    bin
}

/// `wrk --version`'s first line; panics with how to install it.
fn wrk_version() -> String {
    // wrk prints its version (and usage) and exits 1.
    let out = Command::new("wrk").arg("--version").output().unwrap_or_else(|e| {
        panic!("cannot run `wrk` ({e}): install it (`apt-get install wrk`, or run scripts/bench.sh)")
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .next()
        .unwrap_or("wrk, version unknown")
        .trim()
        .to_owned()
}

/// One `wrk` run against `url`.
fn wrk(url: &str, secs: u64, bearer: Option<&str>) -> WrkRun {
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{secs}s"))
        .arg("--latency");
    if let Some(token) = bearer {
        command
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"));
    }
    let out = command
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed ({}) on {url}:\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text).unwrap_or_else(|e| panic!("wrk on {url}: {e}:\n{text}"))
}

/// Requests/sec, the 99 % latency and the socket errors of wrk's report;
/// an error if any response was not 2xx or 3xx, or a figure is missing.
fn parse_wrk(text: &str) -> Result<WrkRun, String> {
    let mut requests_per_sec = None;
    let mut p99_ms = None;
    let mut socket_errors = 0;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = rest.trim().parse::<f64>().ok();
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99_ms = latency_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            return Err(format!("{} responses were not 2xx/3xx", rest.trim()));
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // `connect 0, read 0, write 0, timeout 0`
            socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        }
    }
    Ok(WrkRun {
        requests_per_sec: requests_per_sec.ok_or("no `Requests/sec:` line")?,
        p99_ms: p99_ms.ok_or("no `99%` latency line (was --latency given?)")?,
        socket_errors,
    })
}

/// `812.00us`, `4.50ms`, `1.02s`, `1.50m` in milliseconds.
fn latency_ms(value: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// The short commit of the repository this bench is built from.
fn commit() -> String {
    command_output(
        "git",
        &[
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    )
}

/// The key of the one session record in DB 1 (the bare handler reads it).
async fn session_key(redis: &TestRedis) -> String {
    let mut conn = redis.raw(1).await;
    let keys: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("sessions:session:*")
        .arg("COUNT")
        .arg(1_000)
        .query_async::<(u64, Vec<String>)>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("SCAN for the session record: {e}"))
        .1;
    match keys.as_slice() {
        [key] => key.clone(),
        other => panic!("expected one session record in DB 1, found {other:?}"),
    }
}

/// Creates a user through `app`, logs it in (OTP, development echo);
/// returns its id and session id.
async fn user_and_session(client: &reqwest::Client, app: &Child) -> (i64, String) {
    let created: Value = send_json(
        client,
        &app.url("/api/users"),
        json!({ "name": "Ada Lovelace", "email": "ada@example.com" }),
        201,
    )
    .await;
    let id = created["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("POST /api/users gave no integer id: {created}"));
    let issued = send_json(
        client,
        &app.url("/api/auth/otp"),
        json!({ "user_id": id }),
        202,
    )
    .await;
    let code = issued["dev_code"]
        .as_str()
        .unwrap_or_else(|| panic!("no dev_code (is OTP_DEV_ECHO on?): {issued}"))
        .to_owned();
    let verified = send_json(
        client,
        &app.url("/api/auth/otp/verify"),
        json!({ "user_id": id, "code": code }),
        200,
    )
    .await;
    let session = verified["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session_id: {verified}"))
        .to_owned();
    (id, session)
}

/// `POST url` with `body`; the JSON answer, which must come with `status`.
async fn send_json(client: &reqwest::Client, url: &str, body: Value, status: u16) -> Value {
    let r = client
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let got = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(got.as_u16(), status, "POST {url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: not JSON ({e}): {text}"))
}

/// `GET url` (with the bearer token) must answer 200.
async fn get_ok(client: &reqwest::Client, url: &str, bearer: Option<&str>) {
    let mut request = client.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let r = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status(), 200, "GET {url}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs = run_duration(DEFAULT_SECS).as_secs_f64().ceil().max(1.0) as u64;
    let rounds = run_rounds(DEFAULT_ROUNDS);
    let wrk_version = wrk_version();
    let app_bin = release_binary("example-app");
    let bare_bin = release_binary("bare_axum");
    let bare_mimalloc_bin = release_binary("bare_axum_mimalloc");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/services.yaml");

    let redis = TestRedis::start().await;
    let manager = redis
        .client(0)
        .get_connection_manager()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the bench's Redis: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("kv-module-app-http-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let client = reqwest::Client::new();
    let memory_limiter_config = dir.path().join("services-limiter-in-memory.yaml");
    write_limiter_in_memory_config(&config, &memory_limiter_config);

    // The app instances, one after the other (they migrate one SQLite file).
    let common = |server: Server| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            (
                "APP_CONFIG",
                if server == Server::LimiterMemory {
                    &memory_limiter_config
                } else {
                    &config
                }
                .display()
                .to_string(),
            ),
            ("REDIS_ADDR", redis.addr()),
            (
                "DATABASE_URL",
                dir.path().join("app.db").display().to_string(),
            ),
            ("OTP_DEV_ECHO", "true".to_owned()),
            ("RATE_LIMIT_REQUESTS", "1000000000".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(
            server
                .app_env()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        env
    };
    let mut children: BTreeMap<Server, Child> = BTreeMap::new();
    for server in Server::APPS {
        let mut child = spawn(server.label(), &app_bin, &common(server), dir.path());
        child.wait_for(&client, "/readyz").await;
        children.insert(server, child);
    }

    // One hot user (read once through every instance: in Redis; each near
    // cache keeps it from its second read, in the warm-up) and one session.
    let (id, token) = user_and_session(&client, &children[&Server::Full]).await;
    let user_path = format!("/api/users/{id}");
    for app in children.values() {
        get_ok(&client, &app.url(&user_path), None).await;
    }
    get_ok(
        &client,
        &children[&Server::Full].url("/api/session"),
        Some(&token),
    )
    .await;

    // The bare handler, reading the same keys.
    let bare_env = vec![
        ("REDIS_ADDR".to_owned(), redis.addr()),
        ("BARE_SESSION_KEY".to_owned(), session_key(&redis).await),
    ];
    for (server, bin) in [
        (Server::Bare, &bare_bin),
        (Server::BareMimalloc, &bare_mimalloc_bin),
    ] {
        let mut bare = spawn(server.label(), bin, &bare_env, dir.path());
        bare.wait_for(&client, &user_path).await;
        get_ok(&client, &bare.url("/api/session"), None).await;
        children.insert(server, bare);
    }

    print_machine("Example app over HTTP: benchmark", &manager).await;
    println!("* {wrk_version}");
    println!("* commit: {}\n", commit());
    println!(
        "wrk -t{THREADS} -c{CONNECTIONS} -d{secs}s --latency per case, {rounds} alternating rounds \
         (after a {WARM_UP_SECS} s warm-up per case); medians.\n"
    );

    let url = |case: (Server, Route)| {
        let path = match case.1 {
            Route::User => user_path.as_str(),
            Route::Session => "/api/session",
        };
        children[&case.0].url(path)
    };
    let bearer = |case: (Server, Route)| (case.1 == Route::Session).then_some(token.as_str());

    for case in CASES {
        wrk(&url(case), WARM_UP_SECS, bearer(case));
    }
    let mut runs: BTreeMap<(Server, Route), Vec<WrkRun>> = BTreeMap::new();
    for round in 0..rounds {
        let mut order = CASES.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for case in order {
            let run = wrk(&url(case), secs, bearer(case));
            eprintln!(
                "round {}: {} {}: {} req/s, p99 {:.2} ms",
                round + 1,
                case.0.label(),
                case.1.label(),
                thousands(run.requests_per_sec),
                run.p99_ms
            );
            runs.entry(case).or_default().push(run);
        }
    }
    for child in children.values_mut() {
        child.assert_running();
    }

    println!("| server | route | req/s | p99 ms | socket errors |");
    println!("|---|---|---:|---:|---:|");
    for case in CASES {
        let case_runs = &runs[&case];
        let rps = median(case_runs.iter().map(|r| r.requests_per_sec).collect());
        let p99 = median(case_runs.iter().map(|r| r.p99_ms).collect());
        let errors: u64 = case_runs.iter().map(|r| r.socket_errors).sum();
        println!(
            "| {} | `{}` | {} | {p99:.2} | {errors} |",
            case.0.label(),
            case.1.label(),
            thousands(rps)
        );
    }

    println!("\n| ratio (median of the per-round ratios) | value | target | met |");
    println!("|---|---:|---:|---|");
    for ratio in RATIOS {
        let per_round: Vec<f64> = runs[&ratio.top]
            .iter()
            .zip(&runs[&ratio.bottom])
            .map(|(top, bottom)| top.requests_per_sec / bottom.requests_per_sec)
            .collect();
        let value = median(per_round);
        let (target, met) = match ratio.target {
            Some((min, issue)) => (
                format!("≥ {min} ({issue})"),
                if value >= min { "yes" } else { "no" },
            ),
            None => ("report".to_owned(), "-"),
        };
        println!("| {} | {value:.2} | {target} | {met} |", ratio.name);
    }
    let p99 = median(
        runs[&(Server::Full, Route::User)]
            .iter()
            .map(|r| r.p99_ms)
            .collect(),
    );
    println!(
        "| users: app full p99 (ms) | {p99:.2} | < {P99_TARGET_MS} (16.3) | {} |",
        if p99 < P99_TARGET_MS { "yes" } else { "no" }
    );

    let log_bytes = std::fs::metadata(&children[&Server::Full].console).map_or(0, |m| m.len());
    println!(
        "\nThe full app's JSON log: {} bytes ({:.0} MB) over the run.",
        thousands(log_bytes as f64),
        log_bytes as f64 / 1e6
    );
    // The children are killed (dropped) before the server and the
    // directory their files are in.
    drop(children);
    drop(redis);
}
