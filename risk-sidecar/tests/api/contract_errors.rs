//! Every error row of the contract, over HTTP, with its status, code and field.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error bodies are JSON");
    (status, body["error"].clone())
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_400_invalid_json() {
    let app = spawn_app(Backend::Redis).await;
    for body in ["{not json", "[1, 2]", "\"text\"", ""] {
        let (status, error) = error_of(app.post_raw(body, Some("application/json")).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_json")),
            "{body:?}"
        );
        assert_eq!(error["field"], Value::Null);
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app(Backend::Redis).await;
    let mut body = request(&tx(), "card-big");
    body["metadata"] = json!({"pad": "x".repeat(64 * 1024)});
    let (status, error) = error_of(app.post_decision(&body).await).await;
    assert_eq!((status, error["code"].as_str()), (413, Some("payload_too_large")));
    // Just under the limit is fine.
    let mut ok = request(&tx(), "card-big");
    let len = ok.to_string().len();
    ok["metadata"] = json!({"pad": "x".repeat(64 * 1024 - len - 40)});
    assert_eq!(app.post_decision(&ok).await.status(), 200);
}

#[tokio::test]
async fn other_media_types_are_415() {
    let app = spawn_app(Backend::Redis).await;
    let body = request(&tx(), "card-mt").to_string();
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let (status, error) = error_of(app.post_raw(body.clone(), ct).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (415, Some("unsupported_media_type")),
            "{ct:?}"
        );
    }
    let ok = app.post_raw(body, Some("application/json; charset=utf-8")).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn rule_violations_are_422_with_the_dotted_field() {
    let app = spawn_app(Backend::Redis).await;
    let cases: Vec<(&str, Value)> = vec![
        ("transaction_id", json!("bad id!")),
        ("amount.value_minor", json!(-5)),
        ("amount.currency", json!("euro")),
        ("customer.email", json!("no-at-sign")),
        ("occurred_at", json!("2999-01-01T00:00:00Z")),
        ("device.ip", json!("not-an-ip")),
        ("payment.bin", json!("12")),
    ];
    for (field, value) in cases {
        let mut body = request(&tx(), "card-422");
        let mut target = &mut body;
        let parts: Vec<&str> = field.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            target = &mut target[*p];
        }
        target[parts[parts.len() - 1]] = value;
        let (status, error) = error_of(app.post_decision(&body).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (422, Some("validation_failed")),
            "{field}"
        );
        assert_eq!(error["field"], field);
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn a_card_number_anywhere_is_422_pan_not_allowed_and_never_echoed() {
    let app = spawn_app(Backend::Redis).await;
    let pan = "4111 1111 1111 1111";
    let mut body = request(&tx(), "card-pan");
    body["metadata"] = json!({"note": pan});
    let response = app.post_decision(&body).await;
    assert_eq!(response.status(), 422);
    let text = response.text().await.expect("body");
    assert!(!text.contains("4111"), "the number must not come back: {text}");
    let error: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(error["error"]["code"], "pan_not_allowed");
    assert_eq!(error["error"]["field"], "metadata.note");
    // Nothing was stored or counted for it.
    let t = body["transaction_id"].as_str().expect("id");
    assert_eq!(app.get(&format!("/v1/decisions/{t}")).await.status(), 404);
}

#[tokio::test]
async fn a_caller_over_its_rate_is_429_with_retry_after() {
    // Loopback is a trusted caller here, so X-Client-Id names callers apart.
    let app = Spawn::new(Backend::Redis)
        .set("RISK__LIMITS__PER_SECOND", 1)
        .set("RISK__LIMITS__BURST", 2)
        .set("RISK__LIMITS__TRUSTED_CALLERS", "127.0.0.1/32")
        .start()
        .await;
    let send = |client: &'static str| {
        let req = app
            .client
            .post(format!("{}/v1/decisions", app.address))
            .header("x-client-id", client);
        req.json(&request(&tx(), "card-429")).send()
    };
    assert_eq!(send("shop-a").await.expect("sent").status(), 200);
    assert_eq!(send("shop-a").await.expect("sent").status(), 200);
    let limited = send("shop-a").await.expect("sent");
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (_, error) = error_of(limited).await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(
        send("shop-b").await.expect("sent").status(),
        200,
        "another caller is not limited"
    );
    assert!(app.metrics().await.contains("risk_rate_limited_total"));
}

#[tokio::test]
async fn without_a_policy_decisions_are_503_not_ready_until_one_appears() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.yaml");
    let app = Spawn::new(Backend::Redis)
        .set("RISK__POLICY__PATH", path.display())
        .start()
        .await;

    let response = app.post_decision(&request(&tx(), "card-503")).await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, error) = error_of(response).await;
    assert_eq!((status, error["code"].as_str()), (503, Some("not_ready")));
    assert_eq!(app.get("/readyz").await.status(), 503);

    std::fs::write(&path, policy_text("7", "")).expect("write policy");
    let ready = eventually(Duration::from_secs(5), || async {
        app.get("/readyz").await.status() == 200
    })
    .await;
    assert!(ready, "the policy file was picked up");
    let body = app.decide_ok(&request(&tx(), "card-503")).await;
    assert_eq!(body["policy_version"], "7");
}

#[tokio::test]
async fn an_invalid_policy_update_keeps_the_current_policy_and_a_valid_one_replaces_it() {
    let (_dir, path) = policy_file("");
    let app = Spawn::new(Backend::Memory)
        .set("RISK__POLICY__PATH", path.display())
        .start()
        .await;
    std::fs::write(&path, "version: '2'\nthresholds: {challenge: 0.5, block: 0.9}\nrules:\n  - {id: x, action: block, when: 'nope', code: HIGH_AMOUNT, message: m}\n").expect("write");
    let rejected = eventually(Duration::from_secs(5), || async {
        app.metrics()
            .await
            .contains("risk_policy_reloads_total{result=\"rejected\"}")
    })
    .await;
    assert!(rejected);
    assert_eq!(app.decide_ok(&request(&tx(), "card-p")).await["policy_version"], "t1");

    std::fs::write(&path, policy_text("3", "")).expect("write");
    let swapped = eventually(Duration::from_secs(5), || async {
        app.decide_ok(&request(&tx(), "card-p")).await["policy_version"] == "3"
    })
    .await;
    assert!(swapped);
}

#[tokio::test]
async fn unknown_routes_are_a_json_404() {
    let app = spawn_app(Backend::Memory).await;
    let (status, error) = error_of(app.get("/v2/nothing").await).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
}
