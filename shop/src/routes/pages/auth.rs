//! Log-in, sign-up and log-out pages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, PageError, redirect, render};
use crate::accounts::{Email, Identity, Password};
use crate::error::ShopError;
use crate::routes::client_ip;
use crate::session::{ACCESS_COOKIE, CART_COOKIE, REFRESH_COOKIE, Session};
use crate::startup::AppState;

#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage {
    layout: Layout,
    heading: &'static str,
    action: &'static str,
    sign_up: bool,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct AuthForm {
    csrf_token: String,
    email: String,
    password: String,
    next: Option<String>,
}

/// Only paths on this site: never an open redirect. The value is resolved against the
/// site's origin the way a browser resolves a `Location`, and kept only if the origin
/// is still ours; browsers drop tabs and newlines and read `\\` as `/` (so
/// `/\t/evil.example` is `//evil.example`), hence no control, white-space or backslash
/// character at all.
fn safe_next(next: Option<&str>) -> String {
    const HOME: &str = "/";
    let Some(next) = next else {
        return HOME.to_owned();
    };
    if !next.starts_with('/') || next.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return HOME.to_owned();
    }
    let base = reqwest::Url::parse("http://shop.invalid/").expect("a valid base");
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        _ => HOME.to_owned(),
    }
}

fn page(
    state: &AppState,
    session: &Session,
    sign_up: bool,
    email: String,
    next: String,
    error: Option<String>,
) -> AuthPage {
    AuthPage {
        layout: Layout::new(session, state),
        heading: if sign_up { "Sign up" } else { "Log in" },
        action: if sign_up { "/signup" } else { "/login" },
        sign_up,
        email,
        next,
        error,
    }
}

pub async fn login_form(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let next = safe_next(query.next.as_deref());
    render(
        &page(&state, &session, false, String::new(), next, None),
        StatusCode::OK,
    )
}

pub async fn signup_form(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let next = safe_next(query.next.as_deref());
    render(&page(&state, &session, true, String::new(), next, None), StatusCode::OK)
}

pub async fn log_in(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    req: HttpRequest,
    form: web::Form<AuthForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    session.verify_csrf(&form.csrf_token)?;
    let next = safe_next(form.next.as_deref());
    let ip = client_ip(&req, &state.forwarded_for).unwrap_or_default();
    match state
        .accounts
        .log_in(&form.email, Password::given(form.password), &ip)
        .await
    {
        Ok(identity) => signed_in(&state, &session, &identity, &next).await,
        Err(e @ (ShopError::BadCredentials | ShopError::RateLimited { .. })) => {
            let status = e.status_code();
            render(
                &page(&state, &session, false, form.email, next, Some(e.to_string())),
                status,
            )
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn sign_up(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    req: HttpRequest,
    form: web::Form<AuthForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    session.verify_csrf(&form.csrf_token)?;
    let next = safe_next(form.next.as_deref());
    let ip = client_ip(&req, &state.forwarded_for).unwrap_or_default();
    let created = async {
        let email = Email::parse(&form.email)?;
        let password = Password::new_for_sign_up(form.password)?;
        state.accounts.sign_up(email, password, &ip).await
    }
    .await;
    match created {
        Ok(identity) => signed_in(&state, &session, &identity, &next).await,
        Err(e @ (ShopError::Validation { .. } | ShopError::EmailTaken | ShopError::RateLimited { .. })) => {
            let status = e.status_code();
            render(
                &page(&state, &session, true, form.email, next, Some(e.to_string())),
                status,
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Issues the session cookies and brings the browser's cart along.
async fn signed_in(
    state: &AppState,
    session: &Session,
    identity: &Identity,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let tokens = state.accounts.issue(identity).await?;
    if let Some(cart) = &session.cart_id {
        state.carts.merge_into_account(cart, identity.account_id).await?;
    }
    let mut response = redirect(next);
    for cookie in state.cookies.session_cookies(&tokens) {
        response
            .add_cookie(&cookie)
            .map_err(|e| ShopError::Internal(e.into()))?;
    }
    response
        .add_cookie(&state.cookies.removal(CART_COOKIE))
        .map_err(|e| ShopError::Internal(e.into()))?;
    Ok(response)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: String,
}

pub async fn log_out(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    req: HttpRequest,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session.verify_csrf(&form.csrf_token)?;
    if let Some(token) = req.cookie(REFRESH_COOKIE) {
        state.accounts.log_out(token.value()).await?;
    }
    let mut response = redirect("/");
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        response
            .add_cookie(&state.cookies.removal(name))
            .map_err(|e| ShopError::Internal(e.into()))?;
    }
    Ok(response)
}
