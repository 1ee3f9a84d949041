//! The real binary: start-up failures and signals.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn sidecar() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-sidecar"));
    cmd.current_dir(repo_path(""))
        .env("RISK__LOG__FORMAT", "json")
        .env("RUST_LOG", "info");
    cmd
}

/// The child's log lines, collected on a thread until it exits.
fn collect_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<Vec<String>> {
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect())
}

fn listening_within_20s(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn invalid_settings_exit_64_before_binding() {
    let port = free_port();
    let output = sidecar()
        .env("RISK__SERVER__PORT", port.to_string())
        .env("RISK__REDIS__COMMAND_TIMEOUT_MS", "0")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("redis.command_timeout_ms"),
        "names the setting: {stderr}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the port was never bound"
    );
}

#[test]
fn a_model_for_another_feature_list_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(repo_path("models/fixture/model.onnx"), dir.path().join("model.onnx")).expect("copy");
    std::fs::write(
        dir.path().join("model.json"),
        r#"{"version": "old", "feature_list_hash": "0000000000000000"}"#,
    )
    .expect("card");
    let output = sidecar()
        .env("RISK__SERVER__PORT", free_port().to_string())
        .env("RISK__MODEL__DIR", dir.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trained on feature list 0000000000000000"), "{stderr}");
}

#[test]
fn with_no_redis_it_runs_in_memory_sighup_reloads_and_sigterm_stops_it_cleanly() {
    let port = free_port();
    let mut child = sidecar()
        .env("RISK__SERVER__PORT", port.to_string())
        .env("RISK__SERVER__WORKERS", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let lines = collect_stderr(&mut child);
    assert!(listening_within_20s(port), "listening");
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("exits");
    assert_eq!(exit.code(), Some(0), "a clean exit after draining");
    let log = lines.join().expect("log lines").join("\n");
    assert!(log.contains("velocity counters live in memory"), "{log}");
    assert!(log.contains("Shutting down"), "{log}");
    assert!(log.contains("Model reloaded."), "SIGHUP reloads the model: {log}");
}

/// Starts the binary with the decision log into `log_url`, spooling in `spool`, and waits
/// until it answers. Its log lines are collected on a thread.
fn start_with_log(
    port: u16,
    log_url: &str,
    spool: &std::path::Path,
    extra: &[(&str, &str)],
) -> (std::process::Child, std::thread::JoinHandle<Vec<String>>) {
    let mut child = sidecar()
        .env("RISK__SERVER__PORT", port.to_string())
        .env("RISK__SERVER__WORKERS", "1")
        .env("RISK__MODEL__DIR", repo_path("models/fixture"))
        .env("RISK__DECISION_LOG__URL", log_url)
        .env("RISK__DECISION_LOG__EMAIL_HASH_KEY", TEST_EMAIL_KEY)
        .env("RISK__DECISION_LOG__SPOOL_DIR", spool)
        .env("RISK__DECISION_LOG__CONNECT_TIMEOUT_MS", "300")
        .env("RISK__DECISION_LOG__FLUSH_INTERVAL_MS", "20")
        .envs(extra.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let lines = collect_stderr(&mut child);
    assert!(listening_within_20s(port), "the sidecar did not start listening");
    (child, lines)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// PostgreSQL down, decisions spooled; SIGKILL in the middle of more; a torn record on
/// the end of the spool. Restarted with PostgreSQL up, it replays every fsynced row
/// once and nothing it never answered.
#[tokio::test]
async fn killed_mid_spool_it_restarts_and_replays_what_it_had_fsynced() {
    let db = TestDb::create().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let dead = format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port());
    let port = free_port();
    let (mut child, _) = start_with_log(port, &dead, spool.path(), &[]);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let decide = |body: serde_json::Value| {
        let client = client.clone();
        let url = format!("{base}/v1/decisions");
        async move {
            let response = client.post(url).json(&body).send().await.ok()?;
            let answer: serde_json::Value = response.json().await.ok()?;
            answer["decision_id"].as_str().map(str::to_owned)
        }
    };
    let mut answered = Vec::new();
    for i in 0..30 {
        answered.push(decide(request(&tx(), &format!("fp-kill-{i}"))).await.expect("answered"));
    }
    let spooled = eventually(Duration::from_secs(30), || async {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metric(&text, "risk_decision_log_rows_spooled_total") >= 30.0
    })
    .await;
    assert!(spooled, "the first 30 rows were fsynced to the spool");
    // More decisions in flight, then SIGKILL with no warning.
    let burst: Vec<_> = (0..40)
        .map(|i| decide(request(&tx(), &format!("fp-burst-{i}"))))
        .collect();
    let late = tokio::spawn(futures::future::join_all(burst));
    tokio::time::sleep(Duration::from_millis(30)).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let late: Vec<String> = late.await.expect("burst").into_iter().flatten().collect();
    // A crash in the middle of a write: a header promising more than follows.
    let path = spool.path().join("decisions.spool");
    let mut torn = 500u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&[0u8; 4]);
    torn.extend_from_slice(b"{\"decision_id\":");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &torn))
        .expect("tear the spool");

    let port = free_port();
    let (mut child, lines) = start_with_log(port, &db.url, spool.path(), &[]);
    let pg = db.client().await;
    let replayed = eventually(Duration::from_secs(30), || async {
        std::fs::metadata(&path).is_ok_and(|m| m.len() == 0)
    })
    .await;
    assert!(replayed, "the spool was replayed and emptied");
    let logged: HashSet<String> = strings(&pg, "select decision_id from risk.decisions")
        .await
        .into_iter()
        .collect();
    for id in &answered {
        assert!(logged.contains(id), "{id}, fsynced before the kill, is in the log");
    }
    let known: HashSet<&String> = answered.iter().chain(&late).collect();
    for id in &logged {
        assert!(known.contains(id), "{id} in the log was never answered");
    }
    assert_eq!(
        count(&pg, "select count(*) - count(distinct decision_id) from risk.decisions").await,
        0
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    child.wait().expect("exits");
    let log = lines.join().expect("log lines").join("\n");
    assert!(log.contains("torn record"), "the torn tail is reported: {log}");
}

/// SIGTERM right after a burst, PostgreSQL down: every answered decision is in the spool.
#[tokio::test]
async fn sigterm_drains_the_queue_to_the_spool() {
    let spool = tempfile::tempdir().expect("spool dir");
    let dead = format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port());
    let port = free_port();
    // Batches held for a minute: only the drain can write them.
    let hold = [
        ("RISK__DECISION_LOG__FLUSH_INTERVAL_MS", "60000"),
        ("RISK__DECISION_LOG__BATCH_MAX", "1000"),
    ];
    let (mut child, _) = start_with_log(port, &dead, spool.path(), &hold);
    let client = reqwest::Client::new();
    let mut answered = HashSet::new();
    for i in 0..25 {
        let answer: serde_json::Value = client
            .post(format!("http://127.0.0.1:{port}/v1/decisions"))
            .json(&request(&tx(), &format!("fp-term-{i}")))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        answered.insert(answer["transaction_id"].as_str().expect("tx").to_owned());
    }
    drop(client); // no keep-alive connection for the graceful stop to wait on
    let spool_file = spool.path().join("decisions.spool");
    assert_eq!(
        std::fs::metadata(&spool_file).expect("spool").len(),
        0,
        "nothing written yet"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert_eq!(child.wait().expect("exits").code(), Some(0));
    let ids = risk_sidecar::decision_log::spool::SpooledIds::default();
    let (_, recovered) =
        risk_sidecar::decision_log::spool::Spool::open(spool.path(), 1 << 30, std::sync::Arc::clone(&ids))
            .expect("spool opens");
    assert_eq!(recovered.torn_bytes, 0);
    assert_eq!(*ids.lock(), answered, "every answered decision is in the spool");
}

/// A fresh process, before its first decision: every metric the alert rules and the
/// dashboard name is already exported (registered at start-up), and promtool accepts
/// the scrape.
#[tokio::test]
async fn monitoring_names_match_a_fresh_sidecars_scrape() {
    let port = free_port();
    let mut child = sidecar()
        .env("RISK__SERVER__PORT", port.to_string())
        .env("RISK__SERVER__WORKERS", "1")
        .env("RISK__MODEL__DIR", repo_path("models/fixture-anomaly"))
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    assert!(listening_within_20s(port), "listening");
    let scrape = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("scraped")
        .text()
        .await
        .expect("text");
    let _ = child.kill();
    let _ = child.wait();
    testkit::monitoring::assert_monitoring_matches(&scrape, "risk_");
    testkit::monitoring::assert_promtool_accepts(&scrape);
}
