//! A browser for the page tests: a cookie jar, no automatic redirects, form posts.

use reqwest::StatusCode;

use crate::helpers::*;

pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: app.address.clone(),
        }
    }

    pub async fn read(response: reqwest::Response) -> Page {
        Page {
            status: response.status(),
            location: response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned),
            html: response.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::read(self.http.get(format!("{}{path}", self.base)).send().await.expect("get")).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .expect("post");
        Self::read(response).await
    }

    /// The CSRF token of the page's forms.
    pub async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        hidden(&page.html, "csrf_token")
    }
}

/// Signs a new shopper up in this browser; the browser's CSRF token.
pub async fn sign_up(browser: &Browser) -> String {
    let csrf = browser.csrf("/signup").await;
    let signed = browser
        .post(
            "/signup",
            &[
                ("csrf_token", &csrf),
                ("email", &unique_email()),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.html);
    csrf
}

/// Submits the checkout form of `key` with a card.
pub async fn pay(browser: &Browser, csrf: &str, key: &str, card_number: &str) -> Page {
    browser
        .post(
            "/checkout",
            &[
                ("csrf_token", csrf),
                ("checkout_key", key),
                ("card_number", card_number),
                ("exp_month", "12"),
                ("exp_year", "2099"),
                ("cvc", "123"),
                ("shipping_country", "DE"),
                ("billing_country", "DE"),
            ],
        )
        .await
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}
