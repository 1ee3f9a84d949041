//! Labels and declines as features, over HTTP against real PostgreSQL and Redis (and the
//! memory store): what a label or a decline changes in the next decision's row, a label
//! superseded by one of higher precedence, and a label Redis could not count.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn features(app: &TestApp, body: &Value) -> Value {
    let response = app
        .client
        .post(format!("{}/v1/decisions", app.address))
        .header("x-risk-features", "true")
        .json(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["features"].clone()
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .json(&body)
        .send()
        .await
        .expect("sent")
}

fn label(tx: &str, label: &str, source: &str) -> Value {
    json!({"transaction_id": tx, "label": label, "source": source})
}

#[tokio::test]
async fn a_label_and_a_decline_change_the_next_decisions_features_for_card_device_and_ip() {
    for backend in BACKENDS {
        let db = TestDb::create().await;
        let spool = tempfile::tempdir().expect("spool");
        let app = Spawn::new(backend).with_log(&db.url, spool.path()).start().await;
        let card = unique("fp-lc");
        let first = tx();
        let before = features(&app, &request(&first, &card)).await;
        for name in ["card_fraud_count_30d", "device_fraud_count_7d", "ip_decline_count_1h"] {
            assert_eq!(before[name], 0.0, "{backend:?}: {name} before anything is known");
        }
        assert!(before["device_fraud_share_30d"].is_null(), "nothing labelled: no share");

        // The shop's challenge failed: fraud, counted for every entity of the payment.
        let r = post(&app, "/v1/feedback", label(&first, "fraud", "challenge_failed")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{backend:?}");
        let after = features(&app, &request(&tx(), &card)).await;
        for name in [
            "card_fraud_count_7d",
            "card_fraud_count_30d",
            "customer_fraud_count_30d",
            "device_fraud_count_30d",
            "ip_fraud_count_30d",
            "email_fraud_count_30d",
        ] {
            assert_eq!(after[name], 1.0, "{backend:?}: {name}");
        }
        assert_eq!(after["device_fraud_share_30d"], 1.0, "{backend:?}");
        assert_eq!(after["ip_fraud_share_30d"], 1.0, "{backend:?}");

        // A manual review outranks the challenge: legitimate after all, counters back.
        let r = post(&app, "/v1/feedback", label(&first, "legitimate", "manual_review")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{backend:?}");
        // The lower label again changes nothing: the standing label is still the review's.
        let r = post(&app, "/v1/feedback", label(&first, "fraud", "challenge_failed")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{backend:?}");
        let reviewed = features(&app, &request(&tx(), &card)).await;
        assert_eq!(reviewed["card_fraud_count_30d"], 0.0, "{backend:?}");
        assert_eq!(reviewed["email_fraud_count_30d"], 0.0, "{backend:?}");
        assert_eq!(
            reviewed["device_fraud_share_30d"], 0.0,
            "{backend:?}: labelled, not fraud"
        );

        // A decline, reported twice (a retry): one decline for card, customer, device and IP.
        for _ in 0..2 {
            let body = json!({"status": "declined", "code": "card_declined"});
            let r = post(&app, &format!("/v1/decisions/{first}/outcome"), body).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED, "{backend:?}");
        }
        let declined = features(&app, &request(&tx(), &card)).await;
        for name in [
            "card_decline_count_1h",
            "customer_decline_count_24h",
            "device_decline_count_1h",
            "ip_decline_count_24h",
        ] {
            assert_eq!(declined[name], 1.0, "{backend:?}: {name}");
        }
        // Another card on another device shares only the IP.
        let other = features(&app, &request(&tx(), &format!("{card}-other"))).await;
        assert_eq!(other["card_decline_count_1h"], 0.0, "{backend:?}");
        assert_eq!(other["ip_decline_count_1h"], 1.0, "{backend:?}");
    }
}

#[tokio::test]
async fn a_label_redis_could_not_count_answers_503_is_kept_and_is_counted_when_sent_again() {
    let db = TestDb::create().await;
    let spool = tempfile::tempdir().expect("spool");
    let proxy = ChaosProxy::start(redis_url().trim_start_matches("redis://")).await;
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", format!("redis://{}", proxy.address))
        .with_log(&db.url, spool.path())
        .start()
        .await;
    let card = unique("fp-lc-cut");
    let first = tx();
    features(&app, &request(&first, &card)).await;
    // The decision is in the log before Redis goes.
    let client = db.client().await;
    let logged = eventually(Duration::from_secs(10), || async {
        count(
            &client,
            &format!("select count(*) from risk.decisions where transaction_id = '{first}'"),
        )
        .await
            == 1
    })
    .await;
    assert!(logged, "the decision reached the log");

    proxy.cut();
    let r = post(&app, "/v1/feedback", label(&first, "fraud", "chargeback")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    let kept = count(
        &client,
        &format!("select count(*) from risk.labels where transaction_id = '{first}'"),
    )
    .await;
    assert_eq!(kept, 1, "the label is kept all the same");

    proxy.restore();
    let counted = eventually(Duration::from_secs(10), || async {
        post(&app, "/v1/feedback", label(&first, "fraud", "chargeback"))
            .await
            .status()
            == StatusCode::ACCEPTED
    })
    .await;
    assert!(counted, "sent again once Redis is back: 202");
    let after = features(&app, &request(&tx(), &card)).await;
    assert_eq!(after["card_fraud_count_30d"], 1.0, "counted once sent again");
    let rows = count(
        &client,
        &format!("select count(*) from risk.labels where transaction_id = '{first}'"),
    )
    .await;
    assert_eq!(rows, 1, "and recorded once");
}
