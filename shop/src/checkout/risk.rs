//! The risk sidecar client: one call before the authorisation, with a timeout and an
//! explicit fallback when the sidecar is down, slow, rate-limiting us or answers
//! something we cannot read (408 is a time-out too). A refusal of our request (any
//! other 4xx) is our bug, not the sidecar's failure: it never allows a payment; the
//! order is held for review.

use std::time::{Duration, Instant};

use shared::{Decision, DecisionRequest, DecisionResponse};

use crate::settings::RiskSettings;

/// What the checkout does with a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Challenge,
    Block,
    /// Authorise and hold for a person to decide: nothing is captured.
    Review,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Challenge => "challenge",
            Verdict::Block => "block",
            Verdict::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Some(match s {
            "allow" => Verdict::Allow,
            "challenge" => Verdict::Challenge,
            "block" => Verdict::Block,
            "review" => Verdict::Review,
            _ => return None,
        })
    }
}

/// The decision the checkout acts on, from the sidecar or from the fallback policy.
#[derive(Debug, Clone)]
pub struct RiskOutcome {
    pub verdict: Verdict,
    pub source: RiskSource,
    pub response: Option<DecisionResponse>,
    pub latency: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskSource {
    Sidecar,
    /// The sidecar failed for this reason; the configured policy decided.
    Fallback(FallbackReason),
    /// The sidecar refused our request with this 4xx status: held for review.
    Refused(u16),
    /// Risk checks are switched off (`risk.enabled: false`).
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    Timeout,
    Unavailable,
    RateLimited,
    InvalidResponse,
}

impl FallbackReason {
    pub const ALL: [FallbackReason; 4] = [
        FallbackReason::Timeout,
        FallbackReason::Unavailable,
        FallbackReason::RateLimited,
        FallbackReason::InvalidResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Timeout => "timeout",
            FallbackReason::Unavailable => "unavailable",
            FallbackReason::RateLimited => "rate_limited",
            FallbackReason::InvalidResponse => "invalid_response",
        }
    }
}

impl RiskSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskSource::Sidecar => "sidecar",
            RiskSource::Fallback(_) => "fallback",
            RiskSource::Refused(_) => "refused",
            RiskSource::Disabled => "disabled",
        }
    }
}

/// Why a call gave no decision.
enum CallError {
    Failed(FallbackReason),
    Refused(u16),
}

impl From<FallbackReason> for CallError {
    fn from(reason: FallbackReason) -> CallError {
        CallError::Failed(reason)
    }
}

#[derive(Clone)]
pub struct RiskClient {
    http: reqwest::Client,
    /// For reports, off the checkout's path: the sidecar may wait for its log to catch up.
    reports: reqwest::Client,
    base: String,
    url: String,
    enabled: bool,
    fallback_challenge_from_minor: i64,
}

/// What became of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Accepted(u16),
    /// Refused for good: the sidecar knows no such decision (404), or our body is wrong.
    Refused(u16),
    /// Try again later; 0 when no answer came.
    Failed(u16),
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Accepted(_) => "accepted",
            Delivery::Refused(_) => "refused",
            Delivery::Failed(_) => "failed",
        }
    }
}

/// The sidecar may hold a label while its decision is still queued for the log.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

impl RiskClient {
    pub fn new(settings: &RiskSettings) -> anyhow::Result<RiskClient> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout())
            // Loopback to a sidecar in the same pod: keep connections warm, no proxies.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        let reports = reqwest::Client::builder()
            .timeout(REPORT_TIMEOUT)
            .connect_timeout(settings.timeout())
            .no_proxy()
            .build()?;
        let base = settings.url.trim_end_matches('/').to_owned();
        Ok(RiskClient {
            http,
            reports,
            url: format!("{base}/v1/decisions"),
            base,
            enabled: settings.enabled,
            fallback_challenge_from_minor: settings.fallback_challenge_from_minor,
        })
    }

    /// Never fails: a sidecar failure becomes the fallback decision, counted.
    #[tracing::instrument(name = "Ask the risk sidecar", skip_all, fields(transaction_id = %request.transaction_id))]
    pub async fn decide(&self, request: &DecisionRequest) -> RiskOutcome {
        let started = Instant::now();
        if !self.enabled {
            return RiskOutcome {
                verdict: Verdict::Allow,
                source: RiskSource::Disabled,
                response: None,
                latency: started.elapsed(),
            };
        }
        let result = self.call(request).await;
        let latency = started.elapsed();
        match result {
            Ok(response) => {
                crate::metrics::risk_call("ok", latency);
                // A decision this build does not know is treated as the safe middle.
                let verdict = match response.decision {
                    Decision::Allow => Verdict::Allow,
                    Decision::Block => Verdict::Block,
                    Decision::Challenge | Decision::Unknown => Verdict::Challenge,
                };
                RiskOutcome {
                    verdict,
                    source: RiskSource::Sidecar,
                    response: Some(response),
                    latency,
                }
            }
            Err(CallError::Refused(status)) => {
                crate::metrics::risk_call("refused", latency);
                crate::metrics::risk_refusal(status);
                tracing::error!(
                    status,
                    transaction_id = %request.transaction_id,
                    "The risk sidecar refused our request: a shop bug. The order is held for review."
                );
                RiskOutcome {
                    verdict: Verdict::Review,
                    source: RiskSource::Refused(status),
                    response: None,
                    latency,
                }
            }
            Err(CallError::Failed(reason)) => {
                crate::metrics::risk_call(reason.as_str(), latency);
                crate::metrics::risk_fallback(reason.as_str());
                tracing::warn!(
                    reason = reason.as_str(),
                    "Risk sidecar failed; the fallback policy decides."
                );
                RiskOutcome {
                    verdict: self.fallback(request.amount.value_minor),
                    source: RiskSource::Fallback(reason),
                    response: None,
                    latency,
                }
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Sends one report (`path` below the sidecar's base, e.g. `/v1/feedback`).
    pub async fn report(&self, path: &str, body: &serde_json::Value) -> Delivery {
        let sent = self
            .reports
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await;
        let status = match sent {
            Ok(response) => response.status(),
            Err(_) => return Delivery::Failed(0),
        };
        let code = status.as_u16();
        if status.is_success() {
            Delivery::Accepted(code)
        } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            Delivery::Failed(code)
        } else {
            Delivery::Refused(code)
        }
    }

    pub fn fallback(&self, amount_minor: i64) -> Verdict {
        if amount_minor >= self.fallback_challenge_from_minor {
            Verdict::Challenge
        } else {
            Verdict::Allow
        }
    }

    async fn call(&self, request: &DecisionRequest) -> Result<DecisionResponse, CallError> {
        let response = self.http.post(&self.url).json(request).send().await.map_err(classify)?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(FallbackReason::RateLimited.into());
        }
        // 408: our request did not reach it in time (a loaded host), not a refusal of it.
        if status == reqwest::StatusCode::REQUEST_TIMEOUT {
            return Err(FallbackReason::Timeout.into());
        }
        if status.is_client_error() {
            return Err(CallError::Refused(status.as_u16()));
        }
        if !status.is_success() {
            tracing::warn!(status = status.as_u16(), "Risk sidecar failed.");
            return Err(FallbackReason::Unavailable.into());
        }
        let body = response.bytes().await.map_err(classify)?;
        let decision: DecisionResponse = serde_json::from_slice(&body).map_err(|_| FallbackReason::InvalidResponse)?;
        if decision.transaction_id != request.transaction_id || !(0.0..=1.0).contains(&decision.score) {
            return Err(FallbackReason::InvalidResponse.into());
        }
        Ok(decision)
    }
}

fn classify(e: reqwest::Error) -> FallbackReason {
    if e.is_timeout() {
        FallbackReason::Timeout
    } else if e.is_connect() || e.is_request() {
        FallbackReason::Unavailable
    } else {
        FallbackReason::InvalidResponse
    }
}
