use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_valid_request_gets_a_decision_with_every_contract_field() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let t = tx();
        let body = app.decide_ok(&request(&t, &format!("card-{t}"))).await;

        assert!(
            body["decision_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("dec_") && id.len() == 30),
            "{body}"
        );
        assert_eq!(body["transaction_id"], t.as_str());
        assert!(
            ["allow", "challenge", "block"].contains(&body["decision"].as_str().unwrap_or("")),
            "{body}"
        );
        let score = body["score"].as_f64().expect("score");
        assert!((0.0..=1.0).contains(&score), "{body}");
        assert!(body["reasons"].is_array());
        assert!(
            body["model_version"]
                .as_str()
                .is_some_and(|v| v.starts_with("fixture-"))
        );
        assert_eq!(body["policy_version"], "2", "the shipped policy file's version");
        assert_eq!(body["degraded"], json!([]), "{backend:?}");
        assert!(body["evaluated_in_us"].as_u64().is_some_and(|us| us > 0));
        let typed: shared::DecisionResponse = serde_json::from_value(body).expect("matches the shared type");
        assert_eq!(typed.transaction_id, t);
    }
}

#[tokio::test]
async fn a_burst_of_ten_on_one_card_within_a_minute_is_stopped_with_a_velocity_reason() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let card = format!("card-burst-{}", tx());
        let mut decisions = Vec::new();
        for _ in 0..10 {
            decisions.push(app.decide_ok(&request(&tx(), &card)).await);
        }
        let last = decisions.last().expect("ten decisions");
        assert_ne!(last["decision"], "allow", "{backend:?}: {last}");
        let reasons = last["reasons"].as_array().expect("reasons");
        let velocity = reasons
            .iter()
            .find(|r| r["source"] == "velocity" && r["code"] == "CARD_VELOCITY_1M");
        let message = velocity.and_then(|r| r["message"].as_str()).unwrap_or_default();
        assert_eq!(message, "card used 10 times in the last minute", "{backend:?}: {last}");
    }
}

#[tokio::test]
async fn a_retry_returns_the_same_decision_and_changes_no_counter() {
    for backend in BACKENDS {
        let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
        let app = Spawn::new(backend)
            .set("RISK__POLICY__PATH", policy.display())
            .start()
            .await;
        let card = format!("card-retry-{}", tx());
        let first_tx = tx();
        let first = app.decide_ok(&request(&first_tx, &card)).await;
        // The retry comes later and with a changed body (not the payment itself, which
        // would be a 409): the transaction id decides.
        let mut changed = request(&first_tx, &card);
        changed["device"]["ip"] = json!("198.51.100.9");
        changed["metadata"]["order"] = json!("changed");
        let retry = app.decide_ok(&changed).await;
        assert_eq!(retry["decision_id"], first["decision_id"], "{backend:?}");
        assert_eq!(retry["decision"], first["decision"]);
        assert_eq!(retry, first, "the stored decision, byte for byte");

        let second = app.decide_ok(&request(&tx(), &card)).await;
        assert_eq!(
            second["reasons"][0]["message"], "card used 2 times in the last minute",
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_requests_for_one_transaction_get_one_decision_counted_once() {
    for backend in BACKENDS {
        let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
        let app = Spawn::new(backend)
            .set("RISK__POLICY__PATH", policy.display())
            .set("RISK__SERVER__WORKERS", 4)
            .start()
            .await;
        let card = format!("card-race-{}", tx());
        for _ in 0..10 {
            let t = tx();
            let body = request(&t, &card);
            // Eight at once, on several workers: one holds the reservation, the rest
            // wait for its decision.
            let answers = futures::future::join_all((0..8).map(|_| app.post_decision(&body))).await;
            let mut ids = std::collections::BTreeSet::new();
            for answer in answers {
                assert_eq!(answer.status(), 200, "{backend:?}");
                let v: Value = answer.json().await.expect("json");
                ids.insert(v["decision_id"].as_str().expect("id").to_owned());
            }
            assert_eq!(ids.len(), 1, "{backend:?}: one decision_id for one transaction");
            // Read back at once: a read that races the write waits for it.
            let read = app.get(&format!("/v1/decisions/{t}")).await;
            assert_eq!(read.status(), 200, "{backend:?}");
            let read: Value = read.json().await.expect("json");
            assert_eq!(read["decision_id"].as_str(), ids.first().map(String::as_str));
        }
        let next = app.decide_ok(&request(&tx(), &card)).await;
        assert_eq!(
            next["reasons"][0]["message"], "card used 11 times in the last minute",
            "{backend:?}: ten transactions, each counted once"
        );
    }
}

#[tokio::test]
async fn windows_run_in_event_time() {
    let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
    let app = Spawn::new(Backend::Redis)
        .set("RISK__POLICY__PATH", policy.display())
        .start()
        .await;
    let card = format!("card-time-{}", tx());
    let mut early = request(&tx(), &card);
    early["occurred_at"] = json!("2026-01-01T10:00:00Z");
    app.decide_ok(&early).await;
    let mut late = request(&tx(), &card);
    late["occurred_at"] = json!("2026-01-01T10:00:30+00:00");
    let body = app.decide_ok(&late).await;
    assert_eq!(body["reasons"][0]["message"], "card used 2 times in the last minute");
    let mut much_later = request(&tx(), &card);
    much_later["occurred_at"] = json!("2026-01-01T10:05:00Z");
    let body = app.decide_ok(&much_later).await;
    assert_eq!(body["reasons"][0]["message"], "card used 1 times in the last minute");
}

#[tokio::test]
async fn a_stored_decision_can_be_read_back() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let t = tx();
        let decided = app.decide_ok(&request(&t, "card-read")).await;
        let response = app.get(&format!("/v1/decisions/{t}")).await;
        assert_eq!(response.status(), 200);
        let read: Value = response.json().await.expect("json");
        assert_eq!(read, decided, "{backend:?}");

        let missing = app.get("/v1/decisions/never-seen").await;
        assert_eq!(missing.status(), 404);
        let body: Value = missing.json().await.expect("json");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[tokio::test]
async fn minimal_requests_and_other_payment_methods_are_decided() {
    let app = spawn_app(Backend::Redis).await;
    let minimal = json!({"transaction_id": tx(), "amount": {"value_minor": 0, "currency": "KRW"},
                         "customer": {"id": "c"}, "payment": {"method": "bank_transfer"}});
    app.decide_ok(&minimal).await;
    let unknown_currency = json!({"transaction_id": tx(), "amount": {"value_minor": 100, "currency": "XTS"},
                                  "customer": {"id": "c"}, "payment": {"card_fingerprint": "fp"}, "extra": {"ignored": true}});
    app.decide_ok(&unknown_currency).await;
    let v6 = json!({"transaction_id": tx(), "amount": {"value_minor": 100, "currency": "USD"},
                    "customer": {"id": "c"}, "payment": {"method": "wallet"}, "device": {"ip": "2001:db8::1"}});
    app.decide_ok(&v6).await;
}

#[tokio::test]
async fn a_model_driven_decision_names_the_features_that_raised_the_score() {
    let app = Spawn::new(Backend::Memory)
        .set("RISK__MODEL__DIR", repo_path("models/lgbm").display())
        .start()
        .await;
    let device = format!("dev-ring-{}", tx());
    let mut last = Value::Null;
    // Card testing: new cards, one device, small amounts, seconds apart.
    for n in 0..12 {
        let mut body = request(&tx(), &format!("card-t{n}-{device}"));
        body["device"]["id"] = json!(device);
        body["amount"]["value_minor"] = json!(150);
        last = app.decide_ok(&body).await;
    }
    let reasons = last["reasons"].as_array().expect("reasons");
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r["code"].as_str()).collect();
    let band = codes
        .iter()
        .position(|c| c.starts_with("MODEL_") && *c != "MODEL_FACTOR");
    let band = band.unwrap_or_else(|| panic!("the model drove this decision: {last}"));
    let factors: Vec<&Value> = reasons.iter().filter(|r| r["code"] == "MODEL_FACTOR").collect();
    assert!((1..=3).contains(&factors.len()), "{last}");
    assert_eq!(
        codes[band + 1],
        "MODEL_FACTOR",
        "factors follow the model's reason: {codes:?}"
    );
    assert!(
        factors.iter().all(|f| f["source"] == "model"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains(" raised the score by "))),
        "{last}"
    );
}
