//! Metric names, their descriptions, and the Prometheus recorder.
//!
//! Names follow `shop_<name>_<unit>[_total]`; labels are small fixed sets (`route` is the
//! matched pattern, never a raw path; never an account or order).

use std::time::Duration;

use metrics::{counter, describe_counter, describe_histogram, histogram};
use servicekit::{Matcher, PrometheusHandle};

pub const HTTP_REQUEST_DURATION: &str = "shop_http_request_duration_seconds";
pub const CHECKOUT_OUTCOMES: &str = "shop_checkout_outcomes_total";
pub const RISK_CALL_DURATION: &str = "shop_risk_call_duration_seconds";
pub const RISK_FALLBACKS: &str = "shop_risk_fallbacks_total";
pub const RISK_REFUSALS: &str = "shop_risk_refusals_total";
pub const RISK_REPORTS: &str = "shop_risk_reports_total";
pub const DISPUTES: &str = "shop_disputes_total";
pub const LOGIN_ATTEMPTS: &str = "shop_login_attempts_total";

/// 0.25 ms to 10 s: a risk call is sub-millisecond, a page with argon2 takes tens of ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Installs the recorder once per process (tests start many apps in one) and returns
/// the handle `/metrics` renders.
pub fn install() -> PrometheusHandle {
    servicekit::install_metrics(
        &[(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)],
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
    describe_counter!(
        RISK_REFUSALS,
        "Requests the sidecar refused (4xx other than 429: a shop bug), by status; each order is held for review."
    );
    describe_counter!(LOGIN_ATTEMPTS, "Log-in attempts, by result.");
    describe_counter!(
        RISK_REPORTS,
        "Outcome and label reports sent to the sidecar, by result (accepted, refused, failed: retried)."
    );
    describe_counter!(DISPUTES, "Disputes the gateway reported, by event (opened, won, lost).");
    for event in ["opened", "won", "lost"] {
        counter!(DISPUTES, "event" => event).increment(0);
    }
    for result in ["accepted", "refused", "failed"] {
        counter!(RISK_REPORTS, "result" => result).increment(0);
    }
    // What the alert rules and the dashboard (`monitoring/`) read, at zero before the
    // first checkout: a rate over a series that does not exist yet is no rate at all.
    for outcome in [
        "paid",
        "declined",
        "challenged",
        "blocked",
        "held_for_review",
        "verification_passed",
        "verification_expired",
        "verification_failed",
    ] {
        counter!(CHECKOUT_OUTCOMES, "outcome" => outcome).increment(0);
    }
    for reason in crate::checkout::risk::FallbackReason::ALL {
        counter!(RISK_FALLBACKS, "reason" => reason.as_str()).increment(0);
        let _ = histogram!(RISK_CALL_DURATION, "result" => reason.as_str());
    }
    for result in ["ok", "refused"] {
        let _ = histogram!(RISK_CALL_DURATION, "result" => result);
    }
    // The statuses the sidecar's contract answers a request it refuses.
    for status in ["400", "409", "413", "415", "422"] {
        counter!(RISK_REFUSALS, "status" => status).increment(0);
    }
    for result in ["ok", "bad_credentials", "rate_limited"] {
        counter!(LOGIN_ATTEMPTS, "result" => result).increment(0);
    }
}

pub fn dispute(event: &'static str) {
    counter!(DISPUTES, "event" => event).increment(1);
}

pub fn risk_report(result: &'static str) {
    counter!(RISK_REPORTS, "result" => result).increment(1);
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

pub fn risk_refusal(status: u16) {
    counter!(RISK_REFUSALS, "status" => status.to_string()).increment(1);
}

pub fn login_attempt(result: &'static str) {
    counter!(LOGIN_ATTEMPTS, "result" => result).increment(1);
}
