//! Serving parity: replaying a history over HTTP gives, transaction by transaction,
//! the very features `risk-replay` writes into the training table.

use std::collections::HashMap;
use std::path::PathBuf;

use risk_sidecar::replay::Replayer;
use risk_sidecar::settings::Settings;
use risk_sidecar::startup::Application;
use serde_json::Value;
use simulator::{Params, simulate};

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

#[tokio::test]
async fn features_over_http_equal_the_training_tables_rows() {
    let text = std::fs::read_to_string(repo("simulator/params.yaml")).expect("params");
    let mut params = Params::from_yaml(&text).expect("valid");
    params.customers.initial = 300;
    let history = simulate(&params, 5).expect("simulates");
    // A prefix with fraud in it keeps the test short and still exercises the counters.
    let first_fraud = history.iter().position(|r| r.scenario.is_some()).expect("some fraud");
    let records = &history[..(first_fraud + 150).min(history.len())];

    let overrides: HashMap<String, String> = [
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
    let settings = Settings::load_with(overrides).expect("settings");
    let mut replayer = Replayer::new(&settings);
    let app = Application::build(settings).await.expect("sidecar builds");
    let url = format!("http://127.0.0.1:{}/v1/decisions", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    for (n, record) in records.iter().enumerate() {
        let response = client
            .post(&url)
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
    }
}
