//! Every checkout branch, through the API, against a real sidecar (or a failing one).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn stock(app: &TestApp, sku: &str) -> i32 {
    app.db()
        .await
        .query_one("select stock from product where sku = $1", &[&sku])
        .await
        .expect("product")
        .get(0)
}

async fn decision_row(app: &TestApp, order_id: &str) -> tokio_postgres::Row {
    app.db()
        .await
        .query_one(
            "select d.source, d.outcome, d.decision_id, d.model_version, d.policy_version, d.reasons::text,
                    d.fallback_reason, o.needs_review, d.score
               from risk_decision d join payment_attempt a using (payment_attempt_id)
               join customer_order o using (order_id) where o.public_id = $1",
            &[&order_id],
        )
        .await
        .expect("a stored decision")
}

/// Puts a paid order back where a crash between the gateway's capture and our commit
/// would have left it: pending, its payment merely authorised.
async fn rewind_to_authorised(app: &TestApp, order: &str) {
    let db = app.db().await;
    db.execute(
        "update customer_order set status = 'pending' where public_id = $1",
        &[&order],
    )
    .await
    .expect("rewind order");
    db.execute(
        "update payment_attempt set status = 'authorised'
          where order_id = (select order_id from customer_order where public_id = $1)",
        &[&order],
    )
    .await
    .expect("rewind attempt");
}

#[tokio::test]
async fn an_allowed_payment_is_captured_once_and_the_decision_is_stored() {
    // Arrange
    let app = spawn_app(Risk::Sidecar).await;
    let before = stock(&app, BOOK).await;

    // Act
    let (_, answer) = app.buy(BOOK).await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["status"], "paid");
    let order = answer.body["order_id"].as_str().expect("order id");
    assert_eq!(answer.body["card_last4"], "4242");
    assert_eq!(app.captures(order).await, 1);
    assert_eq!(app.order_events(order).await, ["pending", "paid"]);
    assert_eq!(stock(&app, BOOK).await, before - 1);
    let row = decision_row(&app, order).await;
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("sidecar".into(), "allow".into())
    );
    assert!(
        row.get::<_, Option<String>>(2)
            .expect("decision id")
            .starts_with("dec_")
    );
    assert!(row.get::<_, Option<String>>(3).is_some(), "model version stored");
    assert_eq!(row.get::<_, Option<String>>(4).as_deref(), Some("shop-test"));
    assert!(!row.get::<_, bool>(7), "not for review");
}

#[tokio::test]
async fn a_challenged_payment_is_captured_only_after_the_right_code() {
    let app = spawn_app(Risk::Sidecar).await;
    let (token, answer) = app.buy(PHONE).await;
    assert_eq!(answer.body["status"], "awaiting_verification", "{}", answer.body);
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    assert_eq!(app.captures(&order).await, 0, "nothing captured before the code");
    let code = app.mailed_code().await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let answer = app.verify(&token, &order, wrong).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.body["error"]["code"], "wrong_code");
    assert_eq!(answer.body["remaining_attempts"], 4);
    assert_eq!(app.captures(&order).await, 0);

    let answer = app.verify(&token, &order, &code).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["status"], "paid");
    assert_eq!(app.captures(&order).await, 1);
    assert_eq!(
        app.order_events(&order).await,
        ["pending", "awaiting_verification", "paid"]
    );
    let reasons: String = decision_row(&app, &order).await.get(5);
    assert!(
        reasons.contains("HIGH_AMOUNT"),
        "the sidecar's reasons are stored: {reasons}"
    );

    // The code is spent: sending it again changes nothing.
    let again = app.verify(&token, &order, &code).await;
    assert_eq!(again.body["status"], "paid");
    assert_eq!(app.captures(&order).await, 1);
}

#[tokio::test]
async fn too_many_wrong_codes_void_the_payment_and_release_the_stock() {
    let app = spawn_app(Risk::Sidecar).await;
    let before = stock(&app, PHONE).await;
    let (token, answer) = app.buy(PHONE).await;
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let code = app.mailed_code().await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut last = None;
    for _ in 0..5 {
        last = Some(app.verify(&token, &order, wrong).await);
    }
    let last = last.expect("answered");
    assert_eq!(last.status, StatusCode::OK);
    assert_eq!(last.body["status"], "rejected");

    // The right code is too late now.
    let late = app.verify(&token, &order, &code).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(app.captures(&order).await, 0);
    assert_eq!(app.voids(&order), 1);
    assert_eq!(stock(&app, PHONE).await, before, "reserved stock released");
    assert!(app.metrics().await.contains("outcome=\"verification_failed\""));
}

#[tokio::test]
async fn an_expired_code_rejects_the_order() {
    let app = Spawn::new(Risk::Sidecar)
        .set("SHOP__VERIFICATION__CODE_TTL_SECS", 1)
        .start()
        .await;
    let (token, answer) = app.buy(PHONE).await;
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let code = app.mailed_code().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let answer = app.verify(&token, &order, &code).await;
    assert_eq!(answer.body["status"], "rejected", "{}", answer.body);
    assert_eq!(app.captures(&order).await, 0);
}

#[tokio::test]
async fn a_blocked_payment_is_voided_and_the_refusal_reveals_no_rule() {
    let app = spawn_app(Risk::Sidecar).await;
    let before = stock(&app, LAPTOP).await;
    let (_, answer) = app.buy(LAPTOP).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.body["status"], "rejected");
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    let text = answer.body.to_string();
    assert!(
        !text.contains("HIGH_AMOUNT") && !text.contains("reason") && !text.contains("score"),
        "{text}"
    );
    assert_eq!(app.captures(&order).await, 0);
    assert_eq!(stock(&app, LAPTOP).await, before);
    assert_eq!(app.order_events(&order).await, ["pending", "rejected"]);
    let row = decision_row(&app, &order).await;
    assert_eq!(row.get::<_, String>(1), "block");
}

#[tokio::test]
async fn a_declined_card_rejects_the_order_after_the_sidecar_counted_it() {
    let app = spawn_app(Risk::Sidecar).await;
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 2).await;
    let answer = app.checkout(&token, "declined-1", VISA_DECLINED).await;
    assert_eq!(answer.body["status"], "rejected", "{}", answer.body);
    let order = answer.body["order_id"].as_str().expect("order id").to_owned();
    assert_eq!(app.captures(&order).await, 0);
    let decisions = app.decisions(&order).await;
    assert_eq!(decisions, 1, "the sidecar is asked before the authorisation");
}

#[tokio::test]
async fn sidecar_down_falls_back_by_amount_and_marks_orders_for_review() {
    let app = spawn_app(Risk::Down).await;

    let (_, small) = app.buy(BOOK).await;
    assert_eq!(small.body["status"], "paid", "below the fallback amount: allowed");
    assert!(small.body.get("needs_review").is_none(), "not shown to the shopper");
    let row = decision_row(&app, small.body["order_id"].as_str().expect("id")).await;
    assert_eq!(row.get::<_, String>(0), "fallback");
    assert_eq!(row.get::<_, Option<String>>(6).as_deref(), Some("unavailable"));
    assert!(row.get::<_, bool>(7), "for review");

    let (_, large) = app.buy(PHONE).await;
    assert_eq!(large.body["status"], "awaiting_verification", "above it: challenged");
    let row = decision_row(&app, large.body["order_id"].as_str().expect("id")).await;
    assert!(row.get::<_, bool>(7), "for review");

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("shop_risk_fallbacks_total{reason=\"unavailable\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_sidecar_times_out_into_the_fallback() {
    let app = Spawn::new(Risk::Slow(Duration::from_millis(600)))
        .set("SHOP__RISK__TIMEOUT_MS", 100)
        .start()
        .await;
    let (_, answer) = app.buy(BOOK).await;
    assert_eq!(answer.body["status"], "paid", "{}", answer.body);
    let row = decision_row(&app, answer.body["order_id"].as_str().expect("id")).await;
    assert_eq!(row.get::<_, Option<String>>(6).as_deref(), Some("timeout"));
    assert!(row.get::<_, bool>(7), "for review");
}

#[tokio::test]
async fn a_garbled_sidecar_answer_falls_back() {
    let app = spawn_app(Risk::Garbage).await;
    let (_, answer) = app.buy(PHONE).await;
    assert_eq!(answer.body["status"], "awaiting_verification", "{}", answer.body);
    let row = decision_row(&app, answer.body["order_id"].as_str().expect("id")).await;
    assert_eq!(row.get::<_, Option<String>>(6).as_deref(), Some("invalid_response"));
}

#[tokio::test]
async fn a_duplicate_submission_makes_one_order_and_one_capture() {
    let app = spawn_app(Risk::Sidecar).await;
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;

    // A double click: the same form twice at once, then a browser retry.
    let (a, b) = tokio::join!(
        app.checkout(&token, "double-click", VISA_OK),
        app.checkout(&token, "double-click", VISA_OK)
    );
    let c = app.checkout(&token, "double-click", VISA_OK).await;

    let ids: Vec<&str> = [&a, &b, &c]
        .iter()
        .filter_map(|x| x.body["order_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3, "{} / {} / {}", a.body, b.body, c.body);
    assert!(ids.iter().all(|id| *id == ids[0]), "one order: {ids:?}");
    assert!([&a, &b, &c].iter().all(|x| x.body["status"] == "paid"));
    assert_eq!(app.captures(ids[0]).await, 1);
    let orders = app
        .scalar("select count(*) from customer_order where $1 <> ''", ids[0])
        .await;
    assert_eq!(orders, 1);
}

#[tokio::test]
async fn a_crash_between_capture_and_commit_is_finished_by_a_retry_without_charging_twice() {
    let app = spawn_app(Risk::Sidecar).await;
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;
    let first = app.checkout(&token, "crash-1", VISA_OK).await;
    let order = first.body["order_id"].as_str().expect("id").to_owned();
    assert_eq!(app.captures(&order).await, 1);
    // The gateway captured, but our commit never happened.
    rewind_to_authorised(&app, &order).await;

    let retry = app.checkout(&token, "crash-1", VISA_OK).await;

    assert_eq!(retry.body["order_id"], order.as_str());
    assert_eq!(retry.body["status"], "paid");
    assert_eq!(app.captures(&order).await, 1, "the gateway honoured the capture key");
}

#[tokio::test]
async fn checkout_refuses_bad_input_with_the_field_and_keeps_the_cart() {
    let app = spawn_app(Risk::Sidecar).await;
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;
    for (body, field) in [
        (checkout_body("4242424242424241"), "card"),
        (
            json!({"card": {"number": VISA_OK, "exp_month": 1, "exp_year": 2001, "cvc": "123"}, "shipping_country": "DE", "billing_country": "DE"}),
            "card",
        ),
        (
            json!({"card": {"number": VISA_OK, "exp_month": 1, "exp_year": 2099, "cvc": "123"}, "shipping_country": "Germany", "billing_country": "DE"}),
            "shipping_country",
        ),
    ] {
        let request = app
            .http
            .post(app.url("/api/checkout"))
            .bearer_auth(&token)
            .header("Idempotency-Key", uuid::Uuid::new_v4().simple().to_string())
            .json(&body);
        let answer = app.send(request).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer.body["error"]["field"], field);
    }
    let no_key = app.post("/api/checkout", Some(&token), &checkout_body(VISA_OK)).await;
    assert_eq!(no_key.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_key.body["error"]["field"], "Idempotency-Key");
    let cart = app.get("/api/cart", Some(&token)).await;
    assert_eq!(
        cart.body["lines"].as_array().map(Vec::len),
        Some(1),
        "the cart is intact"
    );
}

#[tokio::test]
async fn stock_is_checked_at_checkout() {
    let app = spawn_app(Risk::Sidecar).await;
    let token = app.shopper().await;
    app.db()
        .await
        .execute("update product set stock = 1 where sku = $1", &[&BOOK])
        .await
        .expect("stock");
    app.put_in_cart(&token, BOOK, 2).await;
    let answer = app.checkout(&token, "too-many", VISA_OK).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.body["error"]["code"], "out_of_stock");
    assert_eq!(stock(&app, BOOK).await, 1);
    let empty = app.checkout(&app.shopper().await, "empty", VISA_OK).await;
    assert_eq!(empty.body["error"]["code"], "empty_cart");
}

#[tokio::test]
async fn the_card_number_never_reaches_the_database_or_a_log() {
    let app = spawn_app(Risk::Sidecar).await;
    let (_, allowed) = app.buy(BOOK).await;
    assert_eq!(allowed.body["status"], "paid");
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;
    app.checkout(&token, "declined-pan", VISA_DECLINED).await;
    app.checkout(&token, "invalid-pan", "4242424242424241").await;
    // A number where a string belongs: the error must not quote it back or log it.
    let mut numeric = checkout_body(VISA_OK);
    numeric["card"]["number"] = json!(4242424242424242u64);
    let request = app
        .http
        .post(app.url("/api/checkout"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "numeric-pan")
        .json(&numeric);
    let refused = app.send(request).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!refused.body.to_string().contains(VISA_OK), "{}", refused.body);
    // Typed into the search box: the query string is not logged either.
    app.get(&format!("/api/products?q={VISA_OK}"), None).await;
    app.http
        .get(app.url(&format!("/?q={VISA_OK}")))
        .send()
        .await
        .expect("search page");

    let db = app.db().await;
    let tables: Vec<String> = db
        .query(
            "select table_name from information_schema.tables where table_schema = 'public'",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() >= 10, "{tables:?}");
    for table in tables {
        let dump: Option<String> = db
            .query_one(&format!("select string_agg(t::text, '\n') from \"{table}\" t"), &[])
            .await
            .expect("dump")
            .get(0);
        let dump = dump.unwrap_or_default();
        for pan in [VISA_OK, VISA_DECLINED, "4242424242424241"] {
            assert!(!dump.contains(pan), "{pan} found in table {table}");
        }
    }
    let logs = logs();
    assert!(logs.len() > 1000, "logs were captured");
    let sidecar_logs = app.sidecar.as_ref().expect("sidecar").logs();
    for pan in [VISA_OK, VISA_DECLINED, "4242424242424241"] {
        assert!(!logs.contains(pan), "{pan} in the shop's logs");
        assert!(!sidecar_logs.contains(pan), "{pan} in the sidecar's logs");
    }
}

#[tokio::test]
async fn an_order_abandoned_mid_payment_is_finished_by_the_reconciler() {
    let app = Spawn::new(Risk::Sidecar)
        .set("SHOP__VERIFICATION__RECONCILE_INTERVAL_SECS", 1)
        .set("SHOP__VERIFICATION__RECONCILE_AFTER_SECS", 0)
        .start()
        .await;
    let (_, answer) = app.buy(BOOK).await;
    let order = answer.body["order_id"].as_str().expect("id").to_owned();
    // As if the process died after the gateway's capture, before our commit, and the
    // shopper never came back.
    rewind_to_authorised(&app, &order).await;

    let finished = eventually(Duration::from_secs(10), || async {
        app.scalar(
            "select count(*) from customer_order where public_id = $1 and status = 'paid'",
            &order,
        )
        .await
            == 1
    })
    .await;

    assert!(finished, "the reconciler finished the order");
    assert_eq!(app.captures(&order).await, 1, "without a second capture");
}

#[tokio::test]
async fn a_code_never_entered_expires_and_the_reconciler_voids_the_authorisation() {
    let app = Spawn::new(Risk::Sidecar)
        .set("SHOP__VERIFICATION__CODE_TTL_SECS", 1)
        .set("SHOP__VERIFICATION__RECONCILE_INTERVAL_SECS", 1)
        .start()
        .await;
    let before = stock(&app, PHONE).await;
    let (_, answer) = app.buy(PHONE).await;
    let order = answer.body["order_id"].as_str().expect("id").to_owned();
    assert_eq!(answer.body["status"], "awaiting_verification");

    let rejected = eventually(Duration::from_secs(10), || async {
        app.scalar(
            "select count(*) from customer_order where public_id = $1 and status = 'rejected'",
            &order,
        )
        .await
            == 1
    })
    .await;

    assert!(rejected, "the abandoned challenge ended");
    assert_eq!(app.captures(&order).await, 0);
    assert_eq!(stock(&app, PHONE).await, before, "stock released");
    let events = app.order_events(&order).await;
    assert_eq!(events, ["pending", "awaiting_verification", "rejected"]);
}

#[tokio::test]
async fn another_shoppers_order_is_not_found_and_cannot_be_verified() {
    let app = spawn_app(Risk::Sidecar).await;
    let (_, answer) = app.buy(PHONE).await;
    let order = answer.body["order_id"].as_str().expect("id").to_owned();
    let code = app.mailed_code().await;
    let stranger = app.shopper().await;

    let read = app.get(&format!("/api/orders/{order}"), Some(&stranger)).await;
    let verify = app.verify(&stranger, &order, &code).await;
    let listed = app.get("/api/orders", Some(&stranger)).await;

    assert_eq!(read.status, StatusCode::NOT_FOUND);
    assert_eq!(verify.status, StatusCode::NOT_FOUND);
    assert_eq!(listed.body.as_array().map(Vec::len), Some(0));
    assert_eq!(
        app.captures(&order).await,
        0,
        "the stranger's right code captured nothing"
    );
}
