//! `POST /v1/feedback` and `POST /v1/decisions/{id}/outcome` over HTTP, against real
//! PostgreSQL: what is kept, idempotency, and every error row of the contract.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

struct Env {
    app: TestApp,
    db: TestDb,
    _spool: tempfile::TempDir,
}

async fn env_with(tune: impl FnOnce(Spawn) -> Spawn) -> Env {
    let db = TestDb::create().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let app = tune(Spawn::new(Backend::Redis).with_log(&db.url, spool.path()))
        .start()
        .await;
    Env { app, db, _spool: spool }
}

async fn env() -> Env {
    env_with(|s| s).await
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    pub async fn post_body(&self, path: &str, body: impl Into<reqwest::Body>, content_type: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("sent")
    }
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("error body"))
}

fn label(tx: &str, label: &str, source: &str) -> Value {
    json!({"transaction_id": tx, "label": label, "source": source})
}

#[tokio::test]
async fn every_label_is_kept_once_and_the_transaction_takes_the_highest_precedence() {
    let Env { app, db, .. } = env().await;
    let tx = tx();
    app.decide_ok(&request(&tx, "fp-fb-1")).await;
    let first = app
        .post_json("/v1/feedback", &label(&tx, "legitimate", "challenge_passed"))
        .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["transaction_id"], tx.as_str());
    assert_eq!(first["label"], "legitimate");
    assert_eq!(first["source"], "challenge_passed");
    assert!(first["recorded_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let again: Value = app
        .post_json("/v1/feedback", &label(&tx, "legitimate", "challenge_passed"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["recorded_at"], first["recorded_at"], "a repeat is the same label");
    let mut chargeback = label(&tx, "fraud", "chargeback");
    chargeback["reason"] = "dispute lost: 10.4 fraud".into();
    chargeback["reported_by"] = "shop".into();
    assert_eq!(
        app.post_json("/v1/feedback", &chargeback).await.status(),
        StatusCode::ACCEPTED
    );
    // A later, lower-precedence label does not override the chargeback.
    assert_eq!(
        app.post_json("/v1/feedback", &label(&tx, "legitimate", "customer_report"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    let pg = db.client().await;
    let sql = format!("select count(*) from risk.labels where transaction_id = '{tx}'");
    assert_eq!(count(&pg, &sql).await, 3, "every label kept, the repeat once");
    let row = pg
        .query_one(
            "select label, source, reason, reported_by from risk.transaction_labels where transaction_id = $1",
            &[&tx],
        )
        .await
        .expect("the transaction's label");
    assert_eq!(row.get::<_, String>("label"), "fraud");
    assert_eq!(row.get::<_, String>("source"), "chargeback");
    assert_eq!(row.get::<_, String>("reason"), "dispute lost: 10.4 fraud");
    assert_eq!(row.get::<_, String>("reported_by"), "shop");
}

#[tokio::test]
async fn a_label_sent_right_after_the_decision_waits_for_the_log_and_is_kept() {
    // The writer holds a batch for 400 ms: the label arrives while its decision is queued.
    let Env { app, db, .. } = env_with(|s| s.set("RISK__DECISION_LOG__FLUSH_INTERVAL_MS", 400)).await;
    let tx = tx();
    app.decide_ok(&request(&tx, "fp-fb-2")).await;
    let response = app
        .post_json("/v1/feedback", &label(&tx, "fraud", "challenge_failed"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let pg = db.client().await;
    let sql = format!("select count(*) from risk.labels where transaction_id = '{tx}'");
    assert_eq!(count(&pg, &sql).await, 1);
}

#[tokio::test]
async fn feedback_errors_follow_the_contract() {
    let Env { app, .. } = env().await;
    let tx = tx();
    app.decide_ok(&request(&tx, "fp-fb-3")).await;

    let (status, body) = error_of(app.post_body("/v1/feedback", "{nope", "application/json").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (status, body) = error_of(app.post_body("/v1/feedback", "[1]", "application/json").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (status, body) = error_of(app.post_body("/v1/feedback", "{}", "text/plain").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let mut big = label(&tx, "fraud", "manual_review");
    big["padding"] = "x".repeat(9 * 1024).into();
    let (status, body) = error_of(app.post_json("/v1/feedback", &big).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, body) = error_of(
        app.post_json("/v1/feedback", &label(&tx, "maybe", "manual_review"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(body["error"]["field"], "label");
    let mut pan = label(&tx, "fraud", "manual_review");
    pan["reason"] = "card 4111 1111 1111 1111 was stolen".into();
    let (status, body) = error_of(app.post_json("/v1/feedback", &pan).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "pan_not_allowed");
    assert_eq!(body["error"]["field"], "reason");
    assert!(!body.to_string().contains("4111"));
    let (status, body) = error_of(
        app.post_json("/v1/feedback", &label("tx-never-decided", "fraud", "chargeback"))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let mut early = label(&tx, "fraud", "chargeback");
    early["occurred_at"] = "2020-01-01T00:00:00Z".into();
    let (status, body) = error_of(app.post_json("/v1/feedback", &early).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "occurred_at", "not before the transaction");
}

#[tokio::test]
async fn over_its_rate_the_caller_gets_429_with_retry_after() {
    let Env { app, .. } = env_with(|s| s.set("RISK__LIMITS__PER_SECOND", 1).set("RISK__LIMITS__BURST", 1)).await;
    let body = label("tx-rate", "fraud", "chargeback");
    let mut limited = None;
    for _ in 0..5 {
        let response = app.post_json("/v1/feedback", &body).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("limited within five requests");
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_of(response).await.1["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn without_a_log_or_with_postgres_cut_it_answers_503_and_records_nothing() {
    let app = spawn_app(Backend::Memory).await;
    let id = tx();
    app.decide_ok(&request(&id, "fp-fb-4")).await;
    let response = app.post_json("/v1/feedback", &label(&id, "fraud", "chargeback")).await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, body) = error_of(response).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("store_unavailable"))
    );

    let db = TestDb::create().await;
    let proxy = ChaosProxy::start(&db.upstream()).await;
    let spool = tempfile::tempdir().expect("spool");
    let app = Spawn::new(Backend::Redis)
        .with_log(&db.url_via(&proxy.address), spool.path())
        .start()
        .await;
    let tx = crate::helpers::tx();
    app.decide_ok(&request(&tx, "fp-fb-5")).await;
    let pg = db.client().await;
    let logged = format!("select count(*) from risk.decisions where transaction_id = '{tx}'");
    assert!(eventually(Duration::from_secs(30), || async { count(&pg, &logged).await == 1 }).await);
    proxy.cut();
    for (path, body) in [
        ("/v1/feedback".to_owned(), label(&tx, "fraud", "chargeback")),
        (format!("/v1/decisions/{tx}/outcome"), json!({"status": "captured"})),
    ] {
        let response = app.post_json(&path, &body).await;
        assert!(response.headers().contains_key("retry-after"), "{path}");
        let (status, body) = error_of(response).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["error"]["code"], "store_unavailable");
    }
    proxy.restore();
    assert_eq!(
        count(&pg, "select count(*) from risk.labels").await,
        0,
        "nothing acknowledged"
    );
    let recorded = eventually(Duration::from_secs(30), || async {
        app.post_json("/v1/feedback", &label(&tx, "fraud", "chargeback"))
            .await
            .status()
            == StatusCode::ACCEPTED
    })
    .await;
    assert!(recorded, "accepted once PostgreSQL is back");
}

#[tokio::test]
async fn outcomes_are_kept_once_per_status_with_their_errors() {
    let Env { app, db, .. } = env().await;
    let tx = tx();
    app.decide_ok(&request(&tx, "fp-out-1")).await;
    let path = format!("/v1/decisions/{tx}/outcome");
    let declined = json!({"status": "declined", "code": "do_not_honor"});
    let response = app.post_json(&path, &declined).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let first: Value = response.json().await.expect("json");
    assert_eq!(first["transaction_id"], tx.as_str());
    assert_eq!(first["status"], "declined");
    let again: Value = app.post_json(&path, &declined).await.json().await.expect("json");
    assert_eq!(again["recorded_at"], first["recorded_at"]);
    assert_eq!(
        app.post_json(&path, &json!({"status": "authorised"})).await.status(),
        StatusCode::ACCEPTED
    );
    let pg = db.client().await;
    let rows = strings(
        &pg,
        &format!("select status || ':' || coalesce(code, '') from risk.outcomes where transaction_id = '{tx}' order by status"),
    )
    .await;
    assert_eq!(rows, ["authorised:", "declined:do_not_honor"]);

    let (status, body) = error_of(app.post_json("/v1/decisions/tx-unknown/outcome", &declined).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = error_of(app.post_json(&path, &json!({"status": "lost"})).await).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let (status, body) = error_of(
        app.post_json(&path, &json!({"status": "declined", "code": "a b"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("code"))
    );
    let big = json!({"status": "declined", "padding": "x".repeat(5 * 1024)});
    let (status, _) = error_of(app.post_json(&path, &big).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = error_of(app.post_body(&path, "nope", "application/json").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = error_of(app.post_body(&path, "{}", "text/plain").await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
