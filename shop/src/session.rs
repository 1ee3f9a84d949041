//! The browser session of the pages: device id, CSRF seed, and the signed-in shopper
//! (access-token cookie, renewed from the refresh cookie when it has expired).

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::accounts::{Identity, IssuedTokens};
use crate::error::ShopError;
use crate::startup::AppState;

pub const ACCESS_COOKIE: &str = "shop_access";
pub const REFRESH_COOKIE: &str = "shop_refresh";
pub const DEVICE_COOKIE: &str = "shop_device";
pub const CSRF_COOKIE: &str = "shop_csrf";
pub const CART_COOKIE: &str = "shop_cart";

/// What a page handler knows of the browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub identity: Option<Identity>,
    pub device_id: String,
    /// The value every form must send back as `csrf_token`.
    pub csrf_token: String,
    /// The browser's anonymous cart, if it has one.
    pub cart_id: Option<String>,
}

impl Session {
    pub fn verify_csrf(&self, submitted: &str) -> Result<(), ShopError> {
        if submitted.as_bytes().ct_eq(self.csrf_token.as_bytes()).into() {
            Ok(())
        } else {
            Err(ShopError::Csrf)
        }
    }
}

/// Cookie settings shared by every cookie the shop sets.
#[derive(Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn cookie(self, name: &'static str, value: String, max_age: Option<std::time::Duration>) -> Cookie<'static> {
        let mut cookie = Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            // Lax: sent when a shopper follows a link to the shop, never on a
            // cross-site POST (CSRF tokens protect forms as well).
            .same_site(SameSite::Lax)
            .finish();
        if let Some(age) = max_age {
            cookie.set_max_age(CookieDuration::seconds(age.as_secs() as i64));
        }
        cookie
    }

    pub fn session_cookies(self, tokens: &IssuedTokens) -> [Cookie<'static>; 2] {
        [
            self.cookie(ACCESS_COOKIE, tokens.access_token.clone(), Some(tokens.access_ttl)),
            self.cookie(REFRESH_COOKIE, tokens.refresh_token.clone(), Some(tokens.refresh_ttl)),
        ]
    }

    pub fn removal(self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.cookie(name, String::new(), None);
        cookie.make_removal();
        cookie
    }
}

/// HMAC of the browser's CSRF seed: a form token an attacker's page can neither read
/// nor compute (signed double-submit cookie, as OWASP describes it).
pub fn csrf_token(secret: &[u8], seed: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"csrf:");
    mac.update(seed.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The device cookie carries `<id>.<signature>`: an id the shop issued, which a
/// shopper can keep or delete but not choose.
fn device_signature(secret: &[u8], id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"device:");
    mac.update(id.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

fn signed_device(secret: &[u8], id: &str) -> String {
    format!("{id}.{}", device_signature(secret, id))
}

/// The id of a device cookie the shop signed; none for anything else.
fn verified_device(secret: &[u8], value: &str) -> Option<String> {
    let (id, signature) = value.rsplit_once('.')?;
    let expected = device_signature(secret, id);
    let genuine: bool = signature.as_bytes().ct_eq(expected.as_bytes()).into();
    (genuine && valid_id(id)).then(|| id.to_owned())
}

fn new_device_id() -> String {
    format!("dev_{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn valid_id(value: &str) -> bool {
    (16..=80).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Middleware for the pages: reads or creates the device and CSRF cookies and resolves
/// the shopper, then appends the cookies it created unless the handler set its own.
pub async fn page_session(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let policy = state.cookies;
    let mut new_cookies: Vec<Cookie<'static>> = Vec::new();
    let mut cookie_or_new = |name: &'static str, prefix: &str, days: u64| match req
        .cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| valid_id(v))
    {
        Some(value) => value,
        None => {
            let value = format!("{prefix}{}", crate::accounts::random_token_short());
            let age = (days > 0).then(|| std::time::Duration::from_secs(days * 86_400));
            new_cookies.push(policy.cookie(name, value.clone(), age));
            value
        }
    };
    let csrf_seed = cookie_or_new(CSRF_COOKIE, "csrf_", 0);
    let secret = state.csrf_secret.as_bytes();
    let device_id = match req
        .cookie(DEVICE_COOKIE)
        .and_then(|c| verified_device(secret, c.value()))
    {
        Some(id) => id,
        None => {
            let id = new_device_id();
            let two_years = std::time::Duration::from_secs(730 * 86_400);
            new_cookies.push(policy.cookie(DEVICE_COOKIE, signed_device(secret, &id), Some(two_years)));
            id
        }
    };
    let cart_id = req
        .cookie(CART_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| valid_id(v));

    let mut identity = req
        .cookie(ACCESS_COOKIE)
        .and_then(|c| state.accounts.tokens.verify_access(c.value()));
    if identity.is_none()
        && let Some(refresh) = req.cookie(REFRESH_COOKIE)
    {
        match state.accounts.refresh(refresh.value()).await {
            Ok((id, tokens)) => {
                identity = Some(id);
                new_cookies.extend(policy.session_cookies(&tokens));
            }
            // Expired, revoked or lost a race: browse signed out. A database outage
            // also lands here; the page itself will say so if it needs the database.
            Err(e) => tracing::debug!(error = %e, "Session not renewed."),
        }
    }
    req.extensions_mut().insert(Session {
        identity,
        device_id,
        csrf_token: csrf_token(state.csrf_secret.as_bytes(), &csrf_seed),
        cart_id,
    });
    let mut res = next.call(req).await?;
    let set_by_handler: Vec<String> = res.response().cookies().map(|c| c.name().to_owned()).collect();
    for cookie in new_cookies {
        if !set_by_handler.iter().any(|n| n == cookie.name()) {
            res.response_mut().add_cookie(&cookie)?;
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_device_cookies_the_shop_signed_are_believed() {
        let id = new_device_id();
        let cookie = signed_device(b"secret-one", &id);
        assert_eq!(verified_device(b"secret-one", &cookie), Some(id.clone()));
        assert_eq!(verified_device(b"secret-two", &cookie), None);
        assert_eq!(verified_device(b"secret-one", &id), None, "unsigned");
        let forged = format!("1234567890123456.{}", &cookie[cookie.len() - 32..]);
        assert_eq!(verified_device(b"secret-one", &forged), None);
    }

    #[test]
    fn csrf_tokens_depend_on_seed_and_secret() {
        let a = csrf_token(b"secret-one", "csrf_seed_1");
        assert_eq!(a, csrf_token(b"secret-one", "csrf_seed_1"));
        assert_ne!(a, csrf_token(b"secret-one", "csrf_seed_2"));
        assert_ne!(a, csrf_token(b"secret-two", "csrf_seed_1"));
        let session = Session {
            identity: None,
            device_id: "dev".into(),
            csrf_token: a.clone(),
            cart_id: None,
        };
        assert!(session.verify_csrf(&a).is_ok());
        assert!(session.verify_csrf("").is_err());
        assert!(session.verify_csrf(&a[..31]).is_err());
    }
}
