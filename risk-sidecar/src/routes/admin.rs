//! `POST /admin/reload`: load the model again from its directory (and the policy file).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::decision::Reloader;
use crate::error::ApiError;

/// Loopback callers only: an operator on the pod, not whoever can reach the port.
pub async fn reload(req: HttpRequest, reloader: web::Data<Reloader>) -> Result<HttpResponse, ApiError> {
    if !req.peer_addr().is_some_and(|a| a.ip().is_loopback()) {
        return Err(ApiError::Forbidden);
    }
    let version = reloader
        .reload()
        .await
        .map_err(|e| ApiError::ModelRejected(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({"model_version": version})))
}
