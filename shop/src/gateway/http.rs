//! The gateway over HTTP: tokens, authorisations and their captures, voids and refunds,
//! each with its idempotency key, a timeout, and errors the checkout can act on.

use std::time::Duration;

use anyhow::anyhow;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{Authorisation, CardInput, CardToken, GatewayError, GatewayEvent, GatewayFuture, PaymentGateway};
use crate::settings::GatewaySettings;

pub struct HttpGateway {
    http: reqwest::Client,
    url: String,
    api_key: SecretString,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
}

#[derive(Deserialize)]
struct AuthorisationBody {
    authorisation_id: String,
    status: String,
    decline_code: Option<String>,
}

impl HttpGateway {
    pub fn new(settings: &GatewaySettings) -> anyhow::Result<HttpGateway> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(HttpGateway {
            http,
            url: settings.url.trim_end_matches('/').to_owned(),
            api_key: settings.api_key.clone(),
        })
    }

    fn post(&self, path: &str, idempotency_key: Option<&str>) -> reqwest::RequestBuilder {
        let mut request = self.http.post(format!("{}{path}", self.url));
        if !self.api_key.expose_secret().is_empty() {
            request = request.bearer_auth(self.api_key.expose_secret());
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request
    }

    async fn settle(&self, operation: &str, key: &str, authorisation_id: &str) -> Result<(), GatewayError> {
        let path = format!("/v1/authorisations/{authorisation_id}/{operation}");
        let response = self.post(&path, Some(key)).send().await.map_err(unavailable)?;
        match response.status() {
            StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(GatewayError::UnknownAuthorisation),
            StatusCode::CONFLICT => {
                #[derive(Deserialize)]
                struct Conflict {
                    status: String,
                }
                let body: Conflict = response.json().await.map_err(protocol)?;
                Err(GatewayError::WrongState(body.status))
            }
            status => Err(unexpected(status)),
        }
    }
}

fn unavailable(e: reqwest::Error) -> GatewayError {
    GatewayError::Unavailable(anyhow::Error::new(e))
}

fn protocol(e: reqwest::Error) -> GatewayError {
    GatewayError::Protocol(anyhow::Error::new(e))
}

fn unexpected(status: StatusCode) -> GatewayError {
    if status.is_server_error() {
        GatewayError::Unavailable(anyhow!("gateway answered {status}"))
    } else {
        GatewayError::Protocol(anyhow!("gateway answered {status}"))
    }
}

/// Our words for the gateway's refusal codes: its own text never reaches a shopper.
fn card_problem(code: &str) -> &'static str {
    match code {
        "invalid_expiry" => "the expiry month must be 1 to 12",
        "expired_card" => "the card has expired",
        "invalid_cvc" => "the security code must be 3 or 4 digits",
        _ => "the card number is not valid",
    }
}

impl PaymentGateway for HttpGateway {
    fn tokenise<'a>(&'a self, card: CardInput) -> GatewayFuture<'a, CardToken> {
        Box::pin(async move {
            let body = json!({
                "number": card.number,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "cvc": card.cvc,
            });
            drop(card);
            let response = self.post("/v1/tokens", None).json(&body).send().await;
            drop(body);
            let response = response.map_err(unavailable)?;
            match response.status() {
                StatusCode::CREATED | StatusCode::OK => response.json().await.map_err(protocol),
                StatusCode::UNPROCESSABLE_ENTITY => {
                    let body: ErrorBody = response.json().await.map_err(protocol)?;
                    Err(GatewayError::InvalidCard(card_problem(&body.error.code)))
                }
                status => Err(unexpected(status)),
            }
        })
    }

    fn authorise<'a>(
        &'a self,
        idempotency_key: &'a str,
        token: &'a str,
        amount_minor: i64,
        currency: &'a str,
    ) -> GatewayFuture<'a, Authorisation> {
        Box::pin(async move {
            let body = json!({"token": token, "amount_minor": amount_minor, "currency": currency});
            let response = self
                .post("/v1/authorisations", Some(idempotency_key))
                .json(&body)
                .send()
                .await
                .map_err(unavailable)?;
            if response.status() != StatusCode::OK {
                return Err(unexpected(response.status()));
            }
            let body: AuthorisationBody = response.json().await.map_err(protocol)?;
            Ok(match (body.status.as_str(), body.decline_code) {
                ("declined", code) => Authorisation::Declined {
                    code: code.unwrap_or_else(|| "declined".to_owned()),
                },
                _ => Authorisation::Approved {
                    authorisation_id: body.authorisation_id,
                },
            })
        })
    }

    fn capture<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()> {
        Box::pin(self.settle("capture", idempotency_key, authorisation_id))
    }

    fn void<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()> {
        Box::pin(self.settle("void", idempotency_key, authorisation_id))
    }

    fn refund<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()> {
        Box::pin(self.settle("refund", idempotency_key, authorisation_id))
    }

    fn events<'a>(&'a self, after: i64) -> GatewayFuture<'a, Vec<GatewayEvent>> {
        Box::pin(async move {
            #[derive(Deserialize)]
            struct Feed {
                events: Vec<GatewayEvent>,
            }
            let mut request = self
                .http
                .get(format!("{}/v1/events", self.url))
                .query(&[("after", after)]);
            if !self.api_key.expose_secret().is_empty() {
                request = request.bearer_auth(self.api_key.expose_secret());
            }
            let response = request.send().await.map_err(unavailable)?;
            if response.status() != StatusCode::OK {
                return Err(unexpected(response.status()));
            }
            let feed: Feed = response.json().await.map_err(protocol)?;
            Ok(feed.events)
        })
    }
}
