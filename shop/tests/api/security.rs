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
    assert_eq!(
        app.authorisation_status(&order).as_deref(),
        Some("authorised"),
        "the authorisation is kept for the reviewer"
    );
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

/// 408: the sidecar did not get our request in time (an overloaded host), which is a
/// timeout like any other, not a refusal of what we sent.
#[tokio::test]
async fn a_sidecar_request_timeout_is_the_timeout_fallback_not_a_hold() {
    let app = spawn_app(Risk::Refusing(408)).await;
    let (_, answer) = app.buy(BOOK).await;
    assert_eq!(answer.body["status"], "paid", "{}", answer.body);
    assert!(
        app.metrics()
            .await
            .contains("shop_risk_fallbacks_total{reason=\"timeout\"}")
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
    let decisions = app.decisions(&order).await;
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
    assert_eq!(
        app.authorisation_status(&order),
        None,
        "no authorisation for a blocked payment"
    );
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
    let app = Spawn::new(Risk::Disabled)
        .set("SHOP__AUTH__LOGIN_PER_ACCOUNT_PER_MINUTE", 100)
        .start()
        .await;
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
        assert_eq!(
            on_site(&kept.replace("&#x2f;", "/").replace("&#47;", "/")),
            Some("shop.test".to_owned()),
            "{next:?} kept as {kept:?}"
        );
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
        assert_eq!(
            on_site(&location),
            Some("shop.test".to_owned()),
            "{next:?} -> {location:?}"
        );
    }
    let kept = browser.get("/login?next=/orders%3Fpage%3D2").await;
    assert_eq!(
        hidden(&kept.html, "next"),
        "/orders?page=2",
        "a path on the site is kept"
    );
}

/// The host a browser on `shop.test` goes to when told `location`.
fn on_site(location: &str) -> Option<String> {
    let resolved = reqwest::Url::parse("http://shop.test/")
        .expect("base")
        .join(location)
        .ok()?;
    resolved.host_str().map(str::to_owned)
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
async fn the_mailbox_shows_one_recipient_when_asked() {
    let app = spawn_app(Risk::Disabled).await;
    let db = app.db().await;
    for (to, subject) in [("ada@example.com", "for ada"), ("grace@example.com", "for grace")] {
        db.execute(
            "insert into mailbox_message (recipient, subject, body) values ($1, $2, 'body')",
            &[&to, &subject],
        )
        .await
        .expect("insert");
    }
    let page = |query: &'static str| {
        let request = app.http.get(app.url(&format!("/dev/mailbox{query}")));
        async move { request.send().await.expect("page").text().await.expect("body") }
    };
    let ada = page("?to=ada%40example.com").await;
    assert!(ada.contains("for ada") && !ada.contains("for grace"), "{ada}");
    let everyone = page("").await;
    assert!(
        everyone.contains("for ada") && everyone.contains("for grace"),
        "{everyone}"
    );
    let blank = page("?to=").await;
    assert!(blank.contains("for grace"), "an empty filter is no filter: {blank}");
    let nobody = page("?to=%3Cscript%3E").await;
    assert!(
        nobody.contains("No messages.") && !nobody.contains("<script>"),
        "{nobody}"
    );
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

fn forge(key: &str, claims: &serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(key.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("sign")
}

#[tokio::test]
async fn a_token_signed_with_a_key_from_the_repository_is_refused() {
    let token_key = random_secret();
    let app = Spawn::new(Risk::Disabled)
        .production()
        .set("SHOP__AUTH__ACCESS_TOKEN_SECRET", &token_key)
        .start()
        .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let admin = |iss: Option<&str>, aud: Option<&str>| {
        let mut claims =
            json!({"sub": "1", "email": "admin@example.com", "role": "admin", "iat": now, "exp": now + 600});
        if let Some(iss) = iss {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            claims["aud"] = json!(aud);
        }
        claims
    };
    let shop = admin(Some("shop"), Some("shop"));
    for shipped in [
        "dev-only-secret-change-me-0123456789abcdef",
        "dev-only-access-token-key-not-for-production",
    ] {
        let answer = app.get("/api/orders", Some(&forge(shipped, &shop))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "signed with {shipped}");
    }
    for claims in [
        admin(None, None),
        admin(Some("other"), Some("shop")),
        admin(Some("shop"), Some("console")),
    ] {
        let answer = app.get("/api/orders", Some(&forge(&token_key, &claims))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{claims}");
    }
    let genuine = app.get("/api/orders", Some(&forge(&token_key, &shop))).await;
    assert_eq!(
        genuine.status,
        StatusCode::OK,
        "the shop's own key, issuer and audience"
    );
}

#[test]
fn the_shop_will_not_start_with_a_missing_or_shipped_secret() {
    for (key, value) in [
        ("SHOP__LOG__FORMAT", "json"),
        (
            "SHOP__AUTH__ACCESS_TOKEN_SECRET",
            "dev-only-secret-change-me-0123456789abcdef",
        ),
        ("SHOP__AUTH__ACCESS_TOKEN_SECRET", "too-short"),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shop"))
            .env_clear()
            .env("SHOP__SERVER__PORT", "0")
            .env("SHOP__AUTH__CSRF_SECRET", random_secret())
            .env(key, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the shop runs");
        // A shop that accepted the settings would serve on: give it a while, then stop it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let out = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.and_then(|s| s.code()), Some(64), "{key}={value}: {stderr}");
        assert!(stderr.contains("auth.access_token_secret"), "{key}={value}: {stderr}");
    }
}

/// Every string in the shop's settings: its defaults file and what this app overrode.
fn every_setting(app: &TestApp) -> Vec<String> {
    fn leaves(value: &serde_yaml::Value, out: &mut Vec<String>) {
        match value {
            serde_yaml::Value::String(s) => out.push(s.clone()),
            serde_yaml::Value::Mapping(m) => m.values().for_each(|v| leaves(v, out)),
            serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| leaves(v, out)),
            other => out.push(serde_yaml::to_string(other).unwrap_or_default().trim().to_owned()),
        }
    }
    let base = std::fs::read_to_string(repo_path("shop/configuration/base.yaml")).expect("base.yaml");
    let mut out = Vec::new();
    leaves(&serde_yaml::from_str(&base).expect("yaml"), &mut out);
    out.extend(app.env.values().cloned());
    out.push(String::new());
    out.sort();
    out.dedup();
    out
}

/// The 16-digit numbers with this BIN and last four whose keyed or plain hash is the
/// fingerprint, trying every key given.
fn rebuild(bin: &str, last4: &str, fingerprint: &str, keys: &[String]) -> Option<String> {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let hex = fingerprint.strip_prefix("fp_").unwrap_or(fingerprint);
    if hex.len() < 16 {
        return None; // Not a hash at all (a redacted fingerprint).
    }
    let macs: Vec<Hmac<Sha256>> = keys
        .iter()
        .map(|k| Hmac::<Sha256>::new_from_slice(k.as_bytes()).expect("any key"))
        .collect();
    let wanted = testkit::gateway::from_letters(hex)?;
    let mut candidate = format!("{bin}000000{last4}").into_bytes();
    for middle in 0..1_000_000u32 {
        let mut m = middle;
        for at in (6..12).rev() {
            candidate[at] = b'0' + (m % 10) as u8;
            m /= 10;
        }
        if !testkit::gateway::luhn(std::str::from_utf8(&candidate).expect("digits")) {
            continue;
        }
        let found = || Some(String::from_utf8(candidate.clone()).expect("digits"));
        if Sha256::digest(&candidate).starts_with(&wanted) {
            return found();
        }
        for mac in &macs {
            let mut mac = mac.clone();
            mac.update(&candidate);
            if mac.finalize().into_bytes().starts_with(&wanted) {
                return found();
            }
        }
    }
    None
}

#[tokio::test]
async fn card_numbers_cannot_be_rebuilt_from_the_shops_database_and_settings() {
    let app = spawn_app(Risk::Sidecar).await;
    let (_, answer) = app.buy(BOOK).await;
    assert_eq!(answer.body["status"], "paid");
    let db = app.db().await;
    let rows = db
        .query("select card_bin, card_last4, card_fingerprint from customer_order", &[])
        .await
        .expect("orders");
    assert_eq!(rows.len(), 1);
    let keys = every_setting(&app);
    assert!(keys.len() > 20, "{keys:?}");
    for row in &rows {
        let (bin, last4, fingerprint): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(
            rebuild(&bin, &last4, &fingerprint, &keys),
            None,
            "rebuilt from the shop's data"
        );
    }
    // The search works: with the key of a gateway it does find the number.
    let known = testkit::gateway::Books::new(b"a known key");
    let card: testkit::gateway::CardInput =
        serde_json::from_value(json!({"number": VISA_OK, "exp_month": 12, "exp_year": 2099, "cvc": "123"}))
            .expect("card");
    let token = known.tokenise(&card).expect("token");
    let found = rebuild(
        &token.bin,
        &token.last4,
        &token.fingerprint,
        &["a known key".to_owned()],
    );
    assert_eq!(found.as_deref(), Some(VISA_OK));
    // And nothing of the gateway's books sits in the shop's database.
    let gateway_tables: i64 = db
        .query_one(
            "select count(*) from information_schema.tables where table_name like 'sandbox%'",
            &[],
        )
        .await
        .expect("tables")
        .get(0);
    assert_eq!(gateway_tables, 0);
}

/// Signs up through the API from `ip` (the shop trusts the test's loopback proxy).
async fn sign_up_from(app: &TestApp, email: &str, ip: &str) -> StatusCode {
    let request = app
        .http
        .post(app.url("/api/auth/signup"))
        .header("X-Forwarded-For", ip)
        .json(&json!({"email": email, "password": PASSWORD}));
    app.send(request).await.status
}

async fn log_in_from(app: &TestApp, email: &str, password: &str, ip: &str) -> StatusCode {
    let request = app
        .http
        .post(app.url("/api/auth/login"))
        .header("X-Forwarded-For", ip)
        .json(&json!({"email": email, "password": password}));
    app.send(request).await.status
}

#[tokio::test]
async fn wrong_passwords_from_one_address_do_not_lock_the_owner_out() {
    let app = Spawn::new(Risk::Disabled)
        .set("SHOP__SERVER__TRUSTED_PROXIES", "127.0.0.1/32")
        .start()
        .await;
    let email = unique_email();
    assert_eq!(sign_up_from(&app, &email, "198.51.100.20").await, StatusCode::CREATED);
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(log_in_from(&app, &email, "wrong password!", "203.0.113.7").await);
    }
    assert_eq!(answers[0], StatusCode::UNAUTHORIZED);
    assert_eq!(
        answers[7],
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser is slowed: {answers:?}"
    );
    assert_eq!(
        log_in_from(&app, &email, PASSWORD, "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS,
        "even with the right password, from the guessing address"
    );
    assert_eq!(
        log_in_from(&app, &email, PASSWORD, "198.51.100.20").await,
        StatusCode::OK,
        "the owner, from their own address, is not locked out"
    );
}

#[tokio::test]
async fn sign_up_is_limited_per_address() {
    let app = Spawn::new(Risk::Disabled)
        .set("SHOP__SERVER__TRUSTED_PROXIES", "127.0.0.1/32")
        .set("SHOP__AUTH__SIGNUP_PER_IP_PER_MINUTE", 3)
        .start()
        .await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(sign_up_from(&app, &unique_email(), "203.0.113.9").await);
    }
    assert_eq!(
        answers,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(
        sign_up_from(&app, &unique_email(), "203.0.113.10").await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_database_url_that_asks_for_tls_gets_tls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that reads the client's SSLRequest, agrees to TLS, and reads what comes
    // next: a TLS handshake record from a client that can do TLS.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("a connection");
        let mut first = [0u8; 8];
        let _ = stream.read_exact(&mut first).await;
        let _ = stream.write_all(b"S").await;
        let mut next = [0u8; 1];
        let _ = stream.read_exact(&mut next).await;
        let _ = tx.send((first, next[0]));
    });
    let app = Spawn::new(Risk::Disabled)
        .set("SHOP__DEV__DEMO_DATA", false)
        .database(&format!("postgres://postgres@127.0.0.1:{port}/shop?sslmode=require"))
        .start()
        .await;
    let (first, next) = tokio::time::timeout(std::time::Duration::from_secs(10), rx)
        .await
        .expect("the shop connected and started TLS")
        .expect("bytes");
    // PostgreSQL's SSLRequest (length 8, code 80877103), then a TLS handshake record.
    assert_eq!(first, [0, 0, 0, 8, 4, 210, 22, 47], "the shop asked for TLS first");
    assert_eq!(next, 0x16, "a TLS ClientHello");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "no database behind it");
}
