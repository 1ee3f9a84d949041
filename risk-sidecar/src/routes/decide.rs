//! `POST /v1/decisions`

use std::time::Duration;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use ipnet::IpNet;

use crate::decision::DecisionService;
use crate::decision::input::{DecisionInput, InputError};
use crate::error::ApiError;
use crate::limiter::CallerLimiter;
use crate::store::VelocityStore;

/// `true` adds the model's input row to the response.
const FEATURES_HEADER: &str = "x-risk-features";
const DAY_MS: i64 = 86_400_000;

/// What the HTTP edge checks that replay and training do not.
pub struct Edge {
    pub max_body_bytes: usize,
    /// The whole body must have arrived within this.
    pub body_timeout: Duration,
    pub max_event_age_days: u32,
    pub trusted_callers: Vec<IpNet>,
}

#[tracing::instrument(name = "Decision request", skip_all)]
pub async fn decide(
    req: HttpRequest,
    payload: web::Payload,
    edge: web::Data<Edge>,
    service: web::Data<DecisionService>,
    store: web::Data<VelocityStore>,
    limiter: web::Data<CallerLimiter>,
) -> Result<HttpResponse, ApiError> {
    let body = super::body::admit(&req, payload, &edge, &limiter, edge.max_body_bytes).await?;
    let now = super::body::now_ms();
    let input = DecisionInput::parse(&body, now)?;
    if input.occurred_at_ms < now - i64::from(edge.max_event_age_days) * DAY_MS {
        return Err(InputError::Invalid {
            field: Some("occurred_at".to_owned()),
            message: format!("is more than {} days in the past", edge.max_event_age_days),
        }
        .into());
    }
    let with_features = req
        .headers()
        .get(FEATURES_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let json = service.decide(&store, input, with_features).await?;
    Ok(HttpResponse::Ok().insert_header(ContentType::json()).body(json))
}
