//! Metric names, their descriptions, and the Prometheus recorder.
//!
//! Names follow `risk_<name>_<unit>[_total]`; labels are small fixed sets taken from
//! enums (`route` is the matched pattern, never a raw path; never a merchant or customer).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use servicekit::{Matcher, PrometheusHandle};

pub const HTTP_REQUEST_DURATION: &str = "risk_http_request_duration_seconds";
pub const DECISION_DURATION: &str = "risk_decision_duration_seconds";
pub const MODEL_INFERENCE_DURATION: &str = "risk_model_inference_duration_seconds";
pub const MODEL_EXPLAIN_DURATION: &str = "risk_model_explain_duration_seconds";
pub const VELOCITY_STORE_DURATION: &str = "risk_velocity_store_duration_seconds";
pub const DEGRADED_DECISIONS: &str = "risk_degraded_decisions_total";
pub const STORE_ERRORS: &str = "risk_redis_errors_total";
pub const ROUND_TRIPS: &str = "risk_redis_round_trips_total";
pub const RATE_LIMITED: &str = "risk_rate_limited_total";
pub const IDEMPOTENCY_MISMATCHES: &str = "risk_idempotency_mismatches_total";
pub const POLICY_RELOADS: &str = "risk_policy_reloads_total";
pub const POLICY_RULE_ERRORS: &str = "risk_policy_rule_errors_total";
pub const MODEL_RELOADS: &str = "risk_model_reloads_total";
pub const SHADOW_DECISIONS: &str = "risk_shadow_decisions_total";
pub const ANOMALY_SCORE: &str = "risk_model_anomaly_score";
pub const LABELS_RECORDED: &str = "risk_labels_recorded_total";
pub const OUTCOMES_RECORDED: &str = "risk_outcomes_recorded_total";
/// Labels and declines kept but not counted yet: their decision is not in the log.
pub const FEEDBACK_UNCOUNTED: &str = "risk_feedback_uncounted_total";
pub const LOG_ENABLED: &str = "risk_decision_log_enabled";
pub const LOG_QUEUE_DEPTH: &str = "risk_decision_log_queue_depth";
pub const LOG_SPOOL_BYTES: &str = "risk_decision_log_spool_bytes";
pub const LOG_ROWS_WRITTEN: &str = "risk_decision_log_rows_written_total";
pub const LOG_ROWS_SPOOLED: &str = "risk_decision_log_rows_spooled_total";
pub const LOG_ROWS_DROPPED: &str = "risk_decision_log_rows_dropped_total";
pub const LOG_WRITE_FAILURES: &str = "risk_decision_log_write_failures_total";
pub const LOG_WRITE_DURATION: &str = "risk_decision_log_write_duration_seconds";
pub const LOG_OLDEST_UNWRITTEN: &str = "risk_decision_log_oldest_unwritten_age_seconds";

/// Sub-millisecond work needs fine buckets: 10 µs to 100 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];

/// The isolation forest's score: about 0.5 is ordinary; the shipped forest puts 99.9 %
/// of legitimate payments below ~0.68. A shift of this histogram flags traffic unlike
/// the training days before any chargeback arrives.
const ANOMALY_BUCKETS: &[f64] = &[0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8];

/// Installs the recorder once per process (tests start many apps in one) and returns
/// the handle `/metrics` renders.
pub fn install() -> PrometheusHandle {
    servicekit::install_metrics(
        &[
            (Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS),
            (Matcher::Full(ANOMALY_SCORE.to_owned()), ANOMALY_BUCKETS),
        ],
        describe_all,
    )
}

pub use servicekit::spawn_metrics_upkeep as spawn_upkeep;

fn describe_all() {
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP requests by route pattern and status."
    );
    describe_histogram!(
        DECISION_DURATION,
        metrics::Unit::Seconds,
        "Decisions made, by decision, and their own time."
    );
    describe_histogram!(
        MODEL_INFERENCE_DURATION,
        metrics::Unit::Seconds,
        "ONNX inference of one row."
    );
    describe_histogram!(
        MODEL_EXPLAIN_DURATION,
        metrics::Unit::Seconds,
        "TreeSHAP of one explained decision (those with a model band reason only)."
    );
    describe_histogram!(
        ANOMALY_SCORE,
        "The isolation forest's anomaly score of each decided payment (models with a forest)."
    );
    describe_histogram!(
        VELOCITY_STORE_DURATION,
        metrics::Unit::Seconds,
        "Velocity store round trips, by store."
    );
    describe_counter!(DEGRADED_DECISIONS, "Decisions made without an input, by input.");
    describe_counter!(STORE_ERRORS, "Velocity store failures, by operation and error kind.");
    describe_counter!(
        ROUND_TRIPS,
        "Requests sent to Redis (a pipeline is one), by operation; finish_decision is sent and not awaited."
    );
    describe_counter!(RATE_LIMITED, "Requests refused by the per-caller rate limit.");
    describe_counter!(
        IDEMPOTENCY_MISMATCHES,
        "Retries refused because the amount, currency, customer or card changed (409)."
    );
    describe_counter!(POLICY_RELOADS, "Policy file reloads, by result.");
    describe_counter!(
        POLICY_RULE_ERRORS,
        "Policy rules that failed to evaluate (counted as not firing)."
    );
    describe_counter!(MODEL_RELOADS, "Model reloads, by result.");
    describe_counter!(
        SHADOW_DECISIONS,
        "Decisions the shadow model would have made, by whether it agreed."
    );
    describe_counter!(
        LABELS_RECORDED,
        "Labels recorded (a repeat is not counted), by label and source."
    );
    describe_counter!(
        OUTCOMES_RECORDED,
        "Payment outcomes recorded (a repeat is not counted), by status."
    );
    describe_counter!(
        FEEDBACK_UNCOUNTED,
        "Labels and declines kept but not counted yet (answered 503): their decision is not in the log."
    );
    describe_gauge!(LOG_ENABLED, "1 when a decision log (PostgreSQL) is configured.");
    describe_gauge!(LOG_QUEUE_DEPTH, "Decision-log rows waiting in memory for the writer.");
    describe_gauge!(
        LOG_SPOOL_BYTES,
        metrics::Unit::Bytes,
        "Size of the decision-log spool on local disk."
    );
    describe_counter!(
        LOG_ROWS_WRITTEN,
        "Decision-log rows written to PostgreSQL, by path (direct, replayed)."
    );
    describe_counter!(LOG_ROWS_SPOOLED, "Decision-log rows appended to the spool and fsynced.");
    describe_counter!(
        LOG_ROWS_DROPPED,
        "Decisions answered but not logged, by reason (queue_full, spool_full, spool_error, closed, rejected by PostgreSQL)."
    );
    describe_counter!(
        LOG_WRITE_FAILURES,
        "Batch writes to PostgreSQL that failed or timed out."
    );
    describe_histogram!(
        LOG_WRITE_DURATION,
        metrics::Unit::Seconds,
        "One batch insert into PostgreSQL."
    );
    describe_gauge!(
        LOG_OLDEST_UNWRITTEN,
        metrics::Unit::Seconds,
        "Age of the oldest decision not yet in PostgreSQL (0 when the spool is empty)."
    );
    register_decision_series();
}

pub fn label_recorded(label: shared::Label, source: shared::LabelSource) {
    counter!(LABELS_RECORDED, "label" => label.as_str(), "source" => source.as_str()).increment(1);
}

pub fn outcome_recorded(status: shared::OutcomeStatus) {
    counter!(OUTCOMES_RECORDED, "status" => status.as_str()).increment(1);
}

/// Handles of the series every decision records, made once with the recorder: the
/// macros build, hash and look up a labelled key on each call. Without a recorder (unit
/// tests) the functions below fall back to the macros.
struct Hot {
    /// By `decision_index`.
    decision: [Histogram; 3],
    inference: Histogram,
    explain: Histogram,
    anomaly: Histogram,
    /// `POST /v1/decisions` answered 200.
    decided: Histogram,
    velocity_store: Vec<(&'static str, Histogram)>,
    round_trips: Vec<(&'static str, Counter)>,
}

static HOT: OnceLock<Hot> = OnceLock::new();

const DECISION_ROUTE: &str = "/v1/decisions";
const ROUND_TRIP_OPS: [&str; 5] = ["observe", "labels", "store_decision", "finish_decision", "get_decision"];

fn decision_index(decision: shared::Decision) -> Option<usize> {
    use shared::Decision;
    match decision {
        Decision::Allow => Some(0),
        Decision::Challenge => Some(1),
        Decision::Block => Some(2),
        _ => None,
    }
}

fn find<'t, T>(table: &'t [(&'static str, T)], label: &str) -> Option<&'t T> {
    table.iter().find(|(l, _)| *l == label).map(|(_, h)| h)
}

/// The series the alert rules and the dashboard (`monitoring/`) read, at zero before
/// their first event: a rate over a series that does not exist yet is no rate at all.
/// `process.rs` checks a fresh process's scrape against every name they use.
fn register_decision_series() {
    use crate::store::StoreState;
    use shared::{Decision, Degraded};
    for decision in [Decision::Allow, Decision::Challenge, Decision::Block] {
        for agreed in ["yes", "no"] {
            counter!(SHADOW_DECISIONS, "decision" => decision.as_str(), "agreed" => agreed).increment(0);
        }
    }
    for input in [Degraded::VelocityUnavailable, Degraded::IdempotencyUnavailable] {
        counter!(DEGRADED_DECISIONS, "input" => input.as_str()).increment(0);
    }
    for op in ROUND_TRIP_OPS {
        counter!(ROUND_TRIPS, "op" => op).increment(0);
    }
    for kind in ["timeout", "disconnected", "redis", "protocol"] {
        counter!(STORE_ERRORS, "op" => "observe", "error_kind" => kind).increment(0);
    }
    for result in ["loaded", "rejected"] {
        counter!(MODEL_RELOADS, "result" => result).increment(0);
        counter!(POLICY_RELOADS, "result" => result).increment(0);
    }
    counter!(RATE_LIMITED).increment(0);
    counter!(IDEMPOTENCY_MISMATCHES).increment(0);
    counter!(POLICY_RULE_ERRORS).increment(0);
    let store_labels = [StoreState::InMemory, StoreState::Connected, StoreState::Disconnected].map(StoreState::as_str);
    // Making the handles registers their series (the decisions by outcome among them).
    let _ = HOT.set(Hot {
        decision: [Decision::Allow, Decision::Challenge, Decision::Block]
            .map(|d| histogram!(DECISION_DURATION, "decision" => d.as_str())),
        inference: histogram!(MODEL_INFERENCE_DURATION),
        explain: histogram!(MODEL_EXPLAIN_DURATION),
        anomaly: histogram!(ANOMALY_SCORE),
        decided: histogram!(HTTP_REQUEST_DURATION, "route" => DECISION_ROUTE, "status" => "200"),
        velocity_store: store_labels
            .iter()
            .map(|&s| (s, histogram!(VELOCITY_STORE_DURATION, "store" => s)))
            .collect(),
        round_trips: ROUND_TRIP_OPS
            .iter()
            .map(|&op| (op, counter!(ROUND_TRIPS, "op" => op)))
            .collect(),
    });
}

/// Every decision-log series at zero, before its first event: dashboards and alerts
/// see it from the first scrape.
pub fn register_decision_log(enabled: bool) {
    gauge!(LOG_ENABLED).set(if enabled { 1.0 } else { 0.0 });
    gauge!(LOG_QUEUE_DEPTH).set(0.0);
    gauge!(LOG_SPOOL_BYTES).set(0.0);
    gauge!(LOG_OLDEST_UNWRITTEN).set(0.0);
    for path in ["direct", "replayed"] {
        counter!(LOG_ROWS_WRITTEN, "path" => path).increment(0);
    }
    counter!(LOG_ROWS_SPOOLED).increment(0);
    for reason in ["queue_full", "spool_full", "spool_error", "closed", "rejected"] {
        counter!(LOG_ROWS_DROPPED, "reason" => reason).increment(0);
    }
    counter!(LOG_WRITE_FAILURES).increment(0);
    let _ = histogram!(LOG_WRITE_DURATION);
    for source in shared::LabelSource::ALL {
        for label in [shared::Label::Fraud, shared::Label::Legitimate] {
            counter!(LABELS_RECORDED, "label" => label.as_str(), "source" => source.as_str()).increment(0);
        }
    }
    for status in shared::OutcomeStatus::ALL {
        counter!(OUTCOMES_RECORDED, "status" => status.as_str()).increment(0);
    }
    counter!(FEEDBACK_UNCOUNTED).increment(0);
}

pub fn feedback_uncounted() {
    counter!(FEEDBACK_UNCOUNTED).increment(1);
}

pub fn log_written(path: &'static str, rows: usize, elapsed: Duration) {
    counter!(LOG_ROWS_WRITTEN, "path" => path).increment(rows as u64);
    histogram!(LOG_WRITE_DURATION).record(elapsed.as_secs_f64());
}

pub fn log_spooled(rows: usize) {
    counter!(LOG_ROWS_SPOOLED).increment(rows as u64);
}

pub fn log_dropped(reason: &'static str, rows: usize) {
    counter!(LOG_ROWS_DROPPED, "reason" => reason).increment(rows as u64);
}

pub fn log_write_failure() {
    counter!(LOG_WRITE_FAILURES).increment(1);
}

pub fn log_queue_depth(depth: usize) {
    gauge!(LOG_QUEUE_DEPTH).set(depth as f64);
}

pub fn log_spool_bytes(bytes: u64) {
    gauge!(LOG_SPOOL_BYTES).set(bytes as f64);
}

pub fn log_oldest_unwritten(age_s: f64) {
    gauge!(LOG_OLDEST_UNWRITTEN).set(age_s);
}

/// `route` is the matched pattern (`None`: no route matched).
pub fn http_request(route: Option<String>, status: u16, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    match (HOT.get(), route) {
        (Some(hot), Some(route)) if status == 200 && route == DECISION_ROUTE => hot.decided.record(seconds),
        (_, route) => histogram!(
            HTTP_REQUEST_DURATION,
            "route" => route.unwrap_or_else(|| "unmatched".to_owned()),
            "status" => status.to_string()
        )
        .record(seconds),
    }
}

pub fn decision(decision: shared::Decision, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    match (HOT.get(), decision_index(decision)) {
        (Some(hot), Some(i)) => hot.decision[i].record(seconds),
        _ => histogram!(DECISION_DURATION, "decision" => decision.as_str()).record(seconds),
    }
}

pub fn inference(elapsed: Duration) {
    match HOT.get() {
        Some(hot) => hot.inference.record(elapsed.as_secs_f64()),
        None => histogram!(MODEL_INFERENCE_DURATION).record(elapsed.as_secs_f64()),
    }
}

pub fn explained(elapsed: Duration) {
    match HOT.get() {
        Some(hot) => hot.explain.record(elapsed.as_secs_f64()),
        None => histogram!(MODEL_EXPLAIN_DURATION).record(elapsed.as_secs_f64()),
    }
}

pub fn anomaly_score(score: f32) {
    match HOT.get() {
        Some(hot) => hot.anomaly.record(f64::from(score)),
        None => histogram!(ANOMALY_SCORE).record(f64::from(score)),
    }
}

pub fn velocity_store(store: &'static str, elapsed: Duration) {
    match HOT.get().and_then(|hot| find(&hot.velocity_store, store)) {
        Some(h) => h.record(elapsed.as_secs_f64()),
        None => histogram!(VELOCITY_STORE_DURATION, "store" => store).record(elapsed.as_secs_f64()),
    }
}

pub fn degraded(input: shared::Degraded) {
    counter!(DEGRADED_DECISIONS, "input" => input.as_str()).increment(1);
}

pub fn store_error(op: &'static str, error_kind: &'static str) {
    counter!(STORE_ERRORS, "op" => op, "error_kind" => error_kind).increment(1);
}

/// One request to Redis (a pipeline counts once): `make bench` divides by decisions.
pub fn redis_round_trip(op: &'static str) {
    match HOT.get().and_then(|hot| find(&hot.round_trips, op)) {
        Some(c) => c.increment(1),
        None => counter!(ROUND_TRIPS, "op" => op).increment(1),
    }
}

pub fn rate_limited() {
    counter!(RATE_LIMITED).increment(1);
}

pub fn idempotency_mismatch() {
    counter!(IDEMPOTENCY_MISMATCHES).increment(1);
}

pub fn policy_reload(result: &'static str) {
    counter!(POLICY_RELOADS, "result" => result).increment(1);
}

pub fn policy_rule_error() {
    counter!(POLICY_RULE_ERRORS).increment(1);
}

pub fn model_reload(result: &'static str) {
    counter!(MODEL_RELOADS, "result" => result).increment(1);
}

/// `agreed`: the shadow's decision equals the live one.
pub fn shadow_decision(shadow: shared::Decision, agreed: bool) {
    counter!(SHADOW_DECISIONS, "decision" => shadow.as_str(), "agreed" => if agreed { "yes" } else { "no" })
        .increment(1);
}
