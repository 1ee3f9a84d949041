//! The HTTP boundary: every error a client can see, with its status and stable code.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shared::{ApiErrorBody, ApiErrorDetail};

use crate::decision::input::InputError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("request body is larger than {limit_kib} KiB")]
    PayloadTooLarge { limit_kib: usize },
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("{message}")]
    Validation { field: Option<String>, message: String },
    #[error("a value looks like a full card number; send the gateway's token instead")]
    PanNotAllowed { field: Option<String> },
    #[error("this transaction_id was decided before with another amount, currency, customer or card")]
    IdempotencyMismatch,
    #[error("rate limit exceeded for this caller")]
    RateLimited { retry_after_secs: u64 },
    #[error("no decision policy is loaded yet")]
    NotReady,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    ModelRejected(String),
    #[error("only callers on this host may do that")]
    Forbidden,
    #[error("decision store unavailable")]
    StoreUnavailable(#[source] crate::store::StoreError),
    /// A label or an outcome that cannot be recorded durably right now.
    #[error("{0}")]
    LogUnavailable(#[source] crate::feedback::Unavailable),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// Stable wire code; also the `error_kind` metric label.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::PanNotAllowed { .. } => "pan_not_allowed",
            ApiError::IdempotencyMismatch => "idempotency_mismatch",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::NotReady => "not_ready",
            ApiError::NotFound(_) => "not_found",
            ApiError::StoreUnavailable(_) | ApiError::LogUnavailable(_) => "store_unavailable",
            ApiError::ModelRejected(_) => "model_rejected",
            ApiError::Forbidden => "forbidden",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::Validation { field, .. } => field.clone(),
            ApiError::PanNotAllowed { field } => field.clone(),
            _ => None,
        }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::InvalidJson(message) => ApiError::InvalidJson(message),
            InputError::Pan { field } => ApiError::PanNotAllowed { field },
            InputError::Invalid { field, message } => ApiError::Validation { field, message },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation { .. } | ApiError::PanNotAllowed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::IdempotencyMismatch => StatusCode::CONFLICT,
            ApiError::NotReady | ApiError::StoreUnavailable(_) | ApiError::LogUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::ModelRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // A 5xx never carries internal text: the cause chain goes to the log, once.
        let message = if status.is_server_error() {
            tracing::error!(error = %anyhow_chain(self), code = self.code(), "Request failed.");
            match self {
                ApiError::NotReady | ApiError::StoreUnavailable(_) | ApiError::LogUnavailable(_) => self.to_string(),
                _ => "internal error".to_owned(),
            }
        } else {
            self.to_string()
        };
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                response.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header(("Retry-After", "1"));
            }
            _ => {}
        }
        response.json(ApiErrorBody {
            error: ApiErrorDetail {
                code: self.code().to_owned(),
                message,
                field: self.field(),
            },
        })
    }
}

/// "outer: inner: root" for one log line.
fn anyhow_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
