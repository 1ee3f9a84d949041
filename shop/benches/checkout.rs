//! What the risk call adds to a checkout: the same API checkout (decide, authorise,
//! capture, commit; the sandbox gateway in this process over HTTP) with the risk sidecar on and off, interleaved, in one run.
//!
//! `make bench-shop` runs it: a release sidecar process (the shipped model, Redis
//! velocity counters, a policy that allows everything so that every checkout takes
//! the same path), and two shops in this process on one fresh database, one with
//! `risk.enabled: false`. Every checkout has its own shopper, card and device, so no
//! velocity rule changes the path. Prints medians and p99s; not a test.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use shop::settings::Settings;
use shop::startup::Application;

const ROUNDS: usize = 400;

fn repo(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn shop(database_url: &str, risk_url: &str, gateway_url: &str, enabled: bool) -> String {
    let env: HashMap<String, String> = [
        ("SHOP__GATEWAY__URL", gateway_url),
        ("SHOP__DEV__ENABLED", "true"),
        ("SHOP__AUTH__SIGNUP_PER_IP_PER_MINUTE", "100000"),
        ("SHOP__SERVER__PORT", "0"),
        ("SHOP__SERVER__WORKERS", "1"),
        ("SHOP__DATABASE__URL", database_url),
        ("SHOP__RISK__URL", risk_url),
        ("SHOP__RISK__ENABLED", if enabled { "true" } else { "false" }),
        ("SHOP__AUTH__ARGON2_MEMORY_KIB", "256"),
        ("SHOP__AUTH__ARGON2_ITERATIONS", "1"),
        ("SHOP__DEV__DEMO_DATA", "true"),
        ("SHOP__LOG__FORMAT", "json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let app = Application::build(Settings::load_with(env).expect("settings"))
        .await
        .expect("shop starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    url
}

/// A shopper with one book in the cart; their token.
async fn ready_shopper(http: &reqwest::Client, base: &str, n: usize) -> String {
    let email = format!("bench-{n}-{}@example.com", std::process::id());
    let body: serde_json::Value = http
        .post(format!("{base}/api/auth/signup"))
        .json(&json!({"email": email, "password": "bench password 1"}))
        .send()
        .await
        .expect("signup")
        .json()
        .await
        .expect("json");
    let token = body["access_token"].as_str().expect("token").to_owned();
    http.put(format!("{base}/api/cart/items/BK-2001"))
        .bearer_auth(&token)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .expect("cart");
    token
}

async fn checkout(http: &reqwest::Client, base: &str, token: &str, n: usize) -> Duration {
    let started = Instant::now();
    let response = http
        .post(format!("{base}/api/checkout"))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("bench-{n}"))
        .header("X-Device-Id", format!("dev-bench-{n}"))
        .json(&json!({
            "card": {"number": testkit::gateway::approved_card(n as u32), "exp_month": 12, "exp_year": 2099, "cvc": "123"},
            "shipping_country": "DE", "billing_country": "DE"
        }))
        .send()
        .await
        .expect("checkout");
    let elapsed = started.elapsed();
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "paid", "{body}");
    elapsed
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let admin = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("shop_test_bench_{}", std::process::id());
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("postgres");
    tokio::spawn(connection);
    client
        .execute(&format!("create database {db}"), &[])
        .await
        .expect("create db");
    let database_url = format!("{}/{db}", admin.rsplit_once('/').map(|(a, _)| a).unwrap_or(&admin));

    let dir = tempfile::tempdir().expect("dir");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "version: \"bench\"\nthresholds: {challenge: 1.0, block: 1.0}\nrules: []\n",
    )
    .expect("policy");
    let port = free_port();
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut sidecar = Command::new(repo("target/release/risk-sidecar"))
        .current_dir(repo(""))
        .env("RISK__SERVER__PORT", port.to_string())
        .env("RISK__REDIS__URL", &redis)
        .env("RISK__REDIS__KEY_PREFIX", format!("bench-shop-{}", std::process::id()))
        .env("RISK__POLICY__PATH", &policy)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run `cargo build --release -p risk-sidecar` first");
    let risk_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{risk_url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let gateway = testkit::gateway::SandboxGateway::start();
    let with_risk = shop(&database_url, &risk_url, &gateway.url, true).await;
    let without = shop(&database_url, &risk_url, &gateway.url, false).await;
    // Enough books for every checkout of the run.
    let (bench_db, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .expect("bench database");
    tokio::spawn(connection);
    bench_db
        .execute("update product set stock = 1000000 where sku = 'BK-2001'", &[])
        .await
        .expect("stock");
    let mut tokens = Vec::new();
    for n in 0..2 * ROUNDS + 40 {
        tokens.push(ready_shopper(&http, if n % 2 == 0 { &with_risk } else { &without }, n).await);
    }
    // Warm-up: connections, prepared plans, the sidecar's first requests.
    for (n, token) in tokens.iter().enumerate().skip(2 * ROUNDS) {
        checkout(&http, if n % 2 == 0 { &with_risk } else { &without }, token, n).await;
    }
    // The sidecar's own histograms around the measured rounds: how much of the call is
    // the decision itself (scripts/histogram_quantiles.py reads the two scrapes).
    let scrape = |name: &'static str| {
        let (http, url) = (http.clone(), format!("{risk_url}/metrics"));
        async move {
            let text = http.get(url).send().await.expect("metrics").text().await.expect("text");
            std::fs::create_dir_all(repo("bench-results")).expect("bench-results");
            std::fs::write(repo(&format!("bench-results/checkout-sidecar-{name}.txt")), text).expect("write");
        }
    };
    scrape("before").await;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for (n, token) in tokens.iter().enumerate().take(2 * ROUNDS) {
        if n % 2 == 0 {
            on.push(checkout(&http, &with_risk, token, n).await);
        } else {
            off.push(checkout(&http, &without, token, n).await);
        }
    }
    scrape("after").await;
    on.sort();
    off.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50_on, p99_on, p50_off, p99_off) = (
        quantile(&on, 0.5),
        quantile(&on, 0.99),
        quantile(&off, 0.5),
        quantile(&off, 0.99),
    );
    println!("checkout over the API, {ROUNDS} each, interleaved, sequential:");
    println!("  risk call on : p50 {:.2} ms  p99 {:.2} ms", ms(p50_on), ms(p99_on));
    println!("  risk call off: p50 {:.2} ms  p99 {:.2} ms", ms(p50_off), ms(p99_off));
    println!(
        "  added by the risk call: p50 {:+.2} ms  p99 {:+.2} ms (target: p99 <= 2 ms)",
        ms(p50_on) - ms(p50_off),
        ms(p99_on) - ms(p99_off)
    );
    let row = bench_db
        .query_one(
            "select percentile_cont(0.5) within group (order by latency_us)::float8,
                    percentile_cont(0.99) within group (order by latency_us)::float8
               from risk_decision where source = 'sidecar'",
            &[],
        )
        .await
        .expect("latencies");
    println!(
        "  the risk call itself, as the shop timed it: p50 {:.2} ms  p99 {:.2} ms",
        row.get::<_, f64>(0) / 1000.0,
        row.get::<_, f64>(1) / 1000.0
    );
    let _ = sidecar.kill();
    let _ = sidecar.wait();
    client
        .execute(&format!("drop database if exists {db} with (force)"), &[])
        .await
        .ok();
}
