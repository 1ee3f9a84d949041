//! `/healthz`, `/readyz`, `/metrics`, and the JSON 404 for everything else.

use actix_web::{HttpResponse, web};
use serde_json::json;
use servicekit::PrometheusHandle;

use crate::decision::DecisionService;
use crate::error::ApiError;
use crate::startup::Readiness;
use crate::store::{StoreState, VelocityStore};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready once it can decide: a policy and a model are loaded and the process is not
/// draining. A velocity store that is down degrades decisions but does not unready.
pub async fn readyz(
    service: web::Data<DecisionService>,
    store: web::Data<VelocityStore>,
    readiness: web::Data<Readiness>,
) -> HttpResponse {
    let policy = service.policy.load();
    let model = service.model.load();
    let store = store.state();
    let draining = readiness.is_draining();
    let ready = policy.is_some() && !draining;
    let status = match (draining, ready) {
        (true, _) => "draining",
        (false, true) => "ready",
        (false, false) => "not_ready",
    };
    let body = json!({
        "status": status,
        "dependencies": {
            "policy": match policy.as_ref() {
                Some(p) => json!({"state": "loaded", "version": p.version}),
                None => json!({"state": "missing"}),
            },
            "model": {"state": "loaded", "version": model.version()},
            "velocity_store": {
                "state": store.as_str(),
                "backend": if store == StoreState::InMemory { "memory" } else { "redis" },
            },
            "decision_log": match &service.log {
                None => json!({"state": "disabled", "message": "no decision log is kept (decision_log.url is empty)"}),
                Some(log) => json!({
                    "state": log.status.state().as_str(),
                    "queue_depth": log.status.queue_depth(),
                    "spool_bytes": log.status.spool_bytes(),
                }),
            },
        },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route"))
}
