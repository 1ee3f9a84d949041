use std::process::ExitCode;

use shop::settings::Settings;
use shop::startup::{Application, StartupError};
use shop::telemetry;

/// EX_USAGE: the settings are wrong; restarting will not help.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "shop: {e}: {}",
                std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // `shop healthcheck [path]`: the container's and the probes' check of /healthz (or
    // `path`, /readyz for readiness); the images carry no curl.
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let path = std::env::args().nth(2).unwrap_or_else(|| "/healthz".to_owned());
        return servicekit::healthcheck(&settings.server.host, settings.server.port, &path);
    }
    telemetry::init(settings.log.format);
    // `shop migrate`: apply the migrations and exit (`make migrate`).
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return match migrate(&settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shop: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "Failed to start.");
            eprintln!("shop: {e:#}");
            return ExitCode::from(match e {
                StartupError::Config(_) => EXIT_CONFIG,
                StartupError::Other(_) => 1,
            });
        }
    };
    // actix handles SIGTERM/SIGINT itself: it stops accepting and drains workers.
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "Server failed.");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = shop::db::pool(&settings.database)?;
    shop::db::migrate(&pool).await
}
