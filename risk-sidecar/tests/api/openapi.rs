//! `risk-sidecar/openapi.yaml` is kept true: its paths are the routes the server
//! answers, its error codes are the ones the server sends, and its example response
//! is what the server returns.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

fn document() -> Value {
    let text = std::fs::read_to_string(repo_path("risk-sidecar/openapi.yaml")).expect("openapi.yaml exists");
    serde_yaml::from_str(&text).expect("openapi.yaml is YAML")
}

#[tokio::test]
async fn every_documented_operation_is_served_and_every_route_is_documented() {
    let doc = document();
    let app = spawn_app(Backend::Memory).await;
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    let served: BTreeSet<String> = [
        "/v1/decisions",
        "/v1/decisions/{transaction_id}",
        "/v1/decisions/{transaction_id}/outcome",
        "/v1/feedback",
        "/healthz",
        "/readyz",
        "/metrics",
        "/admin/reload",
    ]
    .map(String::from)
    .into();
    assert_eq!(documented, served);
    for (path, ops) in paths {
        for method in ops.as_object().expect("operations").keys() {
            let url = format!("{}{}", app.address, path.replace("{transaction_id}", "x"));
            let response = app
                .client
                .request(method.to_uppercase().parse().expect("method"), url)
                .send()
                .await;
            let status = response.expect("sent").status().as_u16();
            assert!(
                status != 404 || path.contains('{'),
                "{method} {path} is documented but not served"
            );
            assert_ne!(status, 405, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn documented_error_codes_match_the_server_and_the_example_matches_a_real_response() {
    let doc = document();
    let codes: BTreeSet<String> =
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .expect("error code enum")
            .iter()
            .map(|c| c.as_str().expect("string").to_owned())
            .collect();
    let expected: BTreeSet<String> = [
        "invalid_json",
        "payload_too_large",
        "request_timeout",
        "unsupported_media_type",
        "idempotency_mismatch",
        "validation_failed",
        "pan_not_allowed",
        "rate_limited",
        "not_ready",
        "not_found",
        "store_unavailable",
        "model_rejected",
        "forbidden",
        "internal",
    ]
    .map(String::from)
    .into();
    assert_eq!(codes, expected);

    let example = &doc["components"]["schemas"]["DecisionResponse"]["example"];
    let _: shared::DecisionResponse = serde_json::from_value(example.clone()).expect("example is a valid response");
    let app = spawn_app(Backend::Memory).await;
    let real = app.decide_ok(&request(&tx(), "card-doc")).await;
    let keys = |v: &Value| v.as_object().expect("object").keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(example), keys(&real), "the example has the real response's fields");
    let required: BTreeSet<String> = doc["components"]["schemas"]["DecisionResponse"]["required"]
        .as_array()
        .expect("required")
        .iter()
        .map(|v| v.as_str().expect("str").to_owned())
        .collect();
    assert_eq!(required, keys(&real));
    let reason_codes: BTreeSet<String> = doc["components"]["schemas"]["Reason"]["properties"]["code"]["enum"]
        .as_array()
        .expect("reason code enum")
        .iter()
        .map(|c| c.as_str().expect("str").to_owned())
        .collect();
    let known: BTreeSet<String> = shared::ReasonCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(reason_codes, known, "the documented reason codes are the shared list");
}
