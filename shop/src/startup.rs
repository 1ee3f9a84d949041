//! Builds the application (production and tests share it) and binds its listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use deadpool_postgres::Pool;
use secrecy::ExposeSecret;
use servicekit::PrometheusHandle;
use tracing_actix_web::TracingLogger;

use crate::accounts::{Accounts, LoginLimiter, LoginLimits, PasswordHasher, TokenIssuer};
use crate::catalogue::{Carts, Catalogue};
use crate::checkout::{Checkout, RiskClient};
use crate::gateway::HttpGateway;
use crate::session::CookiePolicy;
use crate::settings::{Settings, SettingsError};

/// The shop sells in one currency.
pub const SHOP_CURRENCY: &str = "EUR";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration")]
    Config(#[from] SettingsError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Everything a handler may need, built once.
pub struct AppState {
    pub pool: Pool,
    pub accounts: Accounts,
    pub catalogue: Catalogue,
    pub carts: Carts,
    pub checkout: Checkout,
    pub cookies: CookiePolicy,
    pub csrf_secret: String,
    pub mailbox_enabled: bool,
    pub forwarded_for: crate::routes::ForwardedFor,
    pub metrics: PrometheusHandle,
}

pub struct Application {
    port: u16,
    server: Server,
}

// === impl Application ===

impl Application {
    /// Migrates when the database answers; starts anyway when it does not (readiness
    /// says so, and migrations run as soon as it is back).
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let metrics = crate::metrics::install();
        crate::metrics::spawn_upkeep(metrics.clone());
        let pool = crate::db::pool(&settings.database)?;
        match crate::db::migrate(&pool).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Database not ready at start; retrying in the background.");
                spawn_migrate_retry(pool.clone());
            }
        }
        if settings.dev.demo_data {
            let hasher = password_hasher(&settings)?;
            crate::demo::load(&pool, &hasher).await?;
        }
        let state = web::Data::new(build_state(&settings, pool, metrics)?);
        spawn_limiter_upkeep(state.clone());
        spawn_report_sender(state.clone());
        spawn_reconciler(
            state.clone(),
            Duration::from_secs(settings.verification.reconcile_interval_secs.max(1)),
            Duration::from_secs(settings.verification.reconcile_after_secs),
        );

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .map_err(|e| anyhow::anyhow!("failed to bind {}:{}: {e}", settings.server.host, settings.server.port))?;
        let port = listener.local_addr().map_err(anyhow::Error::from)?.port();
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(security_headers())
                .wrap(from_fn(record_metrics))
                .wrap(TracingLogger::<servicekit::RequestSpan>::new())
                .app_data(app_state.clone())
                .configure(crate::routes::configure)
        })
        .workers(workers)
        .listen(listener)
        .map_err(anyhow::Error::from)?
        .run();
        tracing::info!(port, "Shop listening.");
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn password_hasher(settings: &Settings) -> anyhow::Result<PasswordHasher> {
    PasswordHasher::new(
        settings.auth.argon2_memory_kib,
        settings.auth.argon2_iterations,
        settings.auth.argon2_max_concurrent,
    )
}

fn build_state(settings: &Settings, pool: Pool, metrics: PrometheusHandle) -> Result<AppState, StartupError> {
    let auth = &settings.auth;
    let tokens = TokenIssuer::new(
        &auth.access_token_secret,
        &auth.token_issuer,
        &auth.token_audience,
        Duration::from_secs(auth.access_ttl_secs),
        Duration::from_secs(auth.refresh_ttl_secs),
    );
    let limiter = LoginLimiter::new(LoginLimits {
        per_account_per_minute: auth.login_per_account_per_minute,
        per_ip_per_minute: auth.login_per_ip_per_minute,
        free_failures: auth.login_free_failures,
        signup_per_ip_per_minute: auth.signup_per_ip_per_minute,
    });
    let accounts = Accounts::new(pool.clone(), password_hasher(settings)?, tokens, limiter);
    let gateway = Arc::new(HttpGateway::new(&settings.gateway)?);
    let checkout = Checkout::new(
        pool.clone(),
        gateway,
        RiskClient::new(&settings.risk)?,
        Duration::from_secs(settings.verification.code_ttl_secs),
        settings.verification.max_attempts,
        settings.server.public_url.trim_end_matches('/').to_owned(),
    );
    Ok(AppState {
        catalogue: Catalogue::new(pool.clone()),
        carts: Carts::new(pool.clone(), SHOP_CURRENCY.to_owned()),
        accounts,
        checkout,
        cookies: CookiePolicy {
            secure: auth.cookie_secure,
        },
        csrf_secret: auth.csrf_secret.expose_secret().to_owned(),
        mailbox_enabled: settings.dev.enabled,
        forwarded_for: crate::routes::ForwardedFor::new(settings.server.trusted_proxies.clone()),
        metrics,
        pool,
    })
}

fn spawn_migrate_retry(pool: Pool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if crate::db::migrate(&pool).await.is_ok() {
                tracing::info!("Database back; migrations applied.");
                return;
            }
        }
    });
}

fn spawn_limiter_upkeep(state: web::Data<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            state.accounts.retain_recent();
        }
    });
}

/// Reads the gateway's dispute events and sends the queued reports to the sidecar: a
/// round a second, at once again while a round had work.
fn spawn_report_sender(state: web::Data<AppState>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = state.checkout.sync_disputes().await {
                tracing::debug!(error = %e, "Gateway events not read this round.");
            }
            match state.checkout.send_reports().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "Report round skipped."),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

fn spawn_reconciler(state: web::Data<AppState>, every: Duration, older_than: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = state.checkout.reconcile(older_than).await {
                tracing::debug!(error = %e, "Reconciliation skipped.");
            }
        }
    });
}

/// Headers every answer carries unless its handler set its own: no framing, no
/// content sniffing, no referrer off the site, only our own styles and forms (the pages
/// have no script), and nothing cached: pages show who is signed in, and API answers
/// carry tokens (the stylesheet sets its own caching).
fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"))
}

/// Request latency by matched route pattern (never the raw path) and status.
async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let response = next.call(req).await?;
    let route = response.request().match_pattern();
    crate::metrics::http_request(
        route.as_deref().unwrap_or("unmatched"),
        response.status().as_u16(),
        started.elapsed(),
    );
    Ok(response)
}
