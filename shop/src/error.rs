//! The shop's one error type and its mapping to HTTP.
//!
//! JSON routes return it as `{"error": {code, message, field}}` (the same body as the
//! sidecar's); pages wrap it in [`crate::routes::pages::PageError`], which renders HTML.
//! A 5xx never carries internal text: the cause chain goes to the log, once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shared::{ApiErrorBody, ApiErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("{message}")]
    Validation { field: &'static str, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("e-mail or password is wrong")]
    BadCredentials,
    #[error("this form has expired; reload the page and try again")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("only {available} of {name} left in stock")]
    OutOfStock { name: String, available: i32 },
    #[error("your cart is empty")]
    EmptyCart,
    #[error("this order can no longer be changed")]
    InvalidState,
    #[error("the request body is too large (at most {limit_bytes} bytes)")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ShopError {
    pub fn validation(field: &'static str, message: impl Into<String>) -> ShopError {
        ShopError::Validation {
            field,
            message: message.into(),
        }
    }

    /// A stable identifier for clients and for metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            ShopError::Validation { .. } => "validation_failed",
            ShopError::Unauthenticated => "unauthenticated",
            ShopError::BadCredentials => "bad_credentials",
            ShopError::Csrf => "csrf_failed",
            ShopError::NotFound => "not_found",
            ShopError::EmailTaken => "email_taken",
            ShopError::RateLimited { .. } => "rate_limited",
            ShopError::OutOfStock { .. } => "out_of_stock",
            ShopError::EmptyCart => "empty_cart",
            ShopError::InvalidState => "invalid_state",
            ShopError::PayloadTooLarge { .. } => "payload_too_large",
            ShopError::Unavailable(_) => "unavailable",
            ShopError::Internal(_) => "internal",
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            ShopError::Validation { field, .. } => Some(field),
            _ => None,
        }
    }

    /// What a shopper may read: the Display text, except for 5xx.
    pub fn public_message(&self) -> String {
        match self {
            ShopError::Internal(_) => "Something went wrong on our side. Please try again.".to_owned(),
            ShopError::Unavailable(_) => {
                "The shop is temporarily unavailable. Nothing was charged; please try again in a moment.".to_owned()
            }
            other => other.to_string(),
        }
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ShopError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ShopError::Unavailable(_) => Some(5),
            _ => None,
        }
    }

    /// Logs a server-side failure once, with its cause chain.
    pub fn log(&self) {
        match self {
            ShopError::Internal(e) => tracing::error!(error = %format!("{e:#}"), "Request failed."),
            ShopError::Unavailable(e) => tracing::warn!(error = %format!("{e:#}"), "Dependency unavailable."),
            _ => {}
        }
    }
}

impl ResponseError for ShopError {
    fn status_code(&self) -> StatusCode {
        match self {
            ShopError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ShopError::Unauthenticated | ShopError::BadCredentials => StatusCode::UNAUTHORIZED,
            ShopError::Csrf => StatusCode::FORBIDDEN,
            ShopError::NotFound => StatusCode::NOT_FOUND,
            ShopError::EmailTaken | ShopError::OutOfStock { .. } | ShopError::EmptyCart | ShopError::InvalidState => {
                StatusCode::CONFLICT
            }
            ShopError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ShopError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ShopError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ShopError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs() {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response.json(ApiErrorBody {
            error: ApiErrorDetail {
                code: self.code().to_owned(),
                message: self.public_message(),
                field: self.field().map(str::to_owned),
            },
        })
    }
}

impl From<deadpool_postgres::PoolError> for ShopError {
    fn from(e: deadpool_postgres::PoolError) -> ShopError {
        // Every pool failure (timeout waiting, connection refused) means the database is
        // not reachable now: a 503, not a 500.
        ShopError::Unavailable(anyhow::Error::new(e).context("no database connection"))
    }
}

impl From<tokio_postgres::Error> for ShopError {
    fn from(e: tokio_postgres::Error) -> ShopError {
        if e.is_closed() || e.as_db_error().is_none() && std::error::Error::source(&e).is_some() {
            ShopError::Unavailable(anyhow::Error::new(e).context("database connection lost"))
        } else {
            ShopError::Internal(anyhow::Error::new(e).context("database query failed"))
        }
    }
}

/// A unique-constraint violation, by constraint name.
pub fn is_unique_violation(e: &tokio_postgres::Error, constraint: &str) -> bool {
    e.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION && db.constraint() == Some(constraint)
    })
}
