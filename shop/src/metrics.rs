//! Metric names, their descriptions, and the Prometheus recorder.
//!
//! Names follow `shop_<name>_<unit>[_total]`; labels are small fixed sets (`route` is the
//! matched pattern, never a raw path; never an account or order).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUEST_DURATION: &str = "shop_http_request_duration_seconds";
pub const CHECKOUT_OUTCOMES: &str = "shop_checkout_outcomes_total";
pub const RISK_CALL_DURATION: &str = "shop_risk_call_duration_seconds";
pub const RISK_FALLBACKS: &str = "shop_risk_fallbacks_total";
pub const LOGIN_ATTEMPTS: &str = "shop_login_attempts_total";

/// 0.25 ms to 10 s: a risk call is sub-millisecond, a page with argon2 takes tens of ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once per process (tests start many apps in one).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .expect("bucket list is non-empty")
                .install_recorder()
                .expect("the recorder is installed once per process");
            describe_all();
            handle
        })
        .clone()
}

/// Drains histogram buckets so memory stays bounded; the exporter's docs ask for it.
pub fn spawn_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

fn describe_all() {
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP requests by route pattern and status."
    );
    describe_counter!(CHECKOUT_OUTCOMES, "Checkout steps that ended, by outcome.");
    describe_histogram!(
        RISK_CALL_DURATION,
        metrics::Unit::Seconds,
        "Calls to the risk sidecar, by result."
    );
    describe_counter!(
        RISK_FALLBACKS,
        "Decisions taken by the fallback policy because the sidecar failed, by reason."
    );
    describe_counter!(LOGIN_ATTEMPTS, "Log-in attempts, by result.");
}

pub fn http_request(route: &str, status: u16, elapsed: Duration) {
    histogram!(HTTP_REQUEST_DURATION, "route" => route.to_owned(), "status" => status.to_string())
        .record(elapsed.as_secs_f64());
}

pub fn checkout_outcome(outcome: &'static str) {
    counter!(CHECKOUT_OUTCOMES, "outcome" => outcome).increment(1);
}

pub fn risk_call(result: &'static str, elapsed: Duration) {
    histogram!(RISK_CALL_DURATION, "result" => result).record(elapsed.as_secs_f64());
}

pub fn risk_fallback(reason: &'static str) {
    counter!(RISK_FALLBACKS, "reason" => reason).increment(1);
}

pub fn login_attempt(result: &'static str) {
    counter!(LOGIN_ATTEMPTS, "result" => result).increment(1);
}
