//! Serving parity: replaying a history over HTTP gives, transaction by transaction,
//! the very features `risk-replay` writes into the training table; with labels and
//! declines too, sent as feedback and outcomes at their times.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;

use risk_sidecar::replay::Replayer;
use risk_sidecar::settings::Settings;
use risk_sidecar::startup::Application;
use serde_json::{Value, json};
use shared::{HistoryRecord, LabelSource, OutcomeStatus};
use simulator::{Params, simulate};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

fn params() -> Params {
    let text = std::fs::read_to_string(repo("simulator/params.yaml")).expect("params");
    let mut params = Params::from_yaml(&text).expect("valid");
    params.customers.initial = 300;
    // Recent, so the sidecar's edge takes every occurred_at (it refuses old ones), and a
    // Monday, as the shipped start is: the simulated week has weekends, so a start on
    // another weekday is another history and the tests would change with the date.
    let start = (OffsetDateTime::now_utc() - time::Duration::days(60)).replace_time(time::Time::MIDNIGHT);
    let start = start - time::Duration::days(i64::from(start.weekday().number_days_from_monday()));
    params.start = start.format(&Rfc3339).expect("time");
    params
}

fn ms(s: &str) -> i64 {
    let t = OffsetDateTime::parse(s, &Rfc3339).expect("RFC 3339");
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("time")
        .format(&Rfc3339)
        .expect("time")
}

fn sidecar_settings(extra: &[(&str, String)]) -> Settings {
    let mut overrides: HashMap<String, String> = [
        ("RISK__SERVER__PORT", "0".to_owned()),
        ("RISK__SERVER__WORKERS", "1".to_owned()),
        ("RISK__MODEL__DIR", repo("models/lgbm")),
        ("RISK__MODEL__SESSIONS", "1".to_owned()),
        ("RISK__POLICY__PATH", repo("risk-sidecar/configuration/policy.yaml")),
        ("RISK__DECISION__BUDGET_MS", "2000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    overrides.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Settings::load_with(overrides).expect("settings")
}

#[tokio::test]
async fn features_over_http_equal_the_training_tables_rows() {
    let mut history = simulate(&params(), 5).expect("simulates");
    // This sidecar keeps no log, so it hears of no label or outcome: neither does the
    // replay (the next test sends them).
    for r in &mut history {
        (r.label, r.labelled_at, r.label_source) = (None, None, None);
        r.outcomes.clear();
    }
    // A prefix with fraud in it keeps the test short and still exercises the counters.
    let first_fraud = history.iter().position(|r| r.scenario.is_some()).expect("some fraud");
    let records = &history[..(first_fraud + 150).min(history.len())];

    let settings = sidecar_settings(&[]);
    let mut replayer = Replayer::new(&settings);
    let app = Application::build(settings).await.expect("sidecar builds");
    let url = format!("http://127.0.0.1:{}/v1/decisions", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    for (n, record) in records.iter().enumerate() {
        decide_and_compare(&client, &url, &mut replayer, record, n).await;
    }
}

/// Decides the record over HTTP and asserts every feature equals the replay's row.
async fn decide_and_compare(
    client: &reqwest::Client,
    url: &str,
    replayer: &mut Replayer,
    record: &HistoryRecord,
    n: usize,
) -> risk_sidecar::replay::FeatureRow {
    let response = client
        .post(url)
        .header("x-risk-features", "true")
        .json(&record.request)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200, "record {n}");
    let body: Value = response.json().await.expect("json");
    let row = replayer.row(record, n + 1).expect("replays");
    for (i, name) in shared::FEATURE_NAMES.iter().enumerate() {
        let served = body["features"][name].as_f64().map(|v| v as f32);
        let trained = Some(row.features.0[i]).filter(|v| !v.is_nan());
        assert_eq!(served, trained, "record {n} ({:?}), feature {name}", record.scenario);
    }
    row
}

/// What became known after a transaction, waiting for its time.
enum Known {
    Label {
        tx: String,
        label: &'static str,
        source: &'static str,
    },
    Decline {
        tx: String,
        code: String,
    },
}

const LABEL_DELAY_MS: i64 = 3_600_000;

#[tokio::test]
async fn with_labels_and_declines_sent_at_their_times_features_over_http_equal_the_replays() {
    let mut p = params();
    // Many labels soon after their payments, so a short run sees them counted.
    p.feedback.challenge_share = 0.3;
    p.feedback.chargeback_days = [1, 2];
    let mut history = simulate(&p, 9).expect("simulates");
    // Settled labels lose their time: they take the replay's default delay instead,
    // and are sent as a manual review's.
    for r in history.iter_mut().filter(|r| r.label_source.is_none()) {
        r.labelled_at = None;
    }
    // From the start until well after the first fraud and until a label and a decline
    // have each been counted in some later decision's features (a cap ends it if not).
    let first_fraud = history.iter().position(|r| r.scenario.is_some()).expect("some fraud");
    let (least, most) = (first_fraud + 400, first_fraud + 4_000);

    let db = fresh_database().await;
    let spool = std::env::temp_dir().join(format!("parity-spool-{}", uuid::Uuid::new_v4().simple()));
    let settings = sidecar_settings(&[
        ("RISK__DECISION_LOG__URL", db),
        (
            "RISK__DECISION_LOG__EMAIL_HASH_KEY",
            "parity-test-key-of-at-least-32-bytes".to_owned(),
        ),
        ("RISK__DECISION_LOG__FLUSH_INTERVAL_MS", "5".to_owned()),
        ("RISK__DECISION_LOG__SPOOL_DIR", spool.display().to_string()),
    ]);
    let mut replayer = Replayer::new(&settings).with_label_delay(LABEL_DELAY_MS);
    let app = Application::build(settings).await.expect("sidecar builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let mut pending: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut known: Vec<Known> = Vec::new();
    let (mut label_rows, mut decline_rows) = (0, 0);
    for (n, record) in history.iter().enumerate().take(most) {
        if n >= least && label_rows > 0 && decline_rows > 0 {
            break;
        }
        let at = ms(record.request.occurred_at.as_deref().expect("timed"));
        while let Some(Reverse((t, i))) = pending.peek().copied().filter(|Reverse((t, _))| *t < at) {
            pending.pop();
            send(&client, &base, &known[i], t).await;
        }
        let row = decide_and_compare(&client, &format!("{base}/v1/decisions"), &mut replayer, record, n).await;
        let value = |name: &str| row.features.0[shared::feature_index(name).expect("known")];
        label_rows += usize::from(value("card_fraud_count_30d") > 0.0 || value("device_fraud_share_30d") >= 0.0);
        // Card testing declines many cards, each once, from one device and IP: any
        // entity's count shows a decline counted.
        let declines = ["card", "customer", "device", "ip"].map(|e| value(&format!("{e}_decline_count_24h")));
        decline_rows += usize::from(declines.iter().any(|&v| v > 0.0));
        schedule(record, at, &mut pending, &mut known);
    }
    assert!(
        label_rows > 0 && decline_rows > 0,
        "labels {label_rows}, declines {decline_rows}: not exercised"
    );
    let _ = std::fs::remove_dir_all(spool);
}

fn schedule(record: &HistoryRecord, at: i64, pending: &mut BinaryHeap<Reverse<(i64, usize)>>, known: &mut Vec<Known>) {
    let tx = record.request.transaction_id.clone();
    if let Some(label) = record.label {
        let when = record.labelled_at.as_deref().map_or(at + LABEL_DELAY_MS, ms);
        let source = record.label_source.unwrap_or(LabelSource::ManualReview);
        pending.push(Reverse((when, known.len())));
        known.push(Known::Label {
            tx: tx.clone(),
            label: label_str(label),
            source: source.as_str(),
        });
    }
    for o in record.outcomes.iter().filter(|o| o.status == OutcomeStatus::Declined) {
        pending.push(Reverse((ms(&o.occurred_at), known.len())));
        known.push(Known::Decline {
            tx: tx.clone(),
            code: o.code.clone().unwrap_or_default(),
        });
    }
}

fn label_str(l: shared::Label) -> &'static str {
    match l {
        shared::Label::Fraud => "fraud",
        shared::Label::Legitimate => "legitimate",
    }
}

async fn send(client: &reqwest::Client, base: &str, k: &Known, at: i64) {
    let (url, body) = match k {
        Known::Label { tx, label, source } => (
            format!("{base}/v1/feedback"),
            json!({"transaction_id": tx, "label": label, "source": source, "occurred_at": rfc3339(at)}),
        ),
        Known::Decline { tx, code } => (
            format!("{base}/v1/decisions/{tx}/outcome"),
            json!({"status": "declined", "code": code, "occurred_at": rfc3339(at)}),
        ),
    };
    let response = client.post(&url).json(&body).send().await.expect("sent");
    let status = response.status();
    assert_eq!(
        status,
        202,
        "{url} {body}: {}",
        response.text().await.unwrap_or_default()
    );
}

/// A database of its own (`risk_test_…`, dropped by scripts/drop-test-databases.sh).
async fn fresh_database() -> String {
    let admin_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .expect("these tests need PostgreSQL at DATABASE_URL");
    tokio::spawn(connection);
    let name = format!("risk_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("create database {name}"))
        .await
        .expect("create database");
    let mut url = reqwest::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
