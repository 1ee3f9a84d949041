//! The sidecar's image, compose.yaml and the Makefile's start-up against its settings:
//! none of them may name a setting that does not exist, a port it does not listen on,
//! a path the image does not hold, or run it as root. No Docker engine runs here, so
//! the files are read as data (testkit::deploy); the `healthcheck` subcommand they use
//! is run for real.

use std::collections::HashMap;
use std::process::Command;

use risk_sidecar::settings::Settings;
use testkit::deploy::{self, RuntimeStage};

use crate::helpers::*;

const BASE: &str = include_str!("../../configuration/base.yaml");

fn keys() -> std::collections::BTreeSet<String> {
    deploy::setting_keys(BASE)
}

#[test]
fn the_image_holds_what_its_settings_name_and_runs_unprivileged() {
    let image = RuntimeStage::of("risk-sidecar/Dockerfile");
    assert!(image.uid() >= 1000, "a non-root uid");
    let names = image.env.keys().filter(|k| k.starts_with("RISK__")).cloned().collect();
    deploy::assert_all_settings(&names, "RISK", &keys(), "risk-sidecar/Dockerfile");
    // The image's settings load (development mode is not needed).
    let env: HashMap<String, String> = image.env.clone().into_iter().collect();
    let settings = Settings::load_with(env).expect("the image's environment is valid settings");
    assert_eq!(image.expose, [settings.server.port], "EXPOSE is the port it listens on");
    assert_eq!(settings.server.host, "0.0.0.0", "reachable from outside its container");
    for path in [
        "RISK__MODEL__DIR",
        "RISK__POLICY__PATH",
        "RISK__MODEL__ORT_LIBRARY",
        "RISK__DECISION_LOG__SPOOL_DIR",
    ] {
        let at = &image.env[path];
        assert!(image.provides(at), "{path}={at}: the image does not put it there");
    }
    // What is copied from the repository exists in it, and the ONNX Runtime library is
    // the one the Makefile fetches.
    for (source, dest, from_stage) in &image.copies {
        if !from_stage {
            assert!(
                deploy::exists(source),
                "COPY {source} {dest}: no such file in the repository"
            );
        }
    }
    let ort = image.env["RISK__MODEL__ORT_LIBRARY"]
        .rsplit('/')
        .next()
        .expect("file name")
        .to_owned();
    let fetch = std::fs::read_to_string(deploy::repo_path("scripts/fetch-onnxruntime.sh")).expect("fetch script");
    assert!(
        fetch.contains(&format!("lib={ort}")),
        "the image's {ort} is not what fetch-onnxruntime.sh fetches"
    );
    let spool = &image.env["RISK__DECISION_LOG__SPOOL_DIR"];
    assert!(image.volumes.contains(spool), "the spool is a volume");
    assert!(
        image
            .runs
            .iter()
            .any(|r| r.contains(&format!("chown {}", image.uid())) && r.contains(spool.as_str())),
        "the spool is writable by the runtime user"
    );
    assert_eq!(image.healthcheck, ["risk-sidecar", "healthcheck"]);
    assert_eq!(image.entrypoint, ["risk-sidecar"]);
    assert!(
        image.from.starts_with("debian:bookworm-slim"),
        "no build tools at run time: {}",
        image.from
    );
}

#[test]
fn compose_and_the_makefile_start_up_name_only_real_settings() {
    let compose = deploy::compose();
    let env = deploy::compose_env(&compose, "risk-sidecar", "k".repeat(64).as_str());
    let names = env.keys().cloned().collect();
    deploy::assert_all_settings(&names, "RISK", &keys(), "compose.yaml");
    let mut all: HashMap<String, String> = RuntimeStage::of("risk-sidecar/Dockerfile").env.into_iter().collect();
    all.extend(env.clone());
    let settings = Settings::load_with(all).expect("compose's environment is valid settings");
    let published = compose["services"]["risk-sidecar"]["ports"][0]
        .as_str()
        .expect("a published port");
    assert!(
        published.ends_with(&format!(":{}", settings.server.port)),
        "compose publishes {published}, the sidecar listens on {}",
        settings.server.port
    );
    let volume = compose["services"]["risk-sidecar"]["volumes"][0]
        .as_str()
        .expect("the spool volume");
    assert!(
        volume.ends_with(&format!(":{}", settings.decision_log.spool_dir.display())),
        "compose mounts {volume}, the spool is {}",
        settings.decision_log.spool_dir.display()
    );
    let prometheus = std::fs::read_to_string(deploy::repo_path("monitoring/prometheus.compose.yaml")).expect("config");
    assert!(
        prometheus.contains(&format!("risk-sidecar:{}", settings.server.port)),
        "Prometheus scrapes the sidecar"
    );
    for script in ["scripts/run.sh", "scripts/bench.sh", "scripts/loadtest.sh", "Makefile"] {
        let names = deploy::env_names_in(script, "RISK");
        deploy::assert_all_settings(&names, "RISK", &keys(), script);
    }
}

/// Settings the chart never takes from values: the pod's layout fixes them (loopback
/// API, ops listener, paths inside the image, JSON logs) or a Secret holds them.
const LEFT_OUT_OF_THE_CHART: &[&str] = &[
    "server.host",
    "server.port",
    "server.ops_host",
    "server.ops_port",
    "model.dir",
    "model.ort_library",
    "policy.path",
    "decision_log.spool_dir",
    "log.format",
    "decision_log.url",
    "decision_log.email_hash_key",
];

#[test]
fn every_chart_value_is_a_setting_and_every_setting_is_in_the_chart_or_left_out() {
    // The currency table is data of the image (base.yaml), not a deployment knob; the
    // pods share a Redis (base.yaml's default is the in-memory store).
    deploy::assert_chart_settings(
        "sidecar",
        BASE,
        LEFT_OUT_OF_THE_CHART,
        Some("currency.rates."),
        &["redis.url"],
    );
    for template in [
        "charts/shop/templates/deployment.yaml",
        "charts/shop/templates/migrate-job.yaml",
    ] {
        deploy::assert_all_settings(&deploy::env_names_in(template, "RISK"), "RISK", &keys(), template);
    }
    // What the pod gets loads as valid settings.
    let mut env: HashMap<String, String> = deploy::chart_settings("sidecar")
        .into_iter()
        .map(|(k, v)| (format!("RISK__{}", k.to_ascii_uppercase().replace('.', "__")), v))
        .collect();
    env.insert("RISK__DECISION_LOG__URL".into(), "postgres://risk@db:5432/shop".into());
    env.insert("RISK__DECISION_LOG__EMAIL_HASH_KEY".into(), "k".repeat(64));
    env.insert("RISK__SERVER__OPS_PORT".into(), "9464".into());
    Settings::load_with(env).expect("the chart's settings are valid");
}

#[tokio::test]
async fn the_healthcheck_subcommand_answers_for_a_running_sidecar_only() {
    let port = free_port();
    let check = move || {
        Command::new(env!("CARGO_BIN_EXE_risk-sidecar"))
            .arg("healthcheck")
            .current_dir(repo_path(""))
            .env("RISK__SERVER__PORT", port.to_string())
            .output()
            .expect("runs")
    };
    let down = check();
    assert_eq!(down.status.code(), Some(1), "nothing listens yet");
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("healthcheck"),
        "says why"
    );
    let app = Spawn::new(Backend::Memory)
        .set("RISK__SERVER__PORT", port)
        .start()
        .await;
    let up = tokio::task::spawn_blocking(check).await.expect("joined");
    assert_eq!(up.status.code(), Some(0), "{}", String::from_utf8_lossy(&up.stderr));
    app.shutdown.shutdown().await;
}

/// The pod's layout: the decision API on loopback, health and metrics on a second
/// listener for the kubelet and Prometheus, and nothing else there.
#[tokio::test]
async fn the_ops_listener_serves_health_and_metrics_only() {
    let ops = free_port();
    let app = Spawn::new(Backend::Memory)
        .set("RISK__SERVER__OPS_HOST", "127.0.0.1")
        .set("RISK__SERVER__OPS_PORT", ops)
        .start()
        .await;
    let client = reqwest::Client::new();
    let on_ops = |path: &str| format!("http://127.0.0.1:{ops}{path}");
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = client.get(on_ops(path)).send().await.expect("answers");
        assert_eq!(r.status(), 200, "{path} on the ops listener");
    }
    let decide = client
        .post(on_ops("/v1/decisions"))
        .json(&request(&tx(), "card-ops"))
        .send()
        .await
        .expect("answers");
    assert_eq!(decide.status(), 404, "no decisions on the ops listener");
    let reload = client.post(on_ops("/admin/reload")).send().await.expect("answers");
    assert_eq!(reload.status(), 404, "no admin on the ops listener");
    let lookup = client.get(on_ops("/v1/decisions/tx-1")).send().await.expect("answers");
    assert_eq!(lookup.status(), 404);
    // The main listener is unchanged.
    app.decide_ok(&request(&tx(), "card-ops")).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.shutdown.shutdown().await;
}
