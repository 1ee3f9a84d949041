//! `POST /v1/feedback` and `POST /v1/decisions/{transaction_id}/outcome`

use actix_web::{HttpRequest, HttpResponse, web};

use super::Edge;
use crate::decision::DecisionService;
use crate::error::ApiError;
use crate::feedback::input::{LabelInput, OutcomeInput};
use crate::limiter::CallerLimiter;
use crate::store::VelocityStore;

/// The contract's body limits.
pub const MAX_FEEDBACK_BYTES: usize = 8 * 1024;
pub const MAX_OUTCOME_BYTES: usize = 4 * 1024;

#[tracing::instrument(name = "Feedback request", skip_all)]
pub async fn feedback(
    req: HttpRequest,
    payload: web::Payload,
    edge: web::Data<Edge>,
    service: web::Data<DecisionService>,
    store: web::Data<VelocityStore>,
    limiter: web::Data<CallerLimiter>,
) -> Result<HttpResponse, ApiError> {
    let body = super::body::admit(&req, payload, &edge, &limiter, MAX_FEEDBACK_BYTES).await?;
    let label = LabelInput::parse(&body, super::body::now_ms())?;
    let recorded = crate::feedback::record_label(service.log.as_ref(), &store, label).await?;
    Ok(HttpResponse::Accepted().json(recorded))
}

#[tracing::instrument(name = "Outcome request", skip_all)]
pub async fn outcome(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    edge: web::Data<Edge>,
    service: web::Data<DecisionService>,
    store: web::Data<VelocityStore>,
    limiter: web::Data<CallerLimiter>,
) -> Result<HttpResponse, ApiError> {
    let body = super::body::admit(&req, payload, &edge, &limiter, MAX_OUTCOME_BYTES).await?;
    let outcome = OutcomeInput::parse(&path, &body, super::body::now_ms())?;
    let recorded = crate::feedback::record_outcome(service.log.as_ref(), &store, outcome).await?;
    Ok(HttpResponse::Accepted().json(recorded))
}
