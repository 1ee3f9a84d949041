//! Routes: the pages, the JSON API under `/api`, and operations endpoints.

mod api;
mod forwarded;
mod health;
mod pages;

pub use forwarded::{ForwardedFor, client_ip};

pub use pages::PageError;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::error::ShopError;

const JSON_LIMIT: usize = 64 * 1024;
const FORM_LIMIT: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(|e, _| {
        use actix_web::error::JsonPayloadError;
        match e {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ShopError::PayloadTooLarge {
                    limit_bytes: JSON_LIMIT,
                }
                .into()
            }
            e => ShopError::validation("body", body_problem("JSON body", &e.to_string())).into(),
        }
    }))
    .app_data(web::FormConfig::default().limit(FORM_LIMIT).error_handler(|e, _| {
        use actix_web::error::UrlencodedError;
        match e {
            UrlencodedError::Overflow { .. } => PageError(ShopError::PayloadTooLarge {
                limit_bytes: FORM_LIMIT,
            })
            .into(),
            e => PageError(ShopError::validation("form", body_problem("form", &e.to_string()))).into(),
        }
    }))
    .app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ShopError::validation("query", body_problem("query", &e.to_string())).into()),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/metrics", web::get().to(health::metrics))
    .route("/static/shop.css", web::get().to(pages::stylesheet))
    .service(web::scope("/api").configure(api::configure))
    .service(
        web::scope("")
            .wrap(from_fn(crate::session::page_session))
            .configure(pages::configure),
    );
}

/// Says what is wrong with a body without quoting it: serde's messages quote the
/// offending value ("invalid type: integer `4242…`"), which may be a card number.
/// Only missing or duplicate field names, which are ours, are passed on.
fn body_problem(what: &str, serde_message: &str) -> String {
    let named = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| serde_message.find(prefix).map(|at| &serde_message[at..]))
        .and_then(|m| {
            m.find('`')
                .and_then(|open| m[open + 1..].find('`').map(|close| &m[..open + 2 + close]))
        });
    match named {
        Some(problem) => format!("invalid {what}: {problem}"),
        None => format!("invalid {what}: a value is missing, of the wrong type, or malformed"),
    }
}

/// Money for people: `12.34 EUR`.
pub fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", minor / 100, minor % 100)
}

// In a sibling file: the tests hold card numbers, and a search for card numbers
// outside tests must come back empty.
#[cfg(test)]
mod tests;
