//! The cart page and its forms. Signed out, the cart belongs to the browser (a cookie);
//! signed in, to the account.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, PageError, redirect, render};
use crate::catalogue::CartOwner;
use crate::error::ShopError;
use crate::routes::money;
use crate::session::{CART_COOKIE, Session};
use crate::startup::AppState;

struct Line {
    sku: String,
    name: String,
    quantity: i32,
    stock: i32,
    short: bool,
    price: String,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    layout: Layout,
    lines: Vec<Line>,
    total: String,
}

#[derive(Deserialize)]
pub struct CartForm {
    csrf_token: String,
    sku: String,
    quantity: i32,
}

/// The cart this browser means, creating a browser cart id when it needs one.
fn owner(session: &Session) -> (CartOwner, Option<String>) {
    match (&session.identity, &session.cart_id) {
        (Some(identity), _) => (CartOwner::Account(identity.account_id), None),
        (None, Some(cart)) => (CartOwner::Browser(cart.clone()), None),
        (None, None) => {
            let cart = format!("cart_{}", crate::accounts::random_token_short());
            (CartOwner::Browser(cart.clone()), Some(cart))
        }
    }
}

pub async fn show(state: web::Data<AppState>, session: web::ReqData<Session>) -> Result<HttpResponse, PageError> {
    let cart = match owner(&session) {
        (_, Some(_)) => None, // no cart yet: nothing to show, nothing to create
        (owner, None) => Some(state.carts.get(&owner).await?),
    };
    let (lines, total) = match cart {
        Some(cart) => (
            cart.lines
                .into_iter()
                .map(|l| Line {
                    price: money(l.unit_price_minor * i64::from(l.quantity), &l.currency),
                    short: l.quantity > l.stock,
                    sku: l.sku,
                    name: l.name,
                    quantity: l.quantity,
                    stock: l.stock,
                })
                .collect(),
            money(cart.total_minor, &cart.currency),
        ),
        None => (Vec::new(), String::new()),
    };
    let page = CartPage {
        layout: Layout::new(&session, &state),
        lines,
        total,
    };
    render(&page, StatusCode::OK)
}

async fn change(state: &AppState, session: &Session, form: CartForm, replace: bool) -> Result<HttpResponse, PageError> {
    session.verify_csrf(&form.csrf_token)?;
    if !replace && form.quantity < 1 {
        return Err(ShopError::validation("quantity", "at least 1").into());
    }
    let (owner, new_cart) = owner(session);
    state.carts.put(&owner, &form.sku, form.quantity, replace).await?;
    let mut response = redirect("/cart");
    if let Some(cart) = new_cart {
        let cookie = state
            .cookies
            .cookie(CART_COOKIE, cart, Some(std::time::Duration::from_secs(30 * 86_400)));
        response
            .add_cookie(&cookie)
            .map_err(|e| ShopError::Internal(e.into()))?;
    }
    Ok(response)
}

pub async fn add(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    form: web::Form<CartForm>,
) -> Result<HttpResponse, PageError> {
    change(&state, &session, form.into_inner(), false).await
}

pub async fn update(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    form: web::Form<CartForm>,
) -> Result<HttpResponse, PageError> {
    change(&state, &session, form.into_inner(), true).await
}
