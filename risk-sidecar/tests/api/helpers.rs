pub use testkit::{ChaosProxy, eventually, free_port};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use risk_sidecar::settings::Settings;
use risk_sidecar::startup::{Application, ShutdownHandle};
use serde_json::{Value, json};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Redis,
    Memory,
}

pub const BACKENDS: [Backend; 2] = [Backend::Redis, Backend::Memory];

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub shutdown: ShutdownHandle,
}

/// Builder for a test app: the real `Application`, settings through `load_with`.
pub struct Spawn {
    overrides: HashMap<String, String>,
}

impl Spawn {
    pub fn new(backend: Backend) -> Spawn {
        let prefix = format!("test-{}", uuid::Uuid::new_v4());
        let mut overrides: HashMap<String, String> = [
            ("RISK__SERVER__PORT", "0".to_owned()),
            ("RISK__SERVER__WORKERS", "1".to_owned()),
            ("RISK__SERVER__SHUTDOWN_GRACE_MS", "5000".to_owned()),
            ("RISK__REDIS__KEY_PREFIX", prefix),
            ("RISK__MODEL__DIR", repo_path("models/fixture").display().to_string()),
            ("RISK__MODEL__SESSIONS", "1".to_owned()),
            (
                "RISK__POLICY__PATH",
                repo_path("risk-sidecar/configuration/policy.yaml")
                    .display()
                    .to_string(),
            ),
            ("RISK__POLICY__RELOAD_INTERVAL_MS", "50".to_owned()),
            // Tests check behaviour, not speed, on a shared 2-core machine: roomy budgets.
            ("RISK__DECISION__BUDGET_MS", "2000".to_owned()),
            ("RISK__REDIS__COMMAND_TIMEOUT_MS", "1000".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if backend == Backend::Redis {
            overrides.insert("RISK__REDIS__URL".into(), redis_url());
        }
        Spawn { overrides }
    }

    pub fn set(mut self, key: &str, value: impl ToString) -> Spawn {
        self.overrides.insert(key.to_owned(), value.to_string());
        self
    }

    pub async fn start(self) -> TestApp {
        let settings = Settings::load_with(self.overrides).expect("test settings are valid");
        let app = Application::build(settings).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let shutdown = app.shutdown_handle();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: reqwest::Client::new(),
            shutdown,
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    Spawn::new(backend).start().await
}

/// A policy file in a temporary directory, for tests that need rules of their own.
pub fn policy_file(rules: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy_text("t1", rules)).expect("write policy");
    (dir, path)
}

pub fn policy_text(version: &str, rules: &str) -> String {
    format!("version: \"{version}\"\nthresholds: {{challenge: 0.999, block: 1.0}}\nrules:\n{rules}")
}

/// A rule that always challenges and reports the card's 1-minute count: velocity made
/// visible over HTTP.
pub const SHOW_CARD_COUNT: &str = r#"
  - {id: show, action: challenge, when: "card_count_1m >= 1", code: CARD_VELOCITY_1M, message: "card used {card_count_1m} times in the last minute"}
"#;

static TX: AtomicU64 = AtomicU64::new(0);

/// A unique transaction id (see [`unique`]).
pub fn tx() -> String {
    unique("tx")
}

/// A unique id under `prefix`. Letters only around the counter: a random hex id holds a
/// run of 13–19 digits that passes Luhn about once in 600, which the card-number scan
/// rightly refuses.
pub fn unique(prefix: &str) -> String {
    let letters: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .bytes()
        .map(|b| {
            if b.is_ascii_digit() {
                (b - b'0' + b'g') as char
            } else {
                b as char
            }
        })
        .collect();
    format!("{prefix}-{letters}-{}", TX.fetch_add(1, Ordering::Relaxed))
}

pub fn request(tx: &str, card: &str) -> Value {
    json!({
        "transaction_id": tx,
        "amount": {"value_minor": 4599, "currency": "EUR"},
        "customer": {"id": format!("cus-{card}"), "email": "ann@example.com"},
        "payment": {"method": "card", "card_fingerprint": card, "bin": "411111", "last4": "1111", "card_country": "DE"},
        "device": {"ip": "203.0.113.7", "id": format!("dev-{card}")},
        "shipping": {"country": "DE"},
        "billing": {"country": "DE"},
        "items": [{"sku": "sku-1", "quantity": 1, "unit_price_minor": 4599}],
        "metadata": {"order": "1042"}
    })
}

impl TestApp {
    pub async fn post_decision(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/decisions", self.address))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_raw(&self, body: impl Into<reqwest::Body>, content_type: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(format!("{}/v1/decisions", self.address)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.expect("request sent")
    }

    pub async fn decide_ok(&self, body: &Value) -> Value {
        let response = self.post_decision(body).await;
        assert_eq!(response.status(), 200, "decision failed");
        response.json().await.expect("json body")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("metrics text")
    }
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test (`risk_test_<uuid>`, dropped by `make test`'s
/// clean-up), and its URL.
pub struct TestDb {
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("risk_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&database_url()).await;
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .expect("create test database");
        let url = with_database(&database_url(), &name);
        TestDb { url }
    }

    /// The URL through `address` (`127.0.0.1:port`) instead of the server's own.
    pub fn url_via(&self, address: &str) -> String {
        let parsed = reqwest::Url::parse(&self.url).expect("url");
        let mut via = parsed.clone();
        let (host, port) = address.split_once(':').expect("host:port");
        via.set_host(Some(host)).expect("host");
        via.set_port(Some(port.parse().expect("port"))).expect("port");
        via.to_string()
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// `host:port` of the real server, for a proxy in front of it.
    pub fn upstream(&self) -> String {
        let parsed = reqwest::Url::parse(&self.url).expect("url");
        format!(
            "{}:{}",
            parsed.host_str().unwrap_or("127.0.0.1"),
            parsed.port().unwrap_or(5432)
        )
    }
}

fn with_database(url: &str, name: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("DATABASE_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// A key for the e-mail hash in tests: long enough, obviously not a real one.
pub const TEST_EMAIL_KEY: &str = "test-email-hash-key-0123456789abcdef";

impl Spawn {
    /// The decision log on, into `url`, spooling into `spool_dir`.
    pub fn with_log(self, url: &str, spool_dir: &std::path::Path) -> Spawn {
        self.set("RISK__DECISION_LOG__URL", url)
            .set("RISK__DECISION_LOG__EMAIL_HASH_KEY", TEST_EMAIL_KEY)
            .set("RISK__DECISION_LOG__SPOOL_DIR", spool_dir.display())
            .set("RISK__DECISION_LOG__CONNECT_TIMEOUT_MS", "500")
            .set("RISK__DECISION_LOG__WRITE_TIMEOUT_MS", "1000")
            .set("RISK__DECISION_LOG__FLUSH_INTERVAL_MS", "50")
    }
}

/// Rows of a query's first column as strings (text columns).
pub async fn strings(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .await
        .expect("query")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

pub async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect("count").get(0)
}
