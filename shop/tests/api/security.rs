//! Attacks on the shop from a shopper's browser or API client, each written before
//! its fix and seen to succeed on the code before it.

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::*;
use crate::helpers::*;

/// Blocks the second distinct card of a customer or a device within a day, like a
/// card-testing rule; everything else is allowed.
const CARD_TESTING_POLICY: &str = r#"version: "card-testing"
thresholds: {challenge: 1.0, block: 1.0}
rules:
  - {id: carousel, action: block, when: "customer_distinct_cards_24h >= 2.0 || device_distinct_cards_24h >= 2.0", code: DEVICE_MANY_CARDS, message: "many cards"}
"#;

/// Six new cards for books from one shopper through the API, with these headers;
/// how many orders were paid and how many rejected.
async fn card_testing_burst(app: &TestApp, headers: &[(&str, &str)]) -> (usize, usize) {
    let token = app.shopper().await;
    let (mut paid, mut rejected) = (0, 0);
    for n in 0..6 {
        assert_eq!(app.put_in_cart(&token, BOOK, 1).await.status, StatusCode::OK);
        let key = uuid::Uuid::new_v4().simple().to_string();
        let answer = app.checkout_with(&token, &key, &new_card(n), headers).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        match answer.body["status"].as_str() {
            Some("paid") => paid += 1,
            Some("rejected") => rejected += 1,
            other => panic!("unexpected status {other:?}: {}", answer.body),
        }
    }
    (paid, rejected)
}

#[tokio::test]
async fn a_card_testing_burst_is_stopped_whatever_the_shopper_puts_in_the_headers() {
    let app = spawn_app(Risk::SidecarWith(CARD_TESTING_POLICY)).await;
    let plain = card_testing_burst(&app, &[("User-Agent", "Mozilla/5.0"), ("X-Device-Id", "dev_plain")]).await;
    assert_eq!(plain, (1, 5), "the rule stops the burst");
    for headers in [
        vec![("User-Agent", "4242424242424242"), ("X-Device-Id", "dev_ua")],
        vec![("User-Agent", "Mozilla/5.0 (4242-4242-4242-4242)")],
        vec![("User-Agent", "Mozilla/5.0"), ("X-Device-Id", "")],
        vec![("User-Agent", "Mozilla/5.0"), ("X-Device-Id", "4242424242424242")],
        vec![("X-Device-Id", &"d".repeat(300))],
    ] {
        let burst = card_testing_burst(&app, &headers).await;
        assert_eq!(burst, plain, "the same outcome with {headers:?}");
    }
    let not_decided: i64 = app
        .db()
        .await
        .query_one("select count(*) from risk_decision where source <> 'sidecar'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(not_decided, 0, "the sidecar decided every payment: no fallback");
}

#[tokio::test]
async fn a_device_cookie_of_digits_does_not_switch_off_the_check() {
    let app = spawn_app(Risk::SidecarWith(CARD_TESTING_POLICY)).await;
    let browser = Browser::new(&app);
    let url: reqwest::Url = app.address.parse().expect("url");
    let jar = reqwest::cookie::Jar::default();
    jar.add_cookie_str("shop_device=4242424242424242; Path=/", &url);
    let browser = Browser {
        http: reqwest::Client::builder()
            .cookie_provider(std::sync::Arc::new(jar))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        ..browser
    };
    let csrf = sign_up(&browser).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let added = browser
            .post("/cart/add", &[("csrf_token", &csrf), ("sku", BOOK), ("quantity", "1")])
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
        let paid = pay(&browser, &csrf, &format!("cookie-{n}"), &new_card(100 + n)).await;
        let order = paid.location.expect("to the order").replace("/orders/", "");
        let db = app.db().await;
        let status: String = db
            .query_one("select status from customer_order where public_id = $1", &[&order])
            .await
            .expect("order")
            .get(0);
        statuses.push(status);
    }
    assert_eq!(statuses, ["paid", "rejected", "rejected"]);
}

#[tokio::test]
async fn a_refusal_from_the_sidecar_holds_the_order_for_review_and_captures_nothing() {
    let app = spawn_app(Risk::Refusing(422)).await;
    let (token, answer) = app.buy(BOOK).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["status"], "in_review", "{}", answer.body);
    let order = answer.body["order_id"].as_str().expect("id").to_owned();
    assert_eq!(app.captures(&order).await, 0, "nothing captured");
    let held = app
        .scalar(
            "select count(*) from sandbox_authorisation s join payment_attempt a on a.authorisation_id = s.authorisation_id
               join customer_order o using (order_id) where o.public_id = $1 and s.status = 'authorised'",
            &order,
        )
        .await;
    assert_eq!(held, 1, "the authorisation is kept for the reviewer");
    let shown = app.get(&format!("/api/orders/{order}"), Some(&token)).await;
    assert_eq!(shown.body["status"], "in_review");
    let text = shown.body.to_string();
    assert!(
        !text.contains("needs_review") && !text.contains("fallback") && !text.contains("review\":"),
        "{text}"
    );
    assert!(
        app.metrics().await.contains("shop_risk_refusals_total{status=\"422\"}"),
        "metered"
    );
    let source: String = app
        .db()
        .await
        .query_one("select source from risk_decision", &[])
        .await
        .expect("decision")
        .get(0);
    assert_eq!(source, "refused", "not the fallback");
}

#[tokio::test]
async fn rate_limited_by_the_sidecar_is_the_documented_fallback() {
    let app = spawn_app(Risk::Refusing(429)).await;
    let (_, answer) = app.buy(BOOK).await;
    assert_eq!(answer.body["status"], "paid", "{}", answer.body);
    assert!(answer.body.get("needs_review").is_none(), "{}", answer.body);
    assert!(
        app.metrics()
            .await
            .contains("shop_risk_fallbacks_total{reason=\"rate_limited\"}")
    );
}

#[tokio::test]
async fn the_sidecar_is_asked_before_the_card_is_authorised() {
    let app = spawn_app(Risk::Sidecar).await;
    // A declined card is still counted by the sidecar.
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;
    let declined = app.checkout(&token, "declined-first", VISA_DECLINED).await;
    assert_eq!(declined.body["status"], "rejected", "{}", declined.body);
    let order = declined.body["order_id"].as_str().expect("id").to_owned();
    let decisions = app
        .scalar(
            "select count(*) from risk_decision d join payment_attempt a using (payment_attempt_id)
               join customer_order o using (order_id) where o.public_id = $1",
            &order,
        )
        .await;
    assert_eq!(decisions, 1, "the sidecar decided before the decline");
    let stored = app
        .http
        .get(format!(
            "{}/v1/decisions/{order}:pay_1",
            app.sidecar.as_ref().expect("sidecar").url
        ))
        .send()
        .await
        .expect("sidecar answers");
    assert_eq!(stored.status(), StatusCode::OK, "the sidecar counted the attempt");

    // A blocked payment is never authorised: nothing is held on the card.
    let (_, blocked) = app.buy(LAPTOP).await;
    assert_eq!(blocked.body["status"], "rejected");
    let order = blocked.body["order_id"].as_str().expect("id").to_owned();
    let authorisations = app
        .scalar(
            "select count(*) from sandbox_authorisation where idempotency_key = $1 || ':pay_1'",
            &order,
        )
        .await;
    assert_eq!(authorisations, 0, "no authorisation for a blocked payment");
}

#[tokio::test]
async fn two_checkouts_of_one_cart_at_once_make_one_order() {
    let app = spawn_app(Risk::Sidecar).await;
    let token = app.shopper().await;
    app.put_in_cart(&token, BOOK, 1).await;
    let keys: Vec<String> = (0..8).map(|i| format!("race-{i}")).collect();
    let answers = futures::future::join_all(keys.iter().map(|k| app.checkout(&token, k, VISA_OK))).await;
    let paid = answers.iter().filter(|a| a.body["status"] == "paid").count();
    let empty = answers
        .iter()
        .filter(|a| a.body["error"]["code"] == "empty_cart")
        .count();
    assert_eq!(
        (paid, empty),
        (1, 7),
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    let orders: i64 = app
        .db()
        .await
        .query_one("select count(*) from customer_order", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(orders, 1);
}

#[tokio::test]
async fn log_in_never_redirects_off_site() {
    let app = spawn_app(Risk::Disabled).await;
    let browser = Browser::new(&app);
    let csrf = browser.csrf("/signup").await;
    let email = unique_email();
    let signed = browser
        .post(
            "/signup",
            &[("csrf_token", &csrf), ("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r/evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "//evil.example",
        "/%2F/evil.example",
        "https://evil.example/",
        "/ /evil.example",
        "/\u{0b}/evil.example",
    ] {
        let form = browser.get(&format!("/login?next={}", urlencode(next))).await;
        let kept = hidden(&form.html, "next");
        assert!(!kept.contains("evil"), "{next:?} kept as {kept:?}");
        let logged = browser
            .post(
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("email", &email),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        let location = logged.location.expect("a redirect");
        assert!(
            location.starts_with('/') && !location.contains("evil"),
            "{next:?} -> {location:?}"
        );
        let resolved = reqwest::Url::parse("http://shop.test/")
            .expect("base")
            .join(&location)
            .expect("joins");
        assert_eq!(resolved.host_str(), Some("shop.test"), "{next:?} -> {location:?}");
    }
    let kept = browser.get("/login?next=/orders%3Fpage%3D2").await;
    assert_eq!(
        hidden(&kept.html, "next"),
        "/orders?page=2",
        "a path on the site is kept"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_mailbox_is_not_served_outside_development_mode() {
    let app = Spawn::new(Risk::Disabled).production().start().await;
    let page = app.http.get(app.url("/dev/mailbox")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let dev = spawn_app(Risk::Disabled).await;
    let page = dev.http.get(dev.url("/dev/mailbox")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK, "development mode shows it");
}

#[tokio::test]
async fn json_bodies_over_the_limit_are_413_and_readiness_names_no_internal_error() {
    let app = spawn_app(Risk::Disabled).await;
    let big = json!({"email": "a".repeat(70 * 1024), "password": PASSWORD});
    let answer = app.post("/api/auth/signup", None, &big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn a_page_number_near_the_largest_integer_is_not_a_server_error() {
    let app = spawn_app(Risk::Disabled).await;
    for page in [
        i64::MAX.to_string(),
        (i64::MAX - 1).to_string(),
        "-9223372036854775808".to_owned(),
    ] {
        let api = app.get(&format!("/api/products?page={page}&per_page=50"), None).await;
        assert_eq!(api.status, StatusCode::OK, "{page}: {}", api.body);
        let html = app
            .http
            .get(app.url(&format!("/?page={page}")))
            .send()
            .await
            .expect("page");
        assert_eq!(html.status(), StatusCode::OK, "{page}");
    }
}

#[tokio::test]
async fn pages_and_answers_carry_security_headers() {
    let app = spawn_app(Risk::Disabled).await;
    let home = app.http.get(app.url("/")).send().await.expect("page");
    let headers = home.headers();
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src"),
        "{csp}"
    );
    assert_eq!(
        headers.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
    assert!(headers.contains_key("referrer-policy"));
    let login = app.http.get(app.url("/login")).send().await.expect("page");
    assert_eq!(
        login.headers().get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "account pages are not cached"
    );
    let answer = app
        .post(
            "/api/auth/signup",
            None,
            &json!({"email": unique_email(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        answer.headers.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "tokens are not cached"
    );
}
