//! Health, readiness, metrics, and PostgreSQL going away and coming back.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app(Risk::Disabled).await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database"], "ok");
    app.get("/api/products", None).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("shop_http_request_duration_seconds_bucket{route=\"/api/products\",status=\"200\""),
        "{metrics}"
    );
}

/// Every shop metric the alert rules and the dashboard name is exported, registered at
/// start-up, and promtool accepts the scrape. (In this test process other tests may
/// have recorded first; the sidecar's check runs in a fresh process, `process.rs`.)
#[tokio::test]
async fn monitoring_names_match_the_shops_scrape() {
    let app = spawn_app(Risk::Disabled).await;
    let scrape = app.metrics().await;
    testkit::monitoring::assert_monitoring_matches(&scrape, "shop_");
    testkit::monitoring::assert_promtool_accepts(&scrape);
}

async fn proxied_app() -> (TestApp, ChaosProxy) {
    let url = fresh_database().await;
    let proxy = ChaosProxy::start(&postgres_address()).await;
    let via_proxy = url.replace(&postgres_address(), &proxy.address);
    let app = Spawn::new(Risk::Disabled).database(&via_proxy).start().await;
    (app, proxy)
}

#[tokio::test]
async fn postgres_down_gives_clear_503s_and_no_half_written_order_then_service_resumes() {
    let (app, proxy) = proxied_app().await;
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;

    proxy.cut();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.body["database"], "unreachable",
        "a fixed word, no error text: {}",
        ready.body
    );
    let api = app.get("/api/products", None).await;
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.body["error"]["code"], "unavailable");
    assert!(api.headers.contains_key("retry-after"));
    assert!(
        !api.body.to_string().contains("5432"),
        "no internal detail: {}",
        api.body
    );
    let page = app.http.get(app.url("/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.expect("html").contains("Temporarily unavailable"));
    let checkout = app.checkout(&token, "during-outage", VISA_OK).await;
    assert_eq!(checkout.status, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    let back = eventually(Duration::from_secs(10), || async {
        app.get("/readyz", None).await.status == StatusCode::OK
    })
    .await;
    assert!(back, "ready again once PostgreSQL is back");
    assert_eq!(app.get("/api/products", None).await.status, StatusCode::OK);
    let db = app.db().await;
    let orders: i64 = db
        .query_one("select count(*) from customer_order", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(orders, 0, "nothing half-written");
    let cart = app.get("/api/cart", Some(&token)).await;
    assert_eq!(
        cart.body["lines"].as_array().map(Vec::len),
        Some(1),
        "the cart is intact"
    );
    let paid = app.checkout(&token, "after-outage", VISA_OK).await;
    assert_eq!(paid.body["status"], "paid", "{}", paid.body);
}

#[tokio::test]
async fn the_shop_starts_while_postgres_is_down_and_migrates_when_it_returns() {
    let url = fresh_database().await;
    let proxy = ChaosProxy::start(&postgres_address()).await;
    proxy.cut();
    let via_proxy = url.replace(&postgres_address(), &proxy.address);
    let app = Spawn::new(Risk::Disabled)
        .database(&via_proxy)
        .set("SHOP__DEV__DEMO_DATA", false)
        .start()
        .await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    let back = eventually(Duration::from_secs(15), || async {
        app.get("/readyz", None).await.status == StatusCode::OK
    })
    .await;
    assert!(back, "migrated and ready");
    assert_eq!(app.get("/api/products", None).await.body["total"], 0);
}
