//! The real binary: start-up failures and signals.

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
    let stderr = child.stderr.take().expect("stderr");
    let lines = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());

    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if ok || Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(ready, "listening");
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
