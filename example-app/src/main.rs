//! The kv-module example app: `cargo run -p example-app`.

use std::error::Error;
use std::process::ExitCode;

use example_app::startup::{build_app, build_state, load_settings};
use example_app::{AppOptions, Application, settings, telemetry};

/// mimalloc rather than glibc's malloc: under load about a sixth of a
/// cached user read's CPU was glibc's allocator, and 6 % more went to
/// futex calls on its arena locks (a log line or a histogram sample is
/// allocated on a request thread and freed on the writer's or the
/// exporter's), measured with `perf` under wrk (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Telemetry: logs (`RUST_LOG`, `LOG_FORMAT`); the metrics recorder
    // comes with the state, when `app.metrics` is on.
    let format = match telemetry::LogFormat::parse(std::env::var("LOG_FORMAT").ok().as_deref()) {
        Ok(format) => format,
        Err(message) => {
            eprintln!("example-app: cannot start: {message}");
            return ExitCode::FAILURE;
        }
    };
    let _log_guard = telemetry::init(format);

    let started = async {
        // Settings: the configuration file or directory, its `app:` section.
        let config_path = settings::config_path(std::env::args());
        tracing::info!(config = %config_path.display(), "starting");
        let (config, settings) = load_settings(AppOptions {
            config_path,
            env: None,
        })?;
        // The registry of stores, SQLite, and the DI module of components.
        let state = build_state(&config, settings).await?;
        // The router, bound to `app.addr`.
        Application::bind(build_app(state.clone()), &state).await
    };
    let app = match started.await {
        Ok(app) => app,
        Err(e) => return failure("cannot start", &e),
    };
    match app.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(e) => tracing::warn!(error = %e, "listening (address unknown)"),
    }
    // Serve until SIGINT/SIGTERM, drain, close the stores.
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure("server error", &e),
    }
}

/// Prints `e` and its causes; the process then exits with a failure.
fn failure(what: &str, e: &dyn Error) -> ExitCode {
    eprintln!("example-app: {what}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    ExitCode::FAILURE
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal: draining in-flight requests");
}
