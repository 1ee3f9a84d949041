//! `POST /v1/decisions`

use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_TYPE, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::decision::DecisionService;
use crate::decision::input::DecisionInput;
use crate::error::ApiError;
use crate::limiter::CallerLimiter;
use crate::store::VelocityStore;

/// Callers name themselves with this header; otherwise their address is their key.
const CLIENT_ID_HEADER: &str = "x-client-id";
/// `true` adds the model's input row to the response.
const FEATURES_HEADER: &str = "x-risk-features";

#[tracing::instrument(name = "Decision request", skip_all)]
pub async fn decide(
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
    service: web::Data<DecisionService>,
    store: web::Data<VelocityStore>,
    limiter: web::Data<CallerLimiter>,
) -> Result<HttpResponse, ApiError> {
    limiter.check(&caller(&req)).map_err(|retry_after_secs| {
        crate::metrics::rate_limited();
        ApiError::RateLimited { retry_after_secs }
    })?;
    if !is_json(&req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body.map_err(|e| match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge,
        _ => ApiError::InvalidJson("failed to read the request body".to_owned()),
    })?;
    let input = DecisionInput::parse(&body, now_ms())?;
    let with_features = req
        .headers()
        .get(FEATURES_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let json = service.decide(&store, &input, with_features).await?;
    Ok(HttpResponse::Ok().insert_header(ContentType::json()).body(json))
}

fn caller(req: &HttpRequest) -> String {
    match req.headers().get(CLIENT_ID_HEADER).and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
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
