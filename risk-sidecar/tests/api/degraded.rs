//! Redis failing for real, through a proxy the test cuts: decisions go on, degraded,
//! and counting resumes by itself when Redis is back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn redis_cut_mid_run_degrades_decisions_and_counting_resumes_when_it_returns() {
    let proxy = ChaosProxy::start(redis_url().trim_start_matches("redis://")).await;
    let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", format!("redis://{}", proxy.address))
        .set("RISK__POLICY__PATH", policy.display())
        .set("RISK__DECISION__BUDGET_MS", 200)
        .set("RISK__REDIS__COMMAND_TIMEOUT_MS", 100)
        .start()
        .await;
    let card = format!("card-chaos-{}", tx());
    // Arrange: two counted decisions.
    for n in 1..=2 {
        let body = app.decide_ok(&request(&tx(), &card)).await;

        assert_eq!(
            body["reasons"][0]["message"],
            format!("card used {n} times in the last minute")
        );
    }

    // Act: Redis becomes unreachable. Wait until the sidecar has seen it: a command in
    // flight at the cut may still run in Redis with its reply lost, and count.
    proxy.cut();
    let noticed = eventually(Duration::from_secs(5), || async {
        let ready: Value = app.get("/readyz").await.json().await.expect("json");
        ready["dependencies"]["velocity_store"]["state"] == "unavailable"
    })
    .await;
    assert!(noticed, "the disconnect shows in /readyz");
    let start = Instant::now();
    let during = app.decide_ok(&request(&tx(), &card)).await;
    let took = start.elapsed();

    // Assert: still decided, marked degraded, within the budget (plus HTTP slack), counted in metrics.
    let degraded = during["degraded"].as_array().expect("degraded list");
    assert!(degraded.contains(&json!("velocity_unavailable")), "{during}");
    assert!(["allow", "challenge", "block"].contains(&during["decision"].as_str().unwrap_or("")));
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200, "degraded inputs still count as ready");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("risk_degraded_decisions_total{input=\"velocity_unavailable\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("risk_redis_errors_total{op=\"observe\""));
    let stored = app.get("/v1/decisions/anything").await;
    assert_eq!(stored.status(), 503, "reading a stored decision needs the store");

    // Act: Redis returns.
    proxy.restore();
    let resumed = eventually(Duration::from_secs(10), || async {
        app.decide_ok(&request(&tx(), "card-probe")).await["degraded"] == json!([])
    })
    .await;
    assert!(resumed, "counting resumed by itself");

    // Assert: the counts from before the outage are still there; the degraded one was not counted.
    let after = app.decide_ok(&request(&tx(), &card)).await;
    assert_eq!(after["degraded"], json!([]));
    assert_eq!(
        after["reasons"][0]["message"], "card used 3 times in the last minute",
        "{after}"
    );
}

#[tokio::test]
async fn a_slow_redis_is_cut_off_at_the_budget() {
    let proxy = ChaosProxy::start(redis_url().trim_start_matches("redis://")).await;
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", format!("redis://{}", proxy.address))
        .set("RISK__DECISION__BUDGET_MS", 50)
        .set("RISK__REDIS__COMMAND_TIMEOUT_MS", 1000)
        .start()
        .await;
    app.decide_ok(&request(&tx(), "card-slow")).await;
    proxy.set_delay(Duration::from_millis(400));
    let start = Instant::now();
    let body = app.decide_ok(&request(&tx(), "card-slow")).await;
    assert!(
        start.elapsed() < Duration::from_millis(350),
        "the 50 ms budget held: {:?}",
        start.elapsed()
    );
    assert!(
        body["degraded"]
            .as_array()
            .expect("list")
            .contains(&json!("velocity_unavailable")),
        "{body}"
    );
}

#[tokio::test]
async fn the_sidecar_starts_degraded_when_redis_is_down_at_start() {
    let proxy = ChaosProxy::start(redis_url().trim_start_matches("redis://")).await;
    proxy.cut();
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", format!("redis://{}", proxy.address))
        .set("RISK__REDIS__CONNECT_TIMEOUT_MS", 200)
        .start()
        .await;
    let body = app.decide_ok(&request(&tx(), "card-start")).await;
    assert!(
        body["degraded"]
            .as_array()
            .expect("list")
            .contains(&json!("velocity_unavailable"))
    );
    proxy.restore();
    let resumed = eventually(Duration::from_secs(10), || async {
        app.decide_ok(&request(&tx(), "card-start")).await["degraded"] == json!([])
    })
    .await;
    assert!(
        resumed,
        "connected once Redis answered, and the script was loaded on demand"
    );
}

#[tokio::test]
async fn a_redis_that_lost_its_scripts_gets_them_again_without_degrading() {
    use fred::interfaces::{ClientLike, LuaInterface};

    let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
    let app = Spawn::new(Backend::Redis)
        .set("RISK__POLICY__PATH", policy.display())
        .start()
        .await;
    let card = format!("card-noscript-{}", tx());
    app.decide_ok(&request(&tx(), &card)).await;

    // A restarted Redis has an empty script cache: the next EVALSHA answers NOSCRIPT.
    let admin = fred::prelude::Builder::from_config(fred::prelude::Config::from_url(&redis_url()).expect("url"))
        .build()
        .expect("client");
    admin.init().await.expect("connects");
    let () = admin.script_flush(false).await.expect("flushes scripts");

    let body = app.decide_ok(&request(&tx(), &card)).await;
    assert_eq!(
        body["degraded"],
        json!([]),
        "the script was loaded again on the spot: {body}"
    );
    assert_eq!(body["reasons"][0]["message"], "card used 2 times in the last minute");
}
