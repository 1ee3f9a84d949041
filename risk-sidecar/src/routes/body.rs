//! What every POST goes through before its handler reads the body: the caller's rate
//! limit, the content type, and the body within its size and time limits.

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::{self, Bytes};

use super::Edge;
use crate::error::ApiError;
use crate::limiter::{Caller, CallerLimiter};

/// Trusted callers name themselves with this header; others are their address.
const CLIENT_ID_HEADER: &str = "x-client-id";

pub async fn admit(
    req: &HttpRequest,
    payload: web::Payload,
    edge: &Edge,
    limiter: &CallerLimiter,
    max_bytes: usize,
) -> Result<Bytes, ApiError> {
    limiter
        .check(&caller(req, &edge.trusted_callers))
        .map_err(|retry_after_secs| {
            crate::metrics::rate_limited();
            ApiError::RateLimited { retry_after_secs }
        })?;
    if !is_json(req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let too_large = ApiError::PayloadTooLarge {
        limit_kib: max_bytes / 1024,
    };
    tokio::time::timeout(edge.body_timeout, payload.to_bytes_limited(max_bytes))
        .await
        .map_err(|_| ApiError::RequestTimeout)?
        .map_err(|_| too_large)?
        .map_err(|_| ApiError::InvalidJson("failed to read the request body".to_owned()))
}

/// The limiter's key: the peer's address; for a trusted peer, also the caller it names.
fn caller<'r>(req: &'r HttpRequest, trusted: &[ipnet::IpNet]) -> Caller<'r> {
    let peer = req.peer_addr().map(|a| a.ip());
    let name = peer
        .filter(|peer| trusted.iter().any(|net| net.contains(peer)))
        .and_then(|_| req.headers().get(CLIENT_ID_HEADER))
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty());
    Caller { peer, name }
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as i64
}
