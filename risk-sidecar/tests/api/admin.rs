use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn healthz_and_readyz_report_the_process_and_its_dependencies() {
    for (backend, store_state) in [(Backend::Redis, "connected"), (Backend::Memory, "in_memory")] {
        let app = spawn_app(backend).await;
        assert_eq!(app.get("/healthz").await.status(), 200);
        let response = app.get("/readyz").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], "ready");
        assert_eq!(body["dependencies"]["policy"]["version"], "2");
        assert!(
            body["dependencies"]["model"]["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("fixture-"))
        );
        assert_eq!(
            body["dependencies"]["velocity_store"]["state"], store_state,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_labelled_by_route_pattern() {
    let app = spawn_app(Backend::Redis).await;
    app.decide_ok(&request(&tx(), "card-metrics")).await;
    app.get("/v1/decisions/some-id").await;
    let text = app.metrics().await;
    for expected in [
        "# TYPE risk_decision_duration_seconds histogram",
        "risk_model_inference_duration_seconds_bucket",
        "risk_velocity_store_duration_seconds_bucket{store=\"connected\"",
        "route=\"/v1/decisions\"",
        "route=\"/v1/decisions/{transaction_id}\"",
    ] {
        assert!(text.contains(expected), "missing {expected}");
    }
    assert!(!text.contains("some-id"), "raw paths never become labels");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_and_refuses_new_ones() {
    let proxy = ChaosProxy::start(redis_url().trim_start_matches("redis://")).await;
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", format!("redis://{}", proxy.address))
        .start()
        .await;
    app.decide_ok(&request(&tx(), "card-drain")).await;
    // A decision that will take ~300 ms inside the sidecar (budget and timeout are roomier).
    proxy.set_delay(Duration::from_millis(300));
    let in_flight = tokio::spawn({
        let (client, address) = (app.client.clone(), app.address.clone());
        async move {
            client
                .post(format!("{address}/v1/decisions"))
                .json(&request(&tx(), "card-drain"))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shutdown = app.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });

    let response = in_flight.await.expect("joined").expect("in-flight request completed");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["degraded"],
        serde_json::json!([]),
        "it finished its work, not cut short"
    );
    stopping.await.expect("shutdown finished");
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", app.address))
        .send()
        .await;
    assert!(refused.is_err(), "no new requests after shutdown");
}

#[tokio::test]
async fn a_model_is_reloaded_in_place_and_a_wrong_one_is_refused_while_the_old_one_serves() {
    // Arrange: the sidecar serves the fixture model from a directory the test controls.
    let dir = tempfile::tempdir().expect("dir");
    let copy = |from: &str| {
        for f in ["model.onnx", "model.json", "iforest.onnx"] {
            let from = repo_path(&format!("{from}/{f}"));
            // The fixture has no isolation forest; the shipped model may.
            if from.exists() {
                std::fs::copy(from, dir.path().join(f)).expect("copy");
            }
        }
    };
    copy("models/fixture");
    let app = Spawn::new(Backend::Memory)
        .set("RISK__MODEL__DIR", dir.path().display())
        .start()
        .await;
    let before = app.decide_ok(&request(&tx(), "card-reload")).await["model_version"].clone();
    let reload = || app.client.post(format!("{}/admin/reload", app.address)).send();

    // Act: a card for another feature list.
    std::fs::write(
        dir.path().join("model.json"),
        r#"{"version": "x", "feature_list_hash": "00"}"#,
    )
    .expect("card");
    let refused = reload().await.expect("sent");

    // Assert: refused with the reason, and decisions go on with the old model.
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "model_rejected");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("feature list")),
        "{body}"
    );
    assert_eq!(
        app.decide_ok(&request(&tx(), "card-reload")).await["model_version"],
        before
    );

    // Act: the trained model.
    copy("models/lgbm");
    let loaded = reload().await.expect("sent");
    assert_eq!(loaded.status(), 200);
    let version = loaded.json::<Value>().await.expect("json")["model_version"].clone();

    // Assert: the next decision is made by it.
    assert!(version.as_str().is_some_and(|v| v.starts_with("lgbm-")), "{version}");
    assert_eq!(
        app.decide_ok(&request(&tx(), "card-reload")).await["model_version"],
        version
    );
    assert!(
        app.metrics()
            .await
            .contains("risk_model_reloads_total{result=\"rejected\"}")
    );
}

#[tokio::test]
async fn a_shadow_model_is_scored_on_every_decision_and_never_decides() {
    let app = Spawn::new(Backend::Memory)
        .set("RISK__MODEL__SHADOW_DIR", repo_path("models/lgbm").display())
        .start()
        .await;
    for _ in 0..3 {
        let body = app.decide_ok(&request(&tx(), "card-shadow")).await;
        assert!(
            body["model_version"]
                .as_str()
                .is_some_and(|v| v.starts_with("fixture-")),
            "the live model decides"
        );
    }
    // No other test runs a shadow, so this process's counter holds exactly these three.
    let shadowed: f64 = app
        .metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("risk_shadow_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(shadowed, 3.0);
}
