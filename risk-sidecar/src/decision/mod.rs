//! Making one decision: orchestration only. Parsing, features and policy are pure
//! modules beside this one; the store and the model are the IO.

pub mod features;
pub mod input;
pub mod pan;
pub mod policy;
pub mod screen;
pub mod stored;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use shared::{DecisionResponse, Degraded, ReasonCode};

use self::features::FeatureContext;
use self::input::DecisionInput;
use self::policy::Policy;
use crate::decision_log::LogEntry;
use crate::error::ApiError;
use crate::model::OnnxModel;
use crate::store::{StoreError, VelocityStore};

pub struct DecisionService {
    pub model: ArcSwap<OnnxModel>,
    /// A candidate scored beside the live model on every decision, never deciding.
    pub shadow: ArcSwapOption<OnnxModel>,
    /// Empty until a policy file has loaded: decisions answer 503 `not_ready`.
    pub policy: ArcSwapOption<Policy>,
    pub features: FeatureContext,
    /// `None`: no decision log is configured.
    pub log: Option<crate::decision_log::DecisionLog>,
    budget: Duration,
}

// === impl DecisionService ===

impl DecisionService {
    pub fn new(
        model: OnnxModel,
        policy: Option<Policy>,
        features: FeatureContext,
        log: Option<crate::decision_log::DecisionLog>,
        budget: Duration,
    ) -> DecisionService {
        DecisionService {
            model: ArcSwap::from_pointee(model),
            shadow: ArcSwapOption::empty(),
            policy: ArcSwapOption::new(policy.map(Arc::new)),
            features,
            log,
            budget,
        }
    }

    #[tracing::instrument(name = "Decide", skip_all)]
    /// `store` is the calling worker's: each actix worker keeps its own Redis client so a
    /// decision's IO never hops threads.
    /// The response body: a stored decision is returned byte for byte, so a retry never
    /// re-serialises. `with_features` adds the input row (see `DecisionResponse::features`).
    pub async fn decide(
        &self,
        store: &VelocityStore,
        input: DecisionInput,
        with_features: bool,
    ) -> Result<String, ApiError> {
        let start = Instant::now();
        let policy = self.policy.load_full().ok_or(ApiError::NotReady)?;
        let email_key = self.features.email_key(&input);
        let payment_key = stored::payment_key(&input);
        let decision_id = format!("dec_{}", ulid::Ulid::new());
        let reservation = stored::pending(&decision_id, &payment_key);
        let mut observation = self.features.observation(&input, email_key.as_deref());
        observation.reservation = Some(&reservation);
        // The store bounds its call by the budget itself: one timer, not a second around it.
        observation.deadline = Some((start + self.budget).into());

        let mut degraded = Vec::new();
        let observe_start = Instant::now();
        let observed = counted(store.observe(&observation).await, "observe");
        crate::metrics::velocity_store(store.state().as_str(), observe_start.elapsed());
        // Whether this request holds the transaction's reservation: then its decision
        // replaces it without a wait; otherwise it is stored first-come (SET NX).
        let reserved = observed.is_ok();
        let snapshot = match observed {
            Ok(observed) => {
                if let Some(record) = observed.stored_decision {
                    // A retry: the same decision, counted once (the store saw the id
                    // before), unless the payment itself changed.
                    return Box::pin(self.answer_retry(store, start, &input.transaction_id, &record, &payment_key))
                        .await;
                }
                Some(observed.snapshot)
            }
            Err(_) => {
                crate::metrics::degraded(Degraded::VelocityUnavailable);
                degraded.push(Degraded::VelocityUnavailable);
                None
            }
        };

        let features = self.features.compute(&input, snapshot.as_ref());
        // An Arc, not a guard: it lives across the store_decision await below.
        let model = self.model.load_full();
        let inference_start = Instant::now();
        let assessment = model.assess(&features).map_err(|e| ApiError::Internal(e.into()))?;
        crate::metrics::inference(inference_start.elapsed());
        if let Some(anomaly) = assessment.anomaly {
            crate::metrics::anomaly_score(anomaly);
        }
        let score = assessment.fraud;
        let mut verdict = policy.decide(score, &features, snapshot.is_some(), model.card.thresholds);
        self.shadow(&policy, &features, snapshot.is_some(), &input, verdict.decision);
        explain(&model, &features, assessment.anomaly, &mut verdict.reasons);

        let mut response = DecisionResponse {
            decision_id,
            transaction_id: input.transaction_id.clone(),
            decision: verdict.decision,
            score: round4(score),
            reasons: verdict.reasons,
            model_version: model.version().to_owned(),
            policy_version: policy.version.clone(),
            degraded,
            evaluated_in_us: 0,
            features: None,
        };
        response.evaluated_in_us = start.elapsed().as_micros() as u64;
        let to_json = |r: &DecisionResponse| serde_json::to_string(r).map_err(|e| ApiError::Internal(e.into()));
        let json = to_json(&response)?;
        let record = stored::encode(&payment_key, &json);
        let stored = if reserved {
            store.finish_decision(&input.transaction_id, record);
            Ok(None)
        } else {
            // Boxed, as the rare paths below: inline, their futures (fred's are kilobytes)
            // sat in every decision's, which actix moves.
            let first_come = Box::pin(self.within(
                start,
                store.store_decision(&input.transaction_id, &record),
                "store_decision",
            ))
            .await;
            match first_come {
                // The reservation there is this request's own: its script ran though its
                // answer timed out. Replace it, as a reserved request does.
                Ok(Some(first)) if stored::pending_parts(&first).is_some_and(|(id, _)| id == response.decision_id) => {
                    store.finish_decision(&input.transaction_id, record);
                    Ok(None)
                }
                other => other,
            }
        };
        crate::metrics::decision(response.decision, start.elapsed());
        let body = match stored {
            Ok(None) if with_features => {
                response.features = Some(features.by_name());
                let body = to_json(&response)?;
                response.features = None;
                body
            }
            Ok(None) => json,
            // Lost a race with a concurrent retry: answer with the decision stored first.
            Ok(Some(first)) => {
                return Box::pin(self.answer_retry(store, start, &input.transaction_id, &first, &payment_key)).await;
            }
            Err(_) => {
                response.degraded.push(Degraded::IdempotencyUnavailable);
                response.features = with_features.then(|| features.by_name());
                let body = to_json(&response)?;
                response.features = None;
                body
            }
        };
        // A new decision (a retry returned above): to the log, off the answer's path.
        if let Some(log) = &self.log {
            log.record(LogEntry::new(response, features, input));
        }
        Ok(body)
    }

    /// What the shadow model would have decided under the same policy: measured and
    /// logged at debug level, never answered.
    fn shadow(
        &self,
        policy: &Policy,
        features: &features::FeatureVector,
        velocity_available: bool,
        input: &DecisionInput,
        live: shared::Decision,
    ) {
        let Some(shadow) = self.shadow.load_full() else { return };
        match shadow.score(features) {
            Ok(score) => {
                let decision = policy
                    .decide(score, features, velocity_available, shadow.card.thresholds)
                    .decision;
                crate::metrics::shadow_decision(decision, decision == live);
                tracing::debug!(
                    transaction_id = %input.transaction_id,
                    shadow_version = %shadow.version(),
                    score,
                    decision = decision.as_str(),
                    "Shadow model scored."
                );
            }
            Err(e) => tracing::warn!(error = %e, "Shadow model failed to score."),
        }
    }

    pub async fn get(&self, store: &VelocityStore, transaction_id: &str) -> Result<String, ApiError> {
        let found = match store.get_decision(transaction_id).await {
            Ok(Some(record)) if stored::pending_key(&record).is_some() => {
                // Decided a moment ago and still being stored: wait for it.
                self.await_decision(store, Instant::now(), transaction_id)
                    .await
                    .map(Some)
            }
            other => other,
        };
        match found {
            Ok(Some(record)) => Ok(stored::decode(&record).response_json.to_owned()),
            Ok(None) => Err(ApiError::NotFound("no decision for this transaction id")),
            Err(e) => {
                crate::metrics::store_error("get_decision", e.as_label());
                Err(ApiError::StoreUnavailable(e))
            }
        }
    }

    /// The answer to a retry from the record its reservation found: the stored decision,
    /// 409 for a changed payment, or, while the first request is still deciding, its
    /// decision once stored (a second trip, only for a retry racing the first request).
    async fn answer_retry(
        &self,
        store: &VelocityStore,
        start: Instant,
        transaction_id: &str,
        record: &str,
        payment_key: &str,
    ) -> Result<String, ApiError> {
        match stored::pending_key(record) {
            Some(key) if key != payment_key => {
                crate::metrics::idempotency_mismatch();
                Err(ApiError::IdempotencyMismatch)
            }
            Some(_) => match self.await_decision(store, start, transaction_id).await {
                Ok(record) => retry_answer(&record, payment_key),
                Err(e) => {
                    crate::metrics::store_error("await_decision", e.as_label());
                    Err(ApiError::StoreUnavailable(e))
                }
            },
            None => retry_answer(record, payment_key),
        }
    }

    /// Polls until the reserved decision is stored, within the budget (and at least a
    /// few polls: the first request answers within its own budget).
    async fn await_decision(
        &self,
        store: &VelocityStore,
        start: Instant,
        transaction_id: &str,
    ) -> Result<String, StoreError> {
        let deadline = start + self.budget.max(Duration::from_millis(20));
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            match store.get_decision(transaction_id).await? {
                Some(record) if stored::pending_key(&record).is_none() => return Ok(record),
                // The reservation expired with no decision: the first request failed.
                None => return Err(StoreError::Pending),
                Some(_) if Instant::now() >= deadline => return Err(StoreError::Pending),
                Some(_) => {}
            }
        }
    }

    /// Runs a store call inside what is left of the decision's budget, and counts its
    /// failure. Every failure degrades the decision; none fails it.
    async fn within<T>(
        &self,
        start: Instant,
        call: impl Future<Output = Result<T, StoreError>>,
        op: &'static str,
    ) -> Result<T, StoreError> {
        let left = self.budget.saturating_sub(start.elapsed());
        let result = tokio::time::timeout(left, call)
            .await
            .unwrap_or(Err(StoreError::Timeout));
        counted(result, op)
    }
}

/// A store call's result, its failure counted and logged.
fn counted<T>(result: Result<T, StoreError>, op: &'static str) -> Result<T, StoreError> {
    if let Err(e) = &result {
        crate::metrics::store_error(op, e.as_label());
        tracing::debug!(error = %e, op, "Velocity store call failed; deciding without it.");
    }
    result
}

/// Swaps in a new model from its source: loaded off the workers, checked (feature list,
/// a test row), then stored atomically; in-flight decisions finish on the model they
/// started with. A model that fails any check is refused and the current one stays.
#[derive(Clone)]
pub struct Reloader {
    pub service: Arc<DecisionService>,
    pub source: crate::model::ModelSource,
}

impl Reloader {
    pub async fn reload(&self) -> Result<String, crate::model::ModelError> {
        let source = self.source.clone();
        let loaded = tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| crate::model::ModelError::Load {
                path: self.source.dir.clone(),
                problem: e.to_string(),
            })
            .and_then(|r| r);
        match loaded {
            Ok(model) => {
                let version = model.version().to_owned();
                self.service.model.store(Arc::new(model));
                crate::metrics::model_reload("loaded");
                tracing::info!(version = %version, "Model reloaded.");
                Ok(version)
            }
            Err(e) => {
                crate::metrics::model_reload("rejected");
                tracing::error!(error = %e, "Model rejected; the current one stays.");
                Err(e)
            }
        }
    }
}

/// The stored decision for a retry of the same payment; 409 for a changed one.
fn retry_answer(record: &str, payment_key: &str) -> Result<String, ApiError> {
    let stored = stored::decode(record);
    if stored.same_payment(payment_key) {
        Ok(stored.response_json.to_owned())
    } else {
        crate::metrics::idempotency_mismatch();
        Err(ApiError::IdempotencyMismatch)
    }
}

/// After the model's reason (when a score band fired), the features that raised the score
/// most. Only then: TreeSHAP costs ~0.2 ms on the shipped model, and an allowed payment needs none.
/// `anomaly` is the forest's score of the row (`Assessment::anomaly`); when the classifier
/// takes it as a feature it can be one of the factors, named `anomaly_score`.
pub fn explain(
    model: &OnnxModel,
    features: &features::FeatureVector,
    anomaly: Option<f32>,
    reasons: &mut Vec<shared::Reason>,
) {
    let model_codes = [
        ReasonCode::ModelHighRisk.as_str(),
        ReasonCode::ModelVeryHighRisk.as_str(),
    ];
    let (Some(explainer), Some(at)) = (
        &model.explainer,
        reasons.iter().position(|r| model_codes.contains(&r.code.as_str())),
    ) else {
        return;
    };
    let code = ReasonCode::ModelFactor;
    let row = model.input_row(features, anomaly);
    let row = row.as_slice();
    let start = Instant::now();
    let top = explainer.top_raising(row, 3);
    crate::metrics::explained(start.elapsed());
    let factors = top.into_iter().map(|(i, contribution)| shared::Reason {
        code: code.as_str().to_owned(),
        message: factor_message(i, row[i], contribution),
        source: code.source(),
    });
    reasons.splice(at + 1..at + 1, factors);
}

/// `amount_ref = 950 raised the score by 1.20 log-odds`; the anomaly score says what its
/// scale means, as it is no request field.
fn factor_message(input: usize, value: f32, contribution: f64) -> String {
    let name = crate::model::input_name(input);
    let value = if name == crate::model::ANOMALY_FEATURE && !value.is_nan() {
        format!("{value:.2} (isolation forest; about 0.5 is ordinary, higher is unusual)")
    } else {
        features::display_value(value)
    };
    format!("{name} = {value} raised the score by {contribution:.2} log-odds")
}

/// Four decimals are plenty for a probability, and keep the JSON short.
fn round4(score: f32) -> f64 {
    (f64::from(score) * 10_000.0).round() / 10_000.0
}
