//! The kv-module example app: `cargo run -p example-app`.

use example_app::{AppOptions, Application, settings, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Telemetry.
    telemetry::init();

    // Settings: the configuration file or directory.
    let config_path = settings::config_path(std::env::args());
    tracing::info!(config = %config_path.display(), "starting");

    // Registry, components and router; then serve until SIGINT/SIGTERM.
    let app = match Application::build(AppOptions {
        config_path,
        env: None,
    })
    .await
    {
        Ok(app) => app,
        Err(e) => {
            eprintln!("example-app: cannot start: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            return std::process::ExitCode::FAILURE;
        }
    };
    match app.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(e) => tracing::warn!(error = %e, "listening (address unknown)"),
    }
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-app: server error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
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
