//! `POST /v1/decisions`

use std::time::Duration;

use actix_web::http::header::{CONTENT_TYPE, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use ipnet::IpNet;

use crate::decision::DecisionService;
use crate::decision::input::{DecisionInput, InputError};
use crate::error::ApiError;
use crate::limiter::CallerLimiter;
use crate::store::VelocityStore;

/// Trusted callers name themselves with this header; others are their address.
const CLIENT_ID_HEADER: &str = "x-client-id";
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
    limiter
        .check(&caller(&req, &edge.trusted_callers))
        .map_err(|retry_after_secs| {
            crate::metrics::rate_limited();
            ApiError::RateLimited { retry_after_secs }
        })?;
    if !is_json(&req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = tokio::time::timeout(edge.body_timeout, payload.to_bytes_limited(edge.max_body_bytes))
        .await
        .map_err(|_| ApiError::RequestTimeout)?
        .map_err(|_| ApiError::PayloadTooLarge)?
        .map_err(|_| ApiError::InvalidJson("failed to read the request body".to_owned()))?;
    let now = now_ms();
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

/// The limiter's key: the peer's address; for a trusted peer, the caller it names.
fn caller(req: &HttpRequest, trusted: &[IpNet]) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return String::new();
    };
    let named = req
        .headers()
        .get(CLIENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty());
    match named {
        Some(id) if trusted.iter().any(|net| net.contains(&peer)) => format!("{peer}/{id}"),
        _ => peer.to_string(),
    }
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as i64
}
