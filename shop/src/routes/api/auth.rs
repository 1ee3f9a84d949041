//! `POST /api/auth/{signup,login,refresh,logout}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::accounts::{Email, IssuedTokens, Password};
use crate::error::ShopError;
use crate::routes::client_ip;
use crate::session::REFRESH_COOKIE;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

fn tokens_response(
    state: &AppState,
    mut response: actix_web::HttpResponseBuilder,
    tokens: &IssuedTokens,
) -> HttpResponse {
    let [_, refresh] = state.cookies.session_cookies(tokens);
    response.cookie(refresh).json(TokenResponse {
        access_token: tokens.access_token.clone(),
        token_type: "Bearer",
        expires_in: tokens.access_ttl.as_secs(),
    })
}

pub async fn sign_up(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ShopError> {
    let body = body.into_inner();
    let email = Email::parse(&body.email)?;
    let password = Password::new_for_sign_up(body.password)?;
    let ip = client_ip(&req, &state.forwarded_for).unwrap_or_default();
    let identity = state.accounts.sign_up(email, password, &ip).await?;
    let tokens = state.accounts.issue(&identity).await?;
    Ok(tokens_response(&state, HttpResponse::Created(), &tokens))
}

pub async fn log_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ShopError> {
    let body = body.into_inner();
    let ip = client_ip(&req, &state.forwarded_for).unwrap_or_default();
    let identity = state
        .accounts
        .log_in(&body.email, Password::given(body.password), &ip)
        .await?;
    let tokens = state.accounts.issue(&identity).await?;
    Ok(tokens_response(&state, HttpResponse::Ok(), &tokens))
}

/// Rotates the refresh cookie and returns a new access token.
pub async fn refresh(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ShopError> {
    let token = req.cookie(REFRESH_COOKIE).ok_or(ShopError::Unauthenticated)?;
    let (_, tokens) = state.accounts.refresh(token.value()).await?;
    Ok(tokens_response(&state, HttpResponse::Ok(), &tokens))
}

pub async fn log_out(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ShopError> {
    if let Some(token) = req.cookie(REFRESH_COOKIE) {
        state.accounts.log_out(token.value()).await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(state.cookies.removal(REFRESH_COOKIE))
        .finish())
}
