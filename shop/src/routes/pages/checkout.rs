//! The checkout page: card form, then the order page (or the verification page).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, PageError, login_redirect, redirect, render};
use crate::catalogue::CartOwner;
use crate::checkout::{CheckoutRequest, DeviceContext, OrderStatus};
use crate::error::ShopError;
use crate::gateway::CardInput;
use crate::routes::money;
use crate::session::Session;
use crate::startup::AppState;

pub const COUNTRIES: &[(&str, &str)] = &[
    ("AT", "Austria"),
    ("BE", "Belgium"),
    ("CH", "Switzerland"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("ES", "Spain"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("IT", "Italy"),
    ("NL", "Netherlands"),
    ("PL", "Poland"),
    ("SE", "Sweden"),
    ("US", "United States"),
];

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    layout: Layout,
    total: String,
    items: i32,
    checkout_key: String,
    countries: &'static [(&'static str, &'static str)],
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct CheckoutForm {
    csrf_token: String,
    checkout_key: String,
    card_number: String,
    exp_month: u8,
    exp_year: u16,
    cvc: String,
    shipping_country: String,
    billing_country: String,
}

impl std::fmt::Debug for CheckoutForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckoutForm { .. }")
    }
}

async fn page(state: &AppState, session: &Session, error: Option<String>) -> Result<Option<CheckoutPage>, PageError> {
    let Some(identity) = &session.identity else {
        return Ok(None);
    };
    let cart = state.carts.get(&CartOwner::Account(identity.account_id)).await?;
    Ok(Some(CheckoutPage {
        layout: Layout::new(session, state),
        total: money(cart.total_minor, &cart.currency),
        items: cart.lines.iter().map(|l| l.quantity).sum(),
        // A fresh key per rendering of the form: resubmitting this form is the same
        // checkout; reloading the page starts a new one.
        checkout_key: crate::accounts::random_token_short(),
        countries: COUNTRIES,
        error,
    }))
}

pub async fn form(state: web::Data<AppState>, session: web::ReqData<Session>) -> Result<HttpResponse, PageError> {
    match page(&state, &session, None).await? {
        None => Ok(login_redirect("/checkout")),
        Some(p) if p.items == 0 => Ok(redirect("/cart")),
        Some(p) => render(&p, StatusCode::OK),
    }
}

pub async fn submit(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    req: HttpRequest,
    form: web::Form<CheckoutForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    session.verify_csrf(&form.csrf_token)?;
    let Some(identity) = &session.identity else {
        return Ok(login_redirect("/checkout"));
    };
    let request = CheckoutRequest {
        checkout_key: form.checkout_key,
        card: CardInput {
            number: form.card_number,
            exp_month: form.exp_month,
            exp_year: form.exp_year,
            cvc: form.cvc,
        },
        shipping_country: form.shipping_country,
        billing_country: form.billing_country,
        device: DeviceContext::from_request(&req, &state.forwarded_for, Some(&session.device_id)),
    };
    match state.checkout.place(identity, request).await {
        Ok(order) if order.status == OrderStatus::AwaitingVerification => {
            Ok(redirect(&format!("/orders/{}/verify", order.public_id)))
        }
        Ok(order) => Ok(redirect(&format!("/orders/{}", order.public_id))),
        // Mistakes the shopper can fix are shown on the form, which keeps nothing typed.
        Err(e @ (ShopError::Validation { .. } | ShopError::OutOfStock { .. })) => {
            let status = e.status_code();
            match page(&state, &session, Some(e.to_string())).await? {
                Some(p) => render(&p, status),
                None => Ok(login_redirect("/checkout")),
            }
        }
        Err(ShopError::EmptyCart) => Ok(redirect("/cart")),
        Err(e) => Err(e.into()),
    }
}
