//! Attacks on the sidecar by a caller with access to its port, each written before its
//! fix and seen to succeed on the code before it.

use serde_json::{Value, json};

use crate::helpers::*;

/// A card number in the shapes scanners miss, and where in a value it hides.
fn shapes() -> Vec<String> {
    vec![
        "4242424242424242".into(),
        "card 4242424242424242".into(),
        "x4242424242424242".into(),
        "4242424242424242/".into(),
        "4242.4242.4242.4242".into(),
        "4242\u{a0}4242\u{a0}4242\u{a0}4242".into(),
        "4242_4242_4242_4242".into(),
        "\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}"
            .into(),
        format!("{} 4242424242424242", "a".repeat(40)),
    ]
}

/// Puts a value into a request.
type Setter = fn(&mut Value, &str);
type Change = fn(&mut Value);

/// Every string field of a request, as a setter.
fn string_fields() -> Vec<(&'static str, Setter)> {
    vec![
        ("transaction_id", |v, s| v["transaction_id"] = json!(s)),
        ("customer.id", |v, s| v["customer"]["id"] = json!(s)),
        ("customer.email", |v, s| {
            v["customer"]["email"] = json!(format!("{s}@example.com"))
        }),
        ("payment.card_fingerprint", |v, s| {
            v["payment"]["card_fingerprint"] = json!(s)
        }),
        ("device.id", |v, s| v["device"]["id"] = json!(s)),
        ("device.user_agent", |v, s| v["device"]["user_agent"] = json!(s)),
        ("items[0].sku", |v, s| v["items"][0]["sku"] = json!(s)),
        ("metadata.note", |v, s| v["metadata"]["note"] = json!(s)),
        ("metadata", |v, s| v["metadata"] = json!({s: "a key"})),
        ("payment.method", |v, s| v["payment"]["method"] = json!(s)),
        ("occurred_at", |v, s| v["occurred_at"] = json!(s)),
    ]
}

/// No trace of the number in an answer: not even four of its digits.
fn assert_no_pan(text: &str, context: &str) {
    assert!(!text.contains("4242"), "{context}: {text}");
    assert!(!text.contains("\u{ff14}\u{ff12}"), "{context}: {text}");
}

/// No trace of the number in the logs, which every test of this process writes to (a
/// random id may hold "4242", so the test looks for the number's runs and shapes).
fn assert_no_pan_logged() {
    let logs = testkit::logs::captured();
    for trace in [
        "42424242",
        "4242 4242",
        "4242.4242",
        "4242_4242",
        "4242\u{a0}4242",
        "\u{ff14}\u{ff12}\u{ff14}\u{ff12}",
        "4242/",
    ] {
        assert!(!logs.contains(trace), "{trace:?} in the logs");
    }
}

#[tokio::test]
async fn a_card_number_in_any_shape_in_any_field_is_refused_and_never_echoed() {
    testkit::logs::capture();
    let app = spawn_app(Backend::Memory).await;
    for shape in shapes() {
        for (field, set) in string_fields() {
            let mut body = request(&tx(), "fp-pan-shapes");
            set(&mut body, &shape);
            let response = app.post_decision(&body).await;
            let status = response.status().as_u16();
            let text = response.text().await.expect("body");
            let context = format!("{field} = {shape:?}");
            assert_eq!(status, 422, "{context}: {text}");
            let error: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(error["error"]["code"], "pan_not_allowed", "{context}: {text}");
            assert_eq!(error["error"]["field"], field, "{context}");
            assert_no_pan(&text, &context);
        }
    }
    assert_no_pan_logged();
}

#[tokio::test]
async fn numbers_that_are_card_numbers_or_break_a_type_are_never_quoted() {
    testkit::logs::capture();
    let app = spawn_app(Backend::Memory).await;
    let cases: Vec<(Change, &str)> = vec![
        (
            |v| v["amount"]["value_minor"] = json!(4242424242424241.5),
            "validation_failed",
        ),
        (
            |v| v["amount"]["value_minor"] = json!(-4242424242424242i64),
            "pan_not_allowed",
        ),
        (
            |v| v["amount"]["value_minor"] = json!(4242424242424242.0),
            "pan_not_allowed",
        ),
        (
            |v| v["items"][0]["quantity"] = json!(-4242424242424241i64),
            "validation_failed",
        ),
        (|v| v["items"][0]["quantity"] = json!(4242.4242), "validation_failed"),
        (|v| v["payment"]["method"] = json!("4242x"), "validation_failed"),
        (
            |v| v["customer"]["id"] = json!(4242424242424241u64),
            "validation_failed",
        ),
        (|v| v["metadata"]["note"] = json!(["4242 nested"]), "validation_failed"),
    ];
    for (set, code) in cases {
        let mut body = request(&tx(), "fp-numbers");
        set(&mut body);
        let response = app.post_decision(&body).await;
        assert_eq!(response.status(), 422, "{body}");
        let text = response.text().await.expect("body");
        let error: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(error["error"]["code"], code, "{body}: {text}");
        assert_no_pan(&text, &body.to_string());
        assert!(
            error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{text}"
        );
    }
    let garbage = app
        .post_raw("{\"transaction_id\": 4242424242424241x}", Some("application/json"))
        .await;
    assert_eq!(garbage.status(), 400);
    assert_no_pan(&garbage.text().await.expect("body"), "invalid JSON");
    assert_no_pan_logged();
}

#[tokio::test]
async fn paths_queries_and_user_agents_never_reach_the_logs() {
    testkit::logs::capture();
    // Redis at a port nothing listens on: every store call fails and is logged.
    let app = Spawn::new(Backend::Memory)
        .set("RISK__REDIS__URL", format!("redis://127.0.0.1:{}", free_port()))
        .start()
        .await;
    let pan = "4242424242424242";
    for path in [
        format!("/v1/decisions/{pan}?q={pan}"),
        format!("/v1/decisions/tx-{pan}"),
        format!("/nowhere/{pan}?{pan}"),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .header("user-agent", format!("agent {pan}"))
            .send()
            .await
            .expect("request");
        assert!(response.status().is_client_error() || response.status().is_server_error());
    }
    let mut body = request(&tx(), "fp-logs");
    body["device"]["user_agent"] = json!("Mozilla/5.0");
    let decided = app
        .client
        .post(format!("{}/v1/decisions?card={pan}", app.address))
        .header("user-agent", format!("agent {pan}"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(decided.status(), 200, "degraded, still decided");
    let logs = testkit::logs::captured();
    assert!(logs.contains("velocity"), "the outage was logged");
    assert_no_pan_logged();
}

#[tokio::test]
async fn a_retry_that_changes_the_payment_is_409_and_counts_nothing() {
    for backend in BACKENDS {
        let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
        let app = Spawn::new(backend)
            .set("RISK__POLICY__PATH", policy.display())
            .start()
            .await;
        let card = format!("card-mismatch-{}", tx());
        let id = tx();
        let first = app.decide_ok(&request(&id, &card)).await;
        let changes: Vec<(&str, Change)> = vec![
            ("amount", |v| v["amount"]["value_minor"] = json!(1)),
            ("currency", |v| v["amount"]["currency"] = json!("USD")),
            ("customer", |v| v["customer"]["id"] = json!("cus-someone-else")),
            ("card", |v| v["payment"]["card_fingerprint"] = json!("fp-another-card")),
        ];
        for (what, change) in changes {
            let mut changed = request(&id, &card);
            change(&mut changed);
            let response = app.post_decision(&changed).await;
            assert_eq!(response.status(), 409, "{backend:?}: another {what}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["error"]["code"], "idempotency_mismatch");
        }
        // Other fields may change on a retry: the first decision stands.
        let mut retry = request(&id, &card);
        retry["device"]["ip"] = json!("198.51.100.1");
        assert_eq!(app.decide_ok(&retry).await, first, "{backend:?}");
        // Nothing was counted for the refused ones.
        let next = app.decide_ok(&request(&tx(), &card)).await;
        assert_eq!(next["reasons"][0]["message"], "card used 2 times in the last minute");
    }
}

#[tokio::test]
async fn the_feature_row_goes_only_to_the_request_that_asked() {
    let app = spawn_app(Backend::Redis).await;
    let id = tx();
    let body = request(&id, &format!("card-features-{}", tx()));
    let asked: Value = app
        .client
        .post(format!("{}/v1/decisions", app.address))
        .header("x-risk-features", "true")
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(asked["features"].is_object(), "{asked}");
    let retry = app.decide_ok(&body).await;
    assert!(retry.get("features").is_none(), "a retry: {retry}");
    let read: Value = app
        .get(&format!("/v1/decisions/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert!(read.get("features").is_none(), "a read: {read}");
    assert_eq!(read["decision_id"], asked["decision_id"]);
}

#[tokio::test]
async fn an_event_older_than_the_allowed_age_is_refused_at_the_edge() {
    let app = spawn_app(Backend::Memory).await;
    for old in ["0001-01-01T00:00:00Z", "2024-01-01T00:00:00Z"] {
        let mut body = request(&tx(), "card-old");
        body["occurred_at"] = json!(old);
        let response = app.post_decision(&body).await;
        assert_eq!(response.status(), 422, "{old}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["field"], "occurred_at");
    }
    let mut recent = request(&tx(), "card-old");
    let month_ago = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    recent["occurred_at"] = json!(
        month_ago
            .format(&time::format_description::well_known::Rfc3339)
            .expect("time")
    );
    assert_eq!(app.post_decision(&recent).await.status(), 200, "a month back is fine");
}

#[tokio::test]
async fn the_rate_limit_keys_on_the_peer_not_on_a_header_the_caller_chooses() {
    let app = Spawn::new(Backend::Memory)
        .set("RISK__LIMITS__PER_SECOND", 1)
        .set("RISK__LIMITS__BURST", 2)
        .start()
        .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let response = app
            .client
            .post(format!("{}/v1/decisions", app.address))
            .header("x-client-id", format!("a-new-name-{i}"))
            .json(&request(&tx(), "card-limit"))
            .send()
            .await
            .expect("request");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses[3], 429,
        "a new X-Client-Id each time is the same caller: {statuses:?}"
    );
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = Spawn::new(Backend::Memory)
        .set("RISK__SERVER__REQUEST_TIMEOUT_MS", 1000)
        .start()
        .await;
    let address = app.address.replace("http://", "");
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let head =
        "POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    // One byte every 200 ms: at most 5 s of trickling before the test gives up.
    for _ in 0..25 {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(std::time::Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "still reading the body after {:?}",
        started.elapsed()
    );
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn a_slow_redis_at_start_up_starts_degraded_and_counting_resumes() {
    let proxy = ChaosProxy::start(&redis_url().replace("redis://", "")).await;
    proxy.set_delay(std::time::Duration::from_millis(50));
    let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", format!("redis://{}", proxy.address))
        .set("RISK__REDIS__COMMAND_TIMEOUT_MS", 5)
        .set("RISK__DECISION__BUDGET_MS", 10)
        .set("RISK__POLICY__PATH", policy.display())
        .start()
        .await;
    let slow = app.decide_ok(&request(&tx(), "card-slow-start")).await;
    let degraded = slow["degraded"].as_array().cloned().unwrap_or_default();
    assert!(degraded.contains(&json!("velocity_unavailable")), "{slow}");
    proxy.set_delay(std::time::Duration::ZERO);
    let card = format!("card-slow-{}", tx());
    let resumed = eventually(std::time::Duration::from_secs(10), || {
        let body = request(&tx(), &card);
        let app = &app;
        async move {
            let decided = app.decide_ok(&body).await;
            decided["degraded"] == json!([])
        }
    })
    .await;
    assert!(resumed, "counting resumed once Redis was quick again");
}

#[tokio::test]
async fn a_rediss_url_connects_over_tls() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("a connection");
        let mut first = [0u8; 1];
        let _ = stream.read_exact(&mut first).await;
        let _ = tx.send(first[0]);
    });
    let _app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", format!("rediss://127.0.0.1:{port}"))
        .set("RISK__REDIS__CONNECT_TIMEOUT_MS", 200)
        .start()
        .await;
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx)
        .await
        .expect("the sidecar connected")
        .expect("a byte");
    assert_eq!(first, 0x16, "a TLS handshake record, not a plain RESP command");
}

#[test]
fn the_purge_script_deletes_keys_with_spaces() {
    use std::process::Command;
    let prefix = format!("test-purge-{}", tx());
    let key = format!("{prefix}:a key with spaces");
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["-u", &redis_url()])
            .args(args)
            .output()
            .expect("redis-cli runs")
    };
    cli(&["set", &key, "1"]);
    let purged = Command::new(repo_path("scripts/purge-keys.sh"))
        .arg(format!("{prefix}*"))
        .env("REDIS_URL", redis_url())
        .status()
        .expect("the script runs");
    assert!(purged.success());
    let left = cli(&["exists", &key]);
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0", "the key is gone");
}
