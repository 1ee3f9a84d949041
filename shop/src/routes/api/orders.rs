//! `POST /api/checkout`, `GET /api/orders`, `GET /api/orders/{id}`, `POST /api/orders/{id}/verify`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::Bearer;
use crate::checkout::{CheckoutRequest, DeviceContext, VerifyOutcome};
use crate::error::ShopError;
use crate::gateway::CardInput;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct CheckoutBody {
    card: CardInput,
    shipping_country: String,
    billing_country: String,
}

#[derive(Deserialize)]
pub struct VerifyBody {
    code: String,
}

/// Places the cart as an order and pays it. `Idempotency-Key` is required: the same key
/// again returns the same order (and never charges twice).
pub async fn checkout(
    state: web::Data<AppState>,
    Bearer(identity): Bearer,
    req: HttpRequest,
    body: web::Json<CheckoutBody>,
) -> Result<HttpResponse, ShopError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let key = header("idempotency-key")
        .ok_or_else(|| ShopError::validation("Idempotency-Key", "send an Idempotency-Key header (one per checkout)"))?;
    let body = body.into_inner();
    let device = DeviceContext::from_request(&req, &state.forwarded_for, header("x-device-id").as_deref());
    let order = state
        .checkout
        .place(
            &identity,
            CheckoutRequest {
                checkout_key: key,
                card: body.card,
                shipping_country: body.shipping_country,
                billing_country: body.billing_country,
                device,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(order))
}

pub async fn list(state: web::Data<AppState>, Bearer(identity): Bearer) -> Result<HttpResponse, ShopError> {
    Ok(HttpResponse::Ok().json(state.checkout.orders_for(&identity).await?))
}

pub async fn show(
    state: web::Data<AppState>,
    Bearer(identity): Bearer,
    order_id: web::Path<String>,
) -> Result<HttpResponse, ShopError> {
    Ok(HttpResponse::Ok().json(state.checkout.order_for(&identity, &order_id).await?))
}

pub async fn verify(
    state: web::Data<AppState>,
    Bearer(identity): Bearer,
    order_id: web::Path<String>,
    body: web::Json<VerifyBody>,
) -> Result<HttpResponse, ShopError> {
    match state.checkout.verify(&identity, &order_id, &body.code).await? {
        VerifyOutcome::Passed(order) | VerifyOutcome::Failed(order) => Ok(HttpResponse::Ok().json(order)),
        VerifyOutcome::WrongCode { remaining } => Ok(HttpResponse::UnprocessableEntity().json(json!({
            "error": {"code": "wrong_code", "message": format!("the code is wrong; {remaining} attempts left"), "field": "code"},
            "remaining_attempts": remaining,
        }))),
    }
}
