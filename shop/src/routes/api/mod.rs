//! The JSON API: the same operations as the pages, bearer-token authenticated
//! (`Authorization: Bearer <access token>`), described in `shop/openapi.yaml`.

mod auth;
mod cart;
mod catalogue;
mod orders;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::accounts::Identity;
use crate::error::ShopError;
use crate::startup::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/signup", web::post().to(auth::sign_up))
        .route("/auth/login", web::post().to(auth::log_in))
        .route("/auth/refresh", web::post().to(auth::refresh))
        .route("/auth/logout", web::post().to(auth::log_out))
        .route("/products", web::get().to(catalogue::list))
        .route("/products/{sku}", web::get().to(catalogue::show))
        .route("/cart", web::get().to(cart::show))
        .route("/cart/items/{sku}", web::put().to(cart::put))
        .route("/checkout", web::post().to(orders::checkout))
        .route("/orders", web::get().to(orders::list))
        .route("/orders/{order_id}", web::get().to(orders::show))
        .route("/orders/{order_id}/verify", web::post().to(orders::verify))
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ShopError::NotFound)
        }));
}

/// The caller of an API route, from a valid bearer token; 401 otherwise.
pub struct Bearer(pub Identity);

impl FromRequest for Bearer {
    type Error = ShopError;
    type Future = Ready<Result<Bearer, ShopError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let identity = req
            .app_data::<web::Data<AppState>>()
            .zip(req.headers().get("authorization").and_then(|h| h.to_str().ok()))
            .and_then(|(state, header)| {
                let token = header.strip_prefix("Bearer ")?;
                state.accounts.tokens.verify_access(token.trim())
            });
        ready(identity.map(Bearer).ok_or(ShopError::Unauthenticated))
    }
}
