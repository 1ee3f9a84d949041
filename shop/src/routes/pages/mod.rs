//! Server-rendered pages (askama templates, escaped by default). Every form carries the
//! session's CSRF token; a page that needs a signed-in shopper redirects to log-in.

mod auth;
mod cart;
mod catalogue;
mod checkout;
mod orders;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use crate::error::ShopError;
use crate::session::Session;
use crate::startup::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(catalogue::index))
        .route("/products/{sku}", web::get().to(catalogue::product))
        .route("/cart", web::get().to(cart::show))
        .route("/cart/add", web::post().to(cart::add))
        .route("/cart/update", web::post().to(cart::update))
        .route("/checkout", web::get().to(checkout::form))
        .route("/checkout", web::post().to(checkout::submit))
        .route("/orders", web::get().to(orders::list))
        .route("/orders/{order_id}", web::get().to(orders::show))
        .route("/orders/{order_id}/verify", web::get().to(orders::verify_form))
        .route("/orders/{order_id}/verify", web::post().to(orders::verify))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::log_in))
        .route("/signup", web::get().to(auth::signup_form))
        .route("/signup", web::post().to(auth::sign_up))
        .route("/logout", web::post().to(auth::log_out))
        .route("/dev/mailbox", web::get().to(orders::mailbox))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(PageError(ShopError::NotFound))
        }));
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../../static/shop.css"))
}

/// What the layout shows on every page.
pub struct Layout {
    pub user: Option<String>,
    pub csrf: String,
    pub mailbox: bool,
}

impl Layout {
    pub fn new(session: &Session, state: &AppState) -> Layout {
        Layout {
            user: session.identity.as_ref().map(|i| i.email.clone()),
            csrf: session.csrf_token.clone(),
            mailbox: state.mailbox_enabled,
        }
    }
}

pub fn render(template: &impl Template, status: StatusCode) -> Result<HttpResponse, PageError> {
    let body = template
        .render()
        .map_err(|e| PageError(ShopError::Internal(anyhow::Error::new(e).context("template"))))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", to)).finish()
}

/// Sends a signed-out visitor to log-in, coming back here afterwards.
pub fn login_redirect(back_to: &str) -> HttpResponse {
    redirect(&format!("/login?next={}", urlencode(back_to)))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A [`ShopError`] rendered as an HTML page.
#[derive(Debug)]
pub struct PageError(pub ShopError);

impl From<ShopError> for PageError {
    fn from(e: ShopError) -> PageError {
        PageError(e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    message: String,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        if matches!(self.0, ShopError::Unauthenticated) {
            return redirect("/login");
        }
        let heading = match self.0 {
            ShopError::NotFound => "Page not found",
            ShopError::Unavailable(_) => "Temporarily unavailable",
            ShopError::Internal(_) => "Something went wrong",
            ShopError::Csrf => "This form has expired",
            ShopError::RateLimited { .. } => "Too many attempts",
            _ => "That did not work",
        };
        let page = ErrorPage {
            // The error page never needs the session: it has no forms but log-out,
            // which a signed-in shopper can reach from any other page.
            layout: Layout {
                user: None,
                csrf: String::new(),
                mailbox: false,
            },
            heading,
            message: self.0.public_message(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.0.retry_after_secs() {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response
            .content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_else(|_| heading.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_are_encoded() {
        assert_eq!(urlencode("/orders/ord_1?x=1&y"), "/orders/ord_1%3Fx%3D1%26y");
    }
}
