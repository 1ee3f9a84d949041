//! The decision log against real PostgreSQL: rows arrive, nothing is lost while
//! PostgreSQL is cut, the spool's bound holds. (The SIGKILL case is in `process.rs`.)

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

const DEADLINE: Duration = Duration::from_secs(30);
/// An export's upper bound far ahead: 2200-01-01.
const UNTIL_2200: i64 = 7_258_118_400_000;

#[tokio::test]
async fn a_decision_reaches_the_log_once_with_its_summary_and_never_the_address() {
    let db = TestDb::create().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let app = Spawn::new(Backend::Redis).with_log(&db.url, spool.path()).start().await;
    let id = tx();
    let mut body = request(&id, "fp-log-1");
    body["customer"]["email"] = "Ann.Example@Example.COM".into();
    body["device"]["ip"] = "2001:db8:1:2:3:4:5:6".into();
    let first = app.decide_ok(&body).await;
    let retry = app.decide_ok(&body).await;
    assert_eq!(first["decision_id"], retry["decision_id"]);

    let pg = db.client().await;
    let sql = format!("select count(*) from risk.decisions where transaction_id = '{id}'");
    assert!(
        eventually(DEADLINE, || async { count(&pg, &sql).await == 1 }).await,
        "the decision reached risk.decisions"
    );
    // Give a (wrong) second row from the retry every chance to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&pg, &sql).await, 1, "a retry is the same decision");

    let row = pg
        .query_one(
            "select decision_id, decision, score, reasons, features, model_version, policy_version, degraded, \
                    customer_id, email_domain, email_hash, card_fingerprint, card_bin, card_last4, ip::text, \
                    device_id, amount_minor, currency, evaluated_in_us, decided_at, metadata, items, \
                    row_to_json(d)::text as whole \
               from risk.decisions d where transaction_id = $1",
            &[&id],
        )
        .await
        .expect("row");
    assert_eq!(
        row.get::<_, String>("decision_id"),
        first["decision_id"].as_str().expect("id")
    );
    assert_eq!(
        row.get::<_, String>("decision"),
        first["decision"].as_str().expect("decision")
    );
    assert_eq!(Some(row.get::<_, f64>("score")), first["score"].as_f64());
    assert_eq!(row.get::<_, Value>("reasons"), first["reasons"]);
    let features: Value = row.get("features");
    assert_eq!(features.as_object().map(|o| o.len()), Some(shared::N_FEATURES));
    assert_eq!(features["card_count_1m"], 1.0, "counts include the transaction itself");
    assert!(features["email_disposable"].is_number());
    assert_eq!(
        row.get::<_, String>("model_version"),
        first["model_version"].as_str().expect("v")
    );
    assert_eq!(row.get::<_, Vec<String>>("degraded"), Vec::<String>::new());
    assert_eq!(row.get::<_, String>("customer_id"), "cus-fp-log-1");
    assert_eq!(row.get::<_, String>("email_domain"), "example.com");
    let hash: String = row.get("email_hash");
    assert_eq!(hash.len(), 64, "a keyed hash of the address");
    assert_eq!(row.get::<_, String>("card_bin"), "411111");
    assert_eq!(row.get::<_, String>("card_last4"), "1111");
    assert_eq!(
        row.get::<_, String>("ip"),
        "2001:db8:1:2:3:4:5:6/128",
        "the full address, not its /64"
    );
    assert_eq!(row.get::<_, i64>("amount_minor"), 4599);
    assert_eq!(row.get::<_, String>("currency"), "EUR");
    assert_eq!(row.get::<_, Value>("metadata")["order"], "1042");
    assert_eq!(row.get::<_, Value>("items")[0]["sku"], "sku-1");
    let decided_at: std::time::SystemTime = row.get("decided_at");
    let ulid = ulid::Ulid::from_string(&first["decision_id"].as_str().expect("id")[4..]).expect("ulid");
    assert_eq!(decided_at, ulid.datetime(), "decided_at is the ULID's time");
    let whole: String = row.get("whole");
    assert!(
        !whole.to_lowercase().contains("ann.example"),
        "the address is not stored: {whole}"
    );

    // The same address hashes the same way whatever its case.
    let mut again = request(&tx(), "fp-log-2");
    again["customer"]["email"] = "ann.example@example.com".into();
    app.decide_ok(&again).await;
    let same = "select count(distinct email_hash) from risk.decisions where email_hash is not null";
    assert!(
        eventually(DEADLINE, || async {
            count(&pg, "select count(*) from risk.decisions").await == 2
        })
        .await
    );
    assert_eq!(count(&pg, same).await, 1);

    let ready: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["dependencies"]["decision_log"]["state"], "writing");
    let metrics = app.metrics().await;
    for name in [
        "risk_decision_log_queue_depth",
        "risk_decision_log_spool_bytes",
        "risk_decision_log_rows_written_total",
        "risk_decision_log_write_duration_seconds",
        "risk_decision_log_oldest_unwritten_age_seconds",
        "risk_decision_log_rows_dropped_total",
    ] {
        assert!(metrics.contains(name), "{name} is exported");
    }
}

#[tokio::test]
async fn without_a_database_it_decides_and_says_no_log_is_kept() {
    let app = spawn_app(Backend::Memory).await;
    app.decide_ok(&request(&tx(), "fp-nolog")).await;
    let ready: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["dependencies"]["decision_log"]["state"], "disabled");
    assert!(app.metrics().await.contains("risk_decision_log_enabled"));
}

#[tokio::test]
async fn a_spool_that_cannot_be_opened_stops_start_up() {
    let db = TestDb::create().await;
    let file = tempfile::NamedTempFile::new().expect("file");
    // A regular file where the spool directory should be.
    let settings = risk_sidecar::settings::Settings::load_with(
        [
            ("RISK__SERVER__PORT", "0".to_owned()),
            ("RISK__MODEL__DIR", repo_path("models/fixture").display().to_string()),
            ("RISK__DECISION_LOG__URL", db.url.clone()),
            ("RISK__DECISION_LOG__EMAIL_HASH_KEY", TEST_EMAIL_KEY.to_owned()),
            ("RISK__DECISION_LOG__SPOOL_DIR", file.path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    )
    .expect("settings");
    let Err(err) = risk_sidecar::startup::Application::build(settings).await else {
        panic!("start-up must fail");
    };
    assert!(format!("{err:#}").contains("spool"), "{err:#}");
}

/// Steady load from several clients while PostgreSQL is cut for 30 s and restored:
/// every decision answered is in the log once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_for_30s_under_load_loses_nothing_and_duplicates_nothing() {
    let db = TestDb::create().await;
    let proxy = ChaosProxy::start(&db.upstream()).await;
    let spool = tempfile::tempdir().expect("spool dir");
    let app = Arc::new(
        Spawn::new(Backend::Redis)
            .with_log(&db.url_via(&proxy.address), spool.path())
            .start()
            .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let app = Arc::clone(&app);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let body = request(&tx(), &format!("fp-chaos-{c}"));
                    let answer = app.decide_ok(&body).await;
                    ids.push(answer["decision_id"].as_str().expect("id").to_owned());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                ids
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.cut();
    let spooling = eventually(DEADLINE, || async {
        let ready: Value = app.get("/readyz").await.json().await.expect("json");
        ready["dependencies"]["decision_log"]["state"] == "spooling"
            && ready["dependencies"]["decision_log"]["spool_bytes"].as_u64() > Some(0)
    })
    .await;
    assert!(spooling, "with PostgreSQL cut, rows go to the spool");
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.restore();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = Vec::new();
    for c in clients {
        answered.extend(c.await.expect("client"));
    }
    let unique: HashSet<&String> = answered.iter().collect();
    assert_eq!(unique.len(), answered.len(), "every answer a new decision");
    assert!(answered.len() > 200, "steady load: {} decisions", answered.len());

    let pg = db.client().await;
    let want = answered.len() as i64;
    let all_in = eventually(Duration::from_secs(60), || async {
        count(&pg, "select count(*) from risk.decisions").await == want
    })
    .await;
    let logged: HashSet<String> = strings(&pg, "select decision_id from risk.decisions")
        .await
        .into_iter()
        .collect();
    let missing = answered.iter().filter(|id| !logged.contains(*id)).count();
    assert!(all_in, "{missing} of {want} decisions missing from the log");
    assert_eq!(missing, 0);
    assert_eq!(
        count(&pg, "select count(*) - count(distinct decision_id) from risk.decisions").await,
        0,
        "no decision twice"
    );
    let drained = eventually(DEADLINE, || async {
        let ready: Value = app.get("/readyz").await.json().await.expect("json");
        ready["dependencies"]["decision_log"]["state"] == "writing"
            && ready["dependencies"]["decision_log"]["spool_bytes"] == 0
    })
    .await;
    assert!(drained, "the spool is empty and the writer writes directly again");
}

#[tokio::test]
async fn the_spool_stays_within_its_bound_and_decisions_go_on() {
    let spool = tempfile::tempdir().expect("spool dir");
    let dead = format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port());
    let bound = 20_000u64;
    let app = Spawn::new(Backend::Memory)
        .with_log(&dead, spool.path())
        .set("RISK__DECISION_LOG__SPOOL_MAX_BYTES", bound)
        .start()
        .await;
    for i in 0..60 {
        app.decide_ok(&request(&tx(), &format!("fp-bound-{i}"))).await;
    }
    let path = spool.path().join("decisions.spool");
    let filled = eventually(DEADLINE, || async {
        let ready: Value = app.get("/readyz").await.json().await.expect("json");
        let bytes = ready["dependencies"]["decision_log"]["spool_bytes"]
            .as_u64()
            .unwrap_or(0);
        // Rows are ~1.5 kB: the bound holds well under 60 of them.
        bytes > bound / 2 && std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes)
    })
    .await;
    assert!(filled, "the spool filled");
    assert!(std::fs::metadata(&path).expect("spool").len() <= bound);
    let metrics = app.metrics().await;
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("risk_decision_log_rows_dropped_total{reason=\"spool_full\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(dropped > 0.0, "rows that did not fit are counted");
}

/// The log exported as a history replays to the very features it logged, with its
/// labels and outcomes; and it rebuilds the counters of an emptied Redis.
#[tokio::test]
async fn the_exported_log_replays_to_the_logged_features_and_rebuilds_the_counters() {
    use futures::TryStreamExt;
    let db = TestDb::create().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__KEY_PREFIX", &prefix)
        .with_log(&db.url, spool.path())
        .start()
        .await;
    let card = unique("fp-export");
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = tx();
        let mut body = request(&id, &card);
        body["occurred_at"] = format!("2026-11-30T10:00:0{i}Z").into();
        body["customer"]["email"] = "Ann@Example.com".into();
        app.decide_ok(&body).await;
        ids.push(id);
    }
    let pg = db.client().await;
    assert!(
        eventually(DEADLINE, || async {
            count(&pg, "select count(*) from risk.decisions").await == 4
        })
        .await
    );
    let feedback = serde_json::json!({"transaction_id": ids[1], "label": "fraud", "source": "chargeback"});
    let response = app
        .client
        .post(format!("{}/v1/feedback", app.address))
        .json(&feedback)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);
    let outcome = serde_json::json!({"status": "declined", "code": "card_declined"});
    let response = app
        .client
        .post(format!("{}/v1/decisions/{}/outcome", app.address, ids[2]))
        .json(&outcome)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);

    let records: Vec<shared::HistoryRecord> = risk_sidecar::decision_log::export::history(&pg, 0, UNTIL_2200)
        .await
        .expect("export")
        .try_collect()
        .await
        .expect("records");
    let exported: Vec<&str> = records.iter().map(|r| r.request.transaction_id.as_str()).collect();
    assert_eq!(
        exported,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "in transaction time order"
    );
    assert_eq!(records[1].label, Some(shared::Label::Fraud));
    assert_eq!(records[1].label_source, Some(shared::LabelSource::Chargeback));
    assert!(records[1].labelled_at.is_some());
    assert_eq!(records[0].label, None);
    assert_eq!(records[2].outcomes[0].status, shared::OutcomeStatus::Declined);
    assert_eq!(records[2].outcomes[0].code.as_deref(), Some("card_declined"));
    let text = serde_json::to_string(&records).expect("json");
    assert!(!text.to_lowercase().contains("ann@"), "the address is not exported");

    // Replayed through training's code, the history gives the features serving logged.
    let settings = risk_sidecar::settings::Settings::load_with(Default::default()).expect("settings");
    let mut replayer = risk_sidecar::replay::Replayer::new(&settings);
    for (i, record) in records.iter().enumerate() {
        let row = replayer.row(record, i + 1).expect("replays");
        let logged: serde_json::Value = pg
            .query_one(
                "select features from risk.decisions where transaction_id = $1",
                &[&record.request.transaction_id],
            )
            .await
            .expect("row")
            .get(0);
        let replayed = serde_json::to_value(row.features.by_name()).expect("json");
        assert_eq!(replayed, logged, "features of {}", record.request.transaction_id);
    }

    // Redis loses its data; the log puts the counts back.
    let redis = risk_sidecar::store::RedisStore::connect(&redis_url(), &{
        let mut s = settings.redis.clone();
        s.key_prefix = format!("{prefix}-rebuilt");
        s.command_timeout_ms = 1000;
        s
    })
    .await
    .expect("redis");
    let store = risk_sidecar::store::VelocityStore::Redis(redis);
    let features =
        risk_sidecar::decision::features::FeatureContext::new(&settings.currency.rates, &settings.currency.reference)
            .with_labels(true, risk_sidecar::decision::features::EmailKeying::Exported);
    let stream = risk_sidecar::decision_log::export::history(&pg, 0, UNTIL_2200)
        .await
        .expect("export");
    let counted = risk_sidecar::replay::rebuild_counters(&store, &features, stream, |_| {})
        .await
        .expect("rebuild");
    assert_eq!(counted, 4);
    let again = risk_sidecar::decision_log::export::history(&pg, 0, UNTIL_2200)
        .await
        .expect("export");
    assert_eq!(
        risk_sidecar::replay::rebuild_counters(&store, &features, again, |_| {})
            .await
            .expect("rebuild"),
        4
    );
    let rebuilt = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__KEY_PREFIX", format!("{prefix}-rebuilt"))
        .set("RISK__POLICY__PATH", {
            let (dir, path) = policy_file(SHOW_CARD_COUNT);
            std::mem::forget(dir);
            path.display().to_string()
        })
        .start()
        .await;
    let mut next = request(&tx(), &card);
    next["occurred_at"] = "2026-11-30T10:00:30Z".into();
    let answer = rebuilt.decide_ok(&next).await;
    let features = answer.get("features");
    assert!(features.is_none());
    let message = answer["reasons"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("card used 5 times"),
        "the rebuilt minute holds the four logged and this one, each counted once despite two rebuilds: {message}"
    );
    // The label and the decline are back too.
    let mut probe = request(&tx(), &card);
    probe["occurred_at"] = "2026-11-30T10:00:31Z".into();
    let response = rebuilt
        .client
        .post(format!("{}/v1/decisions", rebuilt.address))
        .header("x-risk-features", "true")
        .json(&probe)
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["features"]["card_fraud_count_30d"], 1.0, "{body}");
    assert_eq!(body["features"]["device_fraud_share_30d"], 1.0, "{body}");
    assert_eq!(body["features"]["card_decline_count_24h"], 1.0, "{body}");
}

/// A spooled row PostgreSQL refuses (here one breaking a check constraint) is set aside
/// and counted; every other row behind it still reaches the log.
#[tokio::test]
async fn a_row_postgres_refuses_does_not_hold_up_the_rows_behind_it() {
    use risk_sidecar::decision_log::spool::{Record, Spool, SpooledIds};
    let spool = tempfile::tempdir().expect("spool dir");
    let dead = format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port());
    let app = Spawn::new(Backend::Memory).with_log(&dead, spool.path()).start().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let answer = app.decide_ok(&request(&tx(), &format!("fp-poison-{i}"))).await;
        ids.push(answer["decision_id"].as_str().expect("id").to_owned());
    }
    app.shutdown.shutdown().await;
    // The stopped sidecar's writer lets go of the spool once drained.
    let mut reopened = None;
    let free = eventually(DEADLINE, || {
        let got = Spool::open(spool.path(), 1 << 30, SpooledIds::default()).ok();
        let ok = got.is_some();
        reopened = got;
        async move { ok }
    })
    .await;
    assert!(free, "the spool is released");
    let (mut file, recovered) = reopened.expect("spool");
    assert_eq!(recovered.records, 3);
    let rows = file.peek(10).expect("rows");
    let mut poison: Value = serde_json::from_slice(&rows[0].0).expect("json");
    poison["decision_id"] = format!("dec_{}", ulid::Ulid::new()).into();
    poison["decision"] = "maybe".into(); // risk.decisions checks decision in (allow, challenge, block)
    let poison = serde_json::to_vec(&poison).expect("json");
    let head: Value = serde_json::from_slice(&poison).expect("json");
    file.append(&[Record {
        transaction_id: head["transaction_id"].as_str().expect("tx"),
        decided_at_ms: head["decided_at_ms"].as_i64().expect("ms"),
        payload: &poison,
    }])
    .expect("append");
    // And one more good row after it.
    let good = rows[1].0.clone();
    let mut last: Value = serde_json::from_slice(&good).expect("json");
    let last_id = format!("dec_{}", ulid::Ulid::new());
    last["decision_id"] = last_id.clone().into();
    let last = serde_json::to_vec(&last).expect("json");
    file.append(&[Record {
        transaction_id: "tx-after-poison",
        decided_at_ms: head["decided_at_ms"].as_i64().expect("ms"),
        payload: &last,
    }])
    .expect("append");
    drop(file);

    let db = TestDb::create().await;
    let app = Spawn::new(Backend::Memory)
        .with_log(&db.url, spool.path())
        .start()
        .await;
    let pg = db.client().await;
    let all_good = eventually(DEADLINE, || async {
        count(&pg, "select count(*) from risk.decisions").await == 4
    })
    .await;
    let logged: HashSet<String> = strings(&pg, "select decision_id from risk.decisions")
        .await
        .into_iter()
        .collect();
    assert!(
        all_good,
        "the three decisions and the row after the refused one: {logged:?}"
    );
    for id in ids.iter().chain([&last_id]) {
        assert!(logged.contains(id), "{id}");
    }
    let emptied = eventually(DEADLINE, || async {
        std::fs::metadata(spool.path().join("decisions.spool")).is_ok_and(|m| m.len() == 0)
    })
    .await;
    assert!(emptied, "the spool is replayed past the refused row");
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("risk_decision_log_rows_dropped_total{reason=\"rejected\"}") && !l.ends_with(" 0")),
        "the refused row is counted"
    );
}
