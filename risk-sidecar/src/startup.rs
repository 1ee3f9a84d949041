//! Building the application: settings in, a bound server out (port 0 works, for tests).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use tracing_actix_web::TracingLogger;

use crate::decision::features::{EmailKeying, FeatureContext};
use crate::decision::policy::Policy;
use crate::decision::{DecisionService, Reloader};
use crate::limiter::CallerLimiter;
use crate::model::ModelSource;
use crate::settings::Settings;
use crate::store::{MemoryStore, StoreFactory, StoreLimits};

/// The contract's body limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Start-up failures, split by what the operator must fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad settings or files they point at: exit 64 (EX_USAGE), before binding.
    #[error(transparent)]
    Config(anyhow::Error),
    #[error(transparent)]
    Other(anyhow::Error),
}

/// Flips to draining on shutdown, so `/readyz` tells the orchestrator to stop routing.
#[derive(Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// Health and metrics on the pod's address (`server.ops_port`), when set.
    ops: Option<Server>,
    readiness: Arc<Readiness>,
    reloader: Reloader,
    service: Arc<DecisionService>,
    grace: Duration,
}

/// Stops the server gracefully: readiness first, then no new connections, then
/// in-flight requests finish within the grace period.
#[derive(Clone)]
pub struct ShutdownHandle {
    handle: ServerHandle,
    ops: Option<ServerHandle>,
    readiness: Arc<Readiness>,
}

impl ShutdownHandle {
    pub async fn shutdown(&self) {
        self.readiness.draining.store(true, Ordering::Relaxed);
        tracing::info!("Shutting down: draining in-flight requests.");
        self.handle.stop(true).await;
        if let Some(ops) = &self.ops {
            ops.stop(true).await;
        }
    }
}

// === impl Application ===

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let metrics = crate::metrics::install();
        let model_sessions = if settings.model.sessions == 0 {
            workers
        } else {
            settings.model.sessions
        };
        let source = ModelSource {
            dir: settings.model.dir.clone(),
            sessions: model_sessions,
            library: settings.model.ort_library.clone(),
        };
        let model = source.load().map_err(|e| StartupError::Config(e.into()))?;
        let policy_text = read_policy(&settings.policy.path).map_err(StartupError::Config)?;
        let policy = policy_text
            .as_deref()
            .map(|text| parse_policy(text, &settings.policy.path))
            .transpose()
            .map_err(StartupError::Config)?;
        if policy.is_none() {
            tracing::warn!(path = %settings.policy.path.display(), "Policy file not found: not ready until it appears.");
        }
        let stores = match settings.redis_url() {
            Some(url) => StoreFactory::Redis {
                url: url.to_owned(),
                settings: settings.redis.clone(),
            },
            None => {
                tracing::info!("No Redis configured: velocity counters live in memory, in this process only.");
                StoreFactory::Memory(Arc::new(MemoryStore::new(StoreLimits::from(&settings.redis))))
            }
        };
        let email_keying = match settings.decision_log.url() {
            Some(_) => EmailKeying::Hashed(settings.decision_log.email_hash_key.expose_secret().as_bytes().to_vec()),
            None => EmailKeying::Unkeyed,
        };
        let features = FeatureContext::new(&settings.currency.rates, &settings.currency.reference)
            .with_labels(settings.decision.label_counters, email_keying);
        let shadow = shadow_model(&settings, model_sessions).map_err(StartupError::Config)?;
        let log = start_decision_log(&settings).await?;
        let service = Arc::new(DecisionService::new(
            model,
            policy,
            features,
            log,
            settings.decision.budget(),
        ));
        service.shadow.store(shadow.map(Arc::new));
        let limiter = Arc::new(CallerLimiter::new(&settings.limits));
        limiter.spawn_cleanup();
        crate::metrics::spawn_upkeep(metrics.clone());
        let every = settings.policy.reload_interval();
        spawn_policy_watcher(Arc::clone(&service), settings.policy.path.clone(), every, policy_text);

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address)
            .with_context(|| format!("Failed to bind {address}"))
            .map_err(StartupError::Other)?;
        let port = listener.local_addr().map_err(|e| StartupError::Other(e.into()))?.port();
        let ops_listener = match settings.server.ops_port {
            0 => None,
            ops_port => {
                let ops_address = format!("{}:{}", settings.server.ops_host, ops_port);
                let l = TcpListener::bind(&ops_address)
                    .with_context(|| format!("Failed to bind {ops_address}"))
                    .map_err(StartupError::Other)?;
                tracing::info!(address = %ops_address, "Health and metrics listening.");
                Some(l)
            }
        };
        let readiness = Arc::new(Readiness::default());
        let reloader = Reloader {
            service: Arc::clone(&service),
            source,
        };
        // Shared state is wrapped once, outside the per-worker factory.
        let service_data = web::Data::from(Arc::clone(&service));
        let limiter_data = web::Data::from(limiter);
        let readiness_data = web::Data::from(Arc::clone(&readiness));
        let metrics_data = web::Data::new(metrics);
        let (stores_for_ops, metrics_for_ops) = (stores.clone(), metrics_data.clone());
        let edge_data = web::Data::new(crate::routes::Edge {
            max_body_bytes: MAX_BODY_BYTES,
            body_timeout: settings.server.request_timeout(),
            max_event_age_days: settings.decision.max_event_age_days,
            trusted_callers: settings.limits.trusted_callers.clone(),
        });
        let reloader_data = web::Data::new(reloader.clone());
        let server = HttpServer::new(move || {
            let stores = stores.clone();
            App::new()
                // Built inside the worker, so a Redis client's tasks run on the worker's thread.
                .data_factory(move || {
                    let stores = stores.clone();
                    async move { stores.make().await }
                })
                .wrap(from_fn(record_metrics))
                .wrap(TracingLogger::<servicekit::RequestSpan>::new())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(service_data.clone())
                .app_data(limiter_data.clone())
                .app_data(readiness_data.clone())
                .app_data(metrics_data.clone())
                .app_data(edge_data.clone())
                .app_data(reloader_data.clone())
                .configure(crate::routes::configure)
                .default_service(web::to(crate::routes::not_found))
        })
        .workers(workers)
        .client_request_timeout(settings.server.request_timeout())
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_grace().as_secs().max(1))
        .listen(listener)
        .map_err(|e| StartupError::Other(e.into()))?;
        let server = server.run();
        // The ops listener is a server of its own with only health and metrics (one
        // worker, one store of its own for /readyz): the decision API and the admin
        // reload are not routed there at all.
        let ops = match ops_listener {
            None => None,
            Some(l) => {
                let stores = stores_for_ops;
                let service = web::Data::from(Arc::clone(&service));
                let readiness = web::Data::from(Arc::clone(&readiness));
                let metrics = metrics_for_ops;
                let ops = HttpServer::new(move || {
                    let stores = stores.clone();
                    App::new()
                        .data_factory(move || {
                            let stores = stores.clone();
                            async move { stores.make().await }
                        })
                        .app_data(service.clone())
                        .app_data(readiness.clone())
                        .app_data(metrics.clone())
                        .service(web::resource("/healthz").route(web::get().to(crate::routes::healthz)))
                        .service(web::resource("/readyz").route(web::get().to(crate::routes::readyz)))
                        .service(web::resource("/metrics").route(web::get().to(crate::routes::metrics)))
                        .default_service(web::to(crate::routes::not_found))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(l)
                .map_err(|e| StartupError::Other(e.into()))?
                .run();
                Some(ops)
            }
        };
        tracing::info!(%address, port, workers, "Risk sidecar listening.");
        Ok(Application {
            port,
            server,
            ops,
            readiness,
            reloader,
            service,
            grace: settings.server.shutdown_grace(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            handle: self.server.handle(),
            ops: self.ops.as_ref().map(Server::handle),
            readiness: Arc::clone(&self.readiness),
        }
    }

    /// For SIGHUP: the same reload as `POST /admin/reload`.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Serves until stopped, then drains the decision log (to PostgreSQL or the spool).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = match self.ops {
            Some(ops) => {
                let (served, ops) = futures::future::join(self.server, ops).await;
                served.and(ops)
            }
            None => self.server.await,
        };
        if let Some(log) = &self.service.log {
            log.close(self.grace).await;
        }
        served
    }
}

/// Records every response's latency under its route pattern, never its raw path.
async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let response = next.call(req).await?;
    let route = response.request().match_pattern();
    crate::metrics::http_request(route, response.status().as_u16(), start.elapsed());
    Ok(response)
}

/// The decision log when `decision_log.url` is set. A spool that cannot be opened or a
/// migration PostgreSQL refuses stops start-up; PostgreSQL being down does not.
async fn start_decision_log(settings: &Settings) -> Result<Option<crate::decision_log::DecisionLog>, StartupError> {
    let enabled = settings.decision_log.url().is_some();
    crate::metrics::register_decision_log(enabled);
    let Some(url) = settings.decision_log.url() else {
        tracing::info!("No decision log configured: decisions are not kept beyond the velocity store.");
        return Ok(None);
    };
    let log = crate::decision_log::DecisionLog::start(&settings.decision_log, url)
        .await
        .map_err(|e| StartupError::Config(e.into()))?;
    Ok(Some(log))
}

fn shadow_model(settings: &Settings, sessions: usize) -> anyhow::Result<Option<crate::model::OnnxModel>> {
    if settings.model.shadow_dir.as_os_str().is_empty() {
        return Ok(None);
    }
    let source = ModelSource {
        dir: settings.model.shadow_dir.clone(),
        sessions,
        library: settings.model.ort_library.clone(),
    };
    let model = source.load().context("Failed to load the shadow model")?;
    tracing::info!(version = %model.version(), "Shadow model loaded: scored on every decision, never deciding.");
    Ok(Some(model))
}

/// `Ok(None)` when the file does not exist (yet).
fn read_policy(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("Failed to read policy file {}", path.display())),
    }
}

fn parse_policy(text: &str, path: &Path) -> anyhow::Result<Policy> {
    Policy::from_yaml(text).with_context(|| format!("Invalid policy file {}", path.display()))
}

/// Polls the policy file. A valid new version replaces the current one atomically; an
/// invalid one is logged and counted, and the current one stays. Contents, not mtimes,
/// are compared: two writes within one mtime tick are still seen.
fn spawn_policy_watcher(service: Arc<DecisionService>, path: PathBuf, every: Duration, mut seen: Option<String>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let text = match read_policy(&path) {
                Ok(Some(text)) if Some(&text) != seen.as_ref() => text,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Policy file unreadable; keeping the current policy.");
                    continue;
                }
            };
            match parse_policy(&text, &path) {
                Ok(policy) => {
                    tracing::info!(version = %policy.version, "Policy reloaded.");
                    service.policy.store(Some(Arc::new(policy)));
                    crate::metrics::policy_reload("loaded");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "Policy file rejected; keeping the current policy.");
                    crate::metrics::policy_reload("rejected");
                }
            }
            seen = Some(text);
        }
    });
}
