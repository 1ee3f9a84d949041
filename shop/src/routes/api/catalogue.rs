//! `GET /api/products`, `GET /api/products/{sku}`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::catalogue::ProductQuery;
use crate::error::ShopError;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    category: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

pub async fn list(state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, ShopError> {
    let query = query.into_inner();
    let page = state
        .catalogue
        .list(&ProductQuery {
            q: query.q,
            category: query.category,
            page: query.page.unwrap_or(1),
            per_page: query.per_page.unwrap_or(20),
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn show(state: web::Data<AppState>, sku: web::Path<String>) -> Result<HttpResponse, ShopError> {
    Ok(HttpResponse::Ok().json(state.catalogue.product(&sku).await?))
}
