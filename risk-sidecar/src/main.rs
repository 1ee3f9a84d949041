use std::process::ExitCode;

use risk_sidecar::settings::Settings;
use risk_sidecar::startup::{Application, StartupError};
use risk_sidecar::telemetry;
use tokio::signal::unix::{SignalKind, signal};

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
    // `risk-sidecar healthcheck [path]`: the container's and the probes' check of /healthz (or
    // `path`, /readyz for readiness); the images carry no curl.
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let path = std::env::args().nth(2).unwrap_or_else(|| "/healthz".to_owned());
        return servicekit::healthcheck(&settings.server.host, settings.server.port, &path);
    }
    telemetry::init(settings.log.format);
    // Handlers go in before the port is bound: a signal sent as soon as the port answers
    // must find them (SIGHUP's default would kill the process).
    let (Ok(mut hangup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("risk-sidecar: failed to install signal handlers");
        return ExitCode::FAILURE;
    };
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
    let reloader = app.reloader();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            // The outcome is logged and counted by the reloader.
            let _ = reloader.reload().await;
        }
    });
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
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
