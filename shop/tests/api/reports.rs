//! What the shop tells the sidecar after a decision: outcomes and challenge labels,
//! through the outbox, arriving in the sidecar's decision log (one database for both).

use std::time::Duration;

use crate::helpers::*;

const DEADLINE: Duration = Duration::from_secs(30);

async fn attempt_key(app: &TestApp, order: &str) -> String {
    app.db()
        .await
        .query_one(
            "select a.idempotency_key from payment_attempt a join customer_order o using (order_id)
              where o.public_id = $1",
            &[&order],
        )
        .await
        .expect("attempt")
        .get(0)
}

async fn column(app: &TestApp, sql: &str, key: &str) -> Vec<String> {
    app.db()
        .await
        .query(sql, &[&key])
        .await
        .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
        .unwrap_or_default()
}

async fn outcomes(app: &TestApp, key: &str) -> Vec<String> {
    column(
        app,
        "select status || coalesce(':' || code, '') from risk.outcomes where transaction_id = $1 order by occurred_at, status",
        key,
    )
    .await
}

async fn labels(app: &TestApp, key: &str) -> Vec<String> {
    column(
        app,
        "select label || ':' || source from risk.labels where transaction_id = $1 order by occurred_at",
        key,
    )
    .await
}

async fn until(app: &TestApp, key: &str, want_outcomes: &[&str], want_labels: &[&str]) -> (Vec<String>, Vec<String>) {
    let _ = eventually(DEADLINE, || async {
        outcomes(app, key).await == want_outcomes && labels(app, key).await == want_labels
    })
    .await;
    (outcomes(app, key).await, labels(app, key).await)
}

#[tokio::test]
async fn a_passed_challenge_reports_authorised_captured_and_a_legitimate_label() {
    let app = spawn_app(Risk::Sidecar).await;
    let (token, answer) = app.buy(PHONE).await;
    assert_eq!(answer.body["status"], "awaiting_verification", "{}", answer.body);
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let code = app.mailed_code().await;
    assert_eq!(app.verify(&token, &order, &code).await.body["status"], "paid");
    let key = attempt_key(&app, &order).await;
    let (outcomes, labels) = until(
        &app,
        &key,
        &["authorised", "captured"],
        &["legitimate:challenge_passed"],
    )
    .await;
    assert_eq!(outcomes, ["authorised", "captured"]);
    assert_eq!(labels, ["legitimate:challenge_passed"]);
}

#[tokio::test]
async fn a_failed_challenge_reports_a_fraud_label_and_the_void() {
    let app = spawn_app(Risk::Sidecar).await;
    let (token, answer) = app.buy(PHONE).await;
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let code = app.mailed_code().await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        app.verify(&token, &order, wrong).await;
    }
    let key = attempt_key(&app, &order).await;
    let (outcomes, labels) = until(&app, &key, &["authorised", "voided"], &["fraud:challenge_failed"]).await;
    assert_eq!(outcomes, ["authorised", "voided"]);
    assert_eq!(labels, ["fraud:challenge_failed"]);
}

#[tokio::test]
async fn an_expired_code_sends_no_label() {
    let app = Spawn::new(Risk::Sidecar)
        .set("SHOP__VERIFICATION__CODE_TTL_SECS", 1)
        .start()
        .await;
    let (token, answer) = app.buy(PHONE).await;
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let code = app.mailed_code().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.verify(&token, &order, &code).await.body["status"], "rejected");
    let key = attempt_key(&app, &order).await;
    let (outcomes, labels) = until(&app, &key, &["authorised", "voided"], &[]).await;
    assert_eq!(outcomes, ["authorised", "voided"]);
    assert!(labels.is_empty(), "{labels:?}");
}

#[tokio::test]
async fn a_decline_is_reported_with_the_gateways_code() {
    let app = spawn_app(Risk::Sidecar).await;
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;
    let answer = app.checkout(&token, "declined-report", VISA_DECLINED).await;
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let key = attempt_key(&app, &order).await;
    let (outcomes, _) = until(&app, &key, &["declined:card_declined"], &[]).await;
    assert_eq!(outcomes, ["declined:card_declined"], "with the gateway's code");
}

#[tokio::test]
async fn reports_wait_in_the_outbox_while_the_sidecar_fails_and_a_refusal_is_given_up() {
    let app = spawn_app(Risk::Refusing(503)).await;
    let (_, answer) = app.buy(BOOK).await;
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let key = attempt_key(&app, &order).await;
    let db = app.db().await;
    let retried = eventually(DEADLINE, || async {
        db.query_one(
            "select count(*) from risk_report where transaction_id = $1 and attempts > 0
                and sent_at is null and given_up_at is null and last_status = 503",
            &[&key],
        )
        .await
        .map(|r| r.get::<_, i64>(0) >= 2)
        .unwrap_or(false)
    })
    .await;
    assert!(retried, "authorised and captured, both kept for a later try");

    let app = spawn_app(Risk::Refusing(422)).await;
    let (_, answer) = app.buy(BOOK).await;
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let key = attempt_key(&app, &order).await;
    let db = app.db().await;
    let given_up = eventually(DEADLINE, || async {
        db.query_one(
            "select count(*) from risk_report where transaction_id = $1 and given_up_at is not null and last_status = 422",
            &[&key],
        )
        .await
        .map(|r| r.get::<_, i64>(0) >= 1)
        .unwrap_or(false)
    })
    .await;
    assert!(given_up, "a refused report is not retried forever");
}

#[tokio::test]
async fn a_dispute_is_reported_and_a_lost_one_becomes_a_chargeback_label() {
    let app = spawn_app(Risk::Sidecar).await;
    let (_, answer) = app.buy(BOOK).await;
    assert_eq!(answer.body["status"], "paid", "{}", answer.body);
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let key = attempt_key(&app, &order).await;
    let authorisation = app.gateway.books.authorisation(&key).expect("authorised");
    // The bank contests the payment, through the sandbox's test hook over HTTP.
    let http = reqwest::Client::new();
    let opened: serde_json::Value = http
        .post(format!("{}/test/disputes", app.gateway.url))
        .json(&serde_json::json!({"authorisation_id": authorisation.authorisation_id, "reason": "fraudulent"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let (outcomes, labels) = until(&app, &key, &["authorised", "captured", "disputed:fraudulent"], &[]).await;
    assert_eq!(outcomes, ["authorised", "captured", "disputed:fraudulent"]);
    assert!(labels.is_empty(), "a dispute is not a label by itself");
    let closed = http
        .post(format!(
            "{}/test/disputes/{}/close",
            app.gateway.url,
            opened["dispute_id"].as_str().expect("id")
        ))
        .json(&serde_json::json!({"outcome": "lost"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(closed.status(), 200);
    let (_, labels) = until(
        &app,
        &key,
        &["authorised", "captured", "disputed:fraudulent"],
        &["fraud:chargeback"],
    )
    .await;
    assert_eq!(labels, ["fraud:chargeback"]);
    let status: String = app
        .db()
        .await
        .query_one("select status from payment_dispute", &[])
        .await
        .expect("dispute row")
        .get(0);
    assert_eq!(status, "lost");
}
