use std::process::ExitCode;

use risk_sidecar::settings::Settings;
use risk_sidecar::startup::{Application, StartupError};
use risk_sidecar::telemetry;

/// glibc's malloc took a fifth of the sidecar's CPU under load (perf); mimalloc's
/// thread-local free lists suit many small per-request allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// EX_USAGE: the settings (or files they name) are wrong; restarting will not help.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "risk-sidecar: {e}: {}",
                std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(settings.log.format);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "Failed to start.");
            eprintln!("risk-sidecar: {e:#}");
            return ExitCode::from(match e {
                StartupError::Config(_) => EXIT_CONFIG,
                StartupError::Other(_) => 1,
            });
        }
    };
    let shutdown = app.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        shutdown.shutdown().await;
    });
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "Server failed.");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
