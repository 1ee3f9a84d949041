//! Test harness: a fresh database per test, the shop on a random port, a real sidecar
//! process, faulty stand-ins for it, and a TCP proxy that can cut PostgreSQL.

pub use testkit::gateway::SandboxGateway;
pub use testkit::{ChaosProxy, eventually, free_port};

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop::settings::Settings;
use shop::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const PASSWORD: &str = "correct horse battery";
pub const VISA_OK: &str = "4242424242424242";
pub const VISA_DECLINED: &str = "4000000000000002";

/// Allow below 400 EUR, challenge from 400, block from 900: each checkout branch by
/// amount, whatever the model says (its bands are set out of reach).
pub const TEST_POLICY: &str = r#"version: "shop-test"
thresholds: {challenge: 1.0, block: 1.0}
rules:
  - {id: big, action: block, when: "amount_ref >= 900.0", code: HIGH_AMOUNT, message: "amount {amount_ref}"}
  - {id: medium, action: challenge, when: "amount_ref >= 400.0", code: HIGH_AMOUNT, message: "amount {amount_ref}"}
"#;

/// Products of the demo catalogue that land in each branch.
pub const BOOK: &str = "BK-2001"; // 39.95 EUR: allow
pub const PHONE: &str = "EL-1005"; // 799.00 EUR: challenge
pub const LAPTOP: &str = "EL-1006"; // 1299.00 EUR: block

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn logs() -> String {
    testkit::logs::captured()
}

/// host:port of PostgreSQL (for a proxy in front of it).
pub fn postgres_address() -> String {
    let config: tokio_postgres::Config = database_url().parse().expect("url");
    format!("127.0.0.1:{}", config.get_ports().first().copied().unwrap_or(5432))
}

/// A fresh, empty database; its URL.
pub async fn fresh_database() -> String {
    let name = format!("shop_test_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL answers at DATABASE_URL");
    tokio::spawn(connection);
    client
        .execute(&format!("create database \"{name}\""), &[])
        .await
        .expect("create database");
    let mut config: tokio_postgres::Config = database_url().parse().expect("url");
    config.dbname(&name);
    let user = config.get_user().unwrap_or("postgres").to_owned();
    format!("postgres://{user}@{}/{name}", postgres_address())
}

pub enum Risk {
    /// A real sidecar process with [`TEST_POLICY`].
    Sidecar,
    /// A real sidecar process with this policy.
    SidecarWith(&'static str),
    /// A server that refuses every request with this status (a JSON error body).
    Refusing(u16),
    /// Nothing listens there.
    Down,
    /// The real sidecar behind a proxy that holds every answer this long.
    Slow(Duration),
    /// A server that answers 200 with a body that is not a decision.
    Garbage,
    Disabled,
}

pub struct Spawn {
    risk: Risk,
    overrides: HashMap<String, String>,
    database_url: Option<String>,
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    /// The settings the shop was started with, beyond its defaults.
    pub env: HashMap<String, String>,
    pub http: reqwest::Client,
    pub sidecar: Option<Sidecar>,
    /// The payment gateway this shop pays through (in this process, reached over HTTP).
    pub gateway: SandboxGateway,
    _proxy: Option<ChaosProxy>,
    _faulty: Option<FaultyServer>,
}

impl Spawn {
    pub fn new(risk: Risk) -> Spawn {
        Spawn {
            risk,
            overrides: HashMap::new(),
            database_url: None,
        }
    }

    pub fn set(mut self, key: &str, value: impl ToString) -> Spawn {
        self.overrides.insert(key.to_owned(), value.to_string());
        self
    }

    /// Development mode off, with secrets of its own (as a deployment would have).
    pub fn production(self) -> Spawn {
        self.set("SHOP__DEV__ENABLED", false)
            .set("SHOP__AUTH__ACCESS_TOKEN_SECRET", random_secret())
            .set("SHOP__AUTH__CSRF_SECRET", random_secret())
    }

    pub fn database(mut self, url: &str) -> Spawn {
        self.database_url = Some(url.to_owned());
        self
    }

    pub async fn start(self) -> TestApp {
        testkit::logs::capture();
        let database_url = match self.database_url {
            Some(url) => url,
            None => fresh_database().await,
        };
        let (mut sidecar, mut proxy, mut faulty) = (None, None, None);
        let risk_url = match self.risk {
            Risk::Sidecar | Risk::SidecarWith(_) => {
                let policy = match self.risk {
                    Risk::SidecarWith(policy) => policy,
                    _ => TEST_POLICY,
                };
                // One database for both services, as deployed: the sidecar's decision log
                // in schema risk beside the shop's tables.
                let s = Sidecar::start_with_log(policy, Some(&database_url));
                let url = s.url.clone();
                sidecar = Some(s);
                url
            }
            Risk::Slow(delay) => {
                let s = Sidecar::start(TEST_POLICY);
                let p = ChaosProxy::start(&s.url.replace("http://", "")).await;
                p.set_delay(delay);
                let url = format!("http://{}", p.address);
                sidecar = Some(s);
                proxy = Some(p);
                url
            }
            Risk::Down => format!("http://127.0.0.1:{}", free_port()),
            Risk::Refusing(status) => {
                let body = r#"{"error": {"code": "validation_failed", "message": "refused", "field": "device.id"}}"#;
                let f = FaultyServer::start(status, body).await;
                let url = f.url.clone();
                faulty = Some(f);
                url
            }
            Risk::Garbage => {
                let f = FaultyServer::start(200, "{\"decision\": \"allow\", \"this is\": not json").await;
                let url = f.url.clone();
                faulty = Some(f);
                url
            }
            Risk::Disabled => "http://127.0.0.1:9".to_owned(),
        };
        let gateway = SandboxGateway::start();
        let mut env: HashMap<String, String> = HashMap::from([
            ("SHOP__GATEWAY__URL".into(), gateway.url.clone()),
            ("SHOP__SERVER__PORT".into(), "0".into()),
            ("SHOP__SERVER__WORKERS".into(), "2".into()),
            ("SHOP__DATABASE__URL".into(), database_url.clone()),
            ("SHOP__DATABASE__POOL_SIZE".into(), "8".into()),
            ("SHOP__DATABASE__CONNECT_TIMEOUT_MS".into(), "1000".into()),
            ("SHOP__RISK__URL".into(), risk_url),
            (
                "SHOP__RISK__ENABLED".into(),
                (!matches!(self.risk, Risk::Disabled)).to_string(),
            ),
            // The test pages are served over http: the jar would not send Secure cookies.
            ("SHOP__AUTH__COOKIE_SECURE".into(), "false".into()),
            // argon2 at its production cost is slow in debug builds; the algorithm is the same.
            ("SHOP__AUTH__ARGON2_MEMORY_KIB".into(), "256".into()),
            ("SHOP__AUTH__ARGON2_ITERATIONS".into(), "1".into()),
            ("SHOP__DEV__DEMO_DATA".into(), "true".into()),
            ("SHOP__DEV__ENABLED".into(), "true".into()),
            // Tests sign many shoppers up from one address; one test checks the limit.
            ("SHOP__AUTH__SIGNUP_PER_IP_PER_MINUTE".into(), "10000".into()),
        ]);
        env.extend(self.overrides);
        let settings = Settings::load_with(env.clone()).expect("test settings");
        let app = Application::build(settings).await.expect("shop starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            database_url,
            env,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            sidecar,
            gateway,
            _proxy: proxy,
            _faulty: faulty,
        }
    }
}

pub async fn spawn_app(risk: Risk) -> TestApp {
    Spawn::new(risk).start().await
}

pub fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

static EMAILS: AtomicU64 = AtomicU64::new(0);

pub fn unique_email() -> String {
    format!(
        "shopper{}-{}@example.com",
        EMAILS.fetch_add(1, Ordering::Relaxed),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// What the API answered: status, headers, JSON body (Null if none).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// Signs up a new shopper; their access token.
    pub async fn shopper(&self) -> String {
        let answer = self
            .post(
                "/api/auth/signup",
                None,
                &json!({"email": unique_email(), "password": PASSWORD}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer.body["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn put_in_cart(&self, token: &str, sku: &str, quantity: i32) -> Answer {
        let request = self
            .http
            .put(self.url(&format!("/api/cart/items/{sku}")))
            .bearer_auth(token)
            .json(&json!({"quantity": quantity}));
        self.send(request).await
    }

    pub async fn checkout(&self, token: &str, key: &str, card: &str) -> Answer {
        self.checkout_with(token, key, card, &[("X-Device-Id", &format!("dev_{key}"))])
            .await
    }

    /// A checkout with these headers (and no others of the shop's).
    pub async fn checkout_with(&self, token: &str, key: &str, card: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .http
            .post(self.url("/api/checkout"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&checkout_body(card));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Sends a one-time code for an order.
    pub async fn verify(&self, token: &str, order: &str, code: &str) -> Answer {
        self.post(
            &format!("/api/orders/{order}/verify"),
            Some(token),
            &json!({"code": code}),
        )
        .await
    }

    /// A shopper with `sku` in the cart, checked out with an approved card.
    pub async fn buy(&self, sku: &str) -> (String, Answer) {
        let token = self.shopper().await;
        assert_eq!(self.put_in_cart(&token, sku, 1).await.status, StatusCode::OK);
        let answer = self
            .checkout(&token, &uuid::Uuid::new_v4().simple().to_string(), VISA_OK)
            .await;
        (token, answer)
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
            .await
            .expect("test database");
        tokio::spawn(connection);
        client
    }

    pub async fn scalar(&self, sql: &str, order_id: &str) -> i64 {
        self.db().await.query_one(sql, &[&order_id]).await.expect(sql).get(0)
    }

    /// The gateway's captures of an order's payment.
    pub async fn captures(&self, order_id: &str) -> usize {
        self.gateway.books.operations(&format!("{order_id}:pay_1"), "capture")
    }

    /// How many risk decisions are stored for an order's payments.
    pub async fn decisions(&self, order_id: &str) -> i64 {
        self.scalar(
            "select count(*) from risk_decision d join payment_attempt a using (payment_attempt_id)
               join customer_order o using (order_id) where o.public_id = $1",
            order_id,
        )
        .await
    }

    /// The gateway's voids of an order's payment.
    pub fn voids(&self, order_id: &str) -> usize {
        self.gateway.books.operations(&format!("{order_id}:pay_1"), "void")
    }

    /// The state of the order's authorisation at the gateway, if it was ever authorised.
    pub fn authorisation_status(&self, order_id: &str) -> Option<String> {
        self.gateway
            .books
            .authorisation(&format!("{order_id}:pay_1"))
            .map(|a| a.status)
    }

    pub async fn order_events(&self, order_id: &str) -> Vec<String> {
        self.db()
            .await
            .query(
                "select e.to_status from order_event e join customer_order o using (order_id)
                  where o.public_id = $1 order by e.order_event_id",
                &[&order_id],
            )
            .await
            .expect("events")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The newest one-time code mailed to anyone in this test's database.
    pub async fn mailed_code(&self) -> String {
        let body: String = self
            .db()
            .await
            .query_one(
                "select body from mailbox_message order by mailbox_message_id desc limit 1",
                &[],
            )
            .await
            .expect("a code was mailed")
            .get(0);
        body.split_whitespace()
            .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
            .expect("six digits in the mail")
            .to_owned()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

pub use testkit::gateway::approved_card as new_card;

pub fn checkout_body(card: &str) -> Value {
    json!({
        "card": {"number": card, "exp_month": 12, "exp_year": 2099, "cvc": "123"},
        "shipping_country": "DE",
        "billing_country": "DE",
    })
}

/// The risk-sidecar binary, built if this test run has not built it yet.
fn sidecar_binary() -> PathBuf {
    static BUILT: LazyLock<PathBuf> = LazyLock::new(|| {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_path("target"));
        let binary = target.join("debug").join("risk-sidecar");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "risk-sidecar", "--bin", "risk-sidecar"])
            .current_dir(repo_path(""))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the sidecar builds");
        binary
    });
    BUILT.clone()
}

/// A real risk-sidecar process: in-memory velocity store, the fixture model, a policy
/// file of the test's. Killed on drop.
pub struct Sidecar {
    pub url: String,
    child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    pub fn start(policy: &str) -> Sidecar {
        Self::start_with_log(policy, None)
    }

    /// With the decision log into `log_url` (labels and outcomes are accepted only then).
    pub fn start_with_log(policy: &str, log_url: Option<&str>) -> Sidecar {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy_path = dir.path().join("policy.yaml");
        std::fs::write(&policy_path, policy).expect("policy");
        let log = dir.path().join("sidecar.log");
        let port = free_port();
        let child = Command::new(sidecar_binary())
            .current_dir(repo_path(""))
            .env("RISK__SERVER__PORT", port.to_string())
            .env("RISK__SERVER__WORKERS", "1")
            .env("RISK__REDIS__URL", "")
            .env("RISK__MODEL__DIR", "models/fixture")
            .env("RISK__MODEL__SESSIONS", "1")
            .env("RISK__POLICY__PATH", &policy_path)
            .env("RISK__DECISION_LOG__URL", log_url.unwrap_or(""))
            .env(
                "RISK__DECISION_LOG__EMAIL_HASH_KEY",
                "shop-test-email-hash-key-0123456789",
            )
            .env("RISK__DECISION_LOG__SPOOL_DIR", dir.path().join("spool"))
            .env("RISK__DECISION_LOG__FLUSH_INTERVAL_MS", "20")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("sidecar starts");
        let url = format!("http://127.0.0.1:{port}");
        let sidecar = Sidecar {
            url,
            child,
            log,
            _dir: dir,
        };
        sidecar.wait_ready();
        sidecar
    }

    fn wait_ready(&self) {
        let address = self.url.replace("http://", "");
        for _ in 0..200 {
            if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
                let _ = stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the sidecar did not become ready: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Answers every request with one status and body (not a decision).
pub struct FaultyServer {
    pub url: String,
    stop: watch::Sender<bool>,
}

impl FaultyServer {
    async fn start(status: u16, body: &'static str) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut stream, _)) = accepted else { return };
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 64 * 1024];
                            let _ = stream.read(&mut buf).await;
                            let answer = format!(
                                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(answer.as_bytes()).await;
                        });
                    }
                    _ = stopped.changed() => return,
                }
            }
        });
        FaultyServer { url, stop }
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
