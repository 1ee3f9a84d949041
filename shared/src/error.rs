//! The error body every non-2xx answer of the sidecar carries.

use serde::{Deserialize, Serialize};

/// `{"error": {"code": "...", "message": "...", "field": "amount.currency"}}`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiErrorDetail {
    /// Stable snake_case code: `invalid_json`, `validation_failed`, `rate_limited`, …
    pub code: String,
    pub message: String,
    /// Dotted path of the offending field, or null.
    pub field: Option<String>,
}
