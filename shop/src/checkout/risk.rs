//! The risk sidecar client: one call before capture, with a timeout and an explicit
//! fallback when the sidecar is down, slow or answers something we cannot read.

use std::time::{Duration, Instant};

use shared::{Decision, DecisionRequest, DecisionResponse};

use crate::settings::RiskSettings;

/// The decision the checkout acts on, from the sidecar or from the fallback policy.
#[derive(Debug, Clone)]
pub struct RiskOutcome {
    pub decision: Decision,
    pub source: RiskSource,
    pub response: Option<DecisionResponse>,
    pub latency: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskSource {
    Sidecar,
    /// The sidecar failed for this reason; the configured policy decided.
    Fallback(FallbackReason),
    /// Risk checks are switched off (`risk.enabled: false`).
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    Timeout,
    Unavailable,
    InvalidResponse,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Timeout => "timeout",
            FallbackReason::Unavailable => "unavailable",
            FallbackReason::InvalidResponse => "invalid_response",
        }
    }
}

impl RiskSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskSource::Sidecar => "sidecar",
            RiskSource::Fallback(_) => "fallback",
            RiskSource::Disabled => "disabled",
        }
    }
}

#[derive(Clone)]
pub struct RiskClient {
    http: reqwest::Client,
    url: String,
    enabled: bool,
    fallback_challenge_from_minor: i64,
}

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
        Ok(RiskClient {
            http,
            url: format!("{}/v1/decisions", settings.url.trim_end_matches('/')),
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
                decision: Decision::Allow,
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
                let decision = match response.decision {
                    Decision::Unknown => Decision::Challenge,
                    d => d,
                };
                RiskOutcome {
                    decision,
                    source: RiskSource::Sidecar,
                    response: Some(response),
                    latency,
                }
            }
            Err(reason) => {
                crate::metrics::risk_call(reason.as_str(), latency);
                crate::metrics::risk_fallback(reason.as_str());
                tracing::warn!(
                    reason = reason.as_str(),
                    "Risk sidecar failed; the fallback policy decides."
                );
                RiskOutcome {
                    decision: self.fallback(request.amount.value_minor),
                    source: RiskSource::Fallback(reason),
                    response: None,
                    latency,
                }
            }
        }
    }

    pub fn fallback(&self, amount_minor: i64) -> Decision {
        if amount_minor >= self.fallback_challenge_from_minor {
            Decision::Challenge
        } else {
            Decision::Allow
        }
    }

    async fn call(&self, request: &DecisionRequest) -> Result<DecisionResponse, FallbackReason> {
        let response = self.http.post(&self.url).json(request).send().await.map_err(classify)?;
        if !response.status().is_success() {
            tracing::warn!(status = response.status().as_u16(), "Risk sidecar refused the request.");
            return Err(FallbackReason::InvalidResponse);
        }
        let body = response.bytes().await.map_err(classify)?;
        let decision: DecisionResponse = serde_json::from_slice(&body).map_err(|_| FallbackReason::InvalidResponse)?;
        if decision.transaction_id != request.transaction_id || !(0.0..=1.0).contains(&decision.score) {
            return Err(FallbackReason::InvalidResponse);
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
