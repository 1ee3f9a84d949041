//! `GET /v1/decisions/{transaction_id}`

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use crate::decision::DecisionService;
use crate::error::ApiError;
use crate::store::VelocityStore;

#[tracing::instrument(name = "Get decision", skip_all)]
pub async fn get_decision(
    path: web::Path<String>,
    service: web::Data<DecisionService>,
    store: web::Data<VelocityStore>,
) -> Result<HttpResponse, ApiError> {
    let json = service.get(&store, &path).await?;
    Ok(HttpResponse::Ok().insert_header(ContentType::json()).body(json))
}
