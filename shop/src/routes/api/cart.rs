//! `GET /api/cart`, `PUT /api/cart/items/{sku}`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::Bearer;
use crate::catalogue::CartOwner;
use crate::error::ShopError;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct PutItem {
    quantity: i32,
}

pub async fn show(state: web::Data<AppState>, Bearer(identity): Bearer) -> Result<HttpResponse, ShopError> {
    let cart = state.carts.get(&CartOwner::Account(identity.account_id)).await?;
    Ok(HttpResponse::Ok().json(cart))
}

/// Sets the quantity of one product (0 removes it) and returns the cart.
pub async fn put(
    state: web::Data<AppState>,
    Bearer(identity): Bearer,
    sku: web::Path<String>,
    body: web::Json<PutItem>,
) -> Result<HttpResponse, ShopError> {
    let owner = CartOwner::Account(identity.account_id);
    state.carts.put(&owner, &sku, body.quantity, true).await?;
    Ok(HttpResponse::Ok().json(state.carts.get(&owner).await?))
}
