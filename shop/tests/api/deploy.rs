//! The shop's image and compose.yaml against its settings (and the sidecar's and the
//! gateway's addresses): no setting that does not exist, no port nothing listens on,
//! never root. Read as data (no Docker engine here); `shop healthcheck` run for real.

use std::collections::HashMap;
use std::process::Command;

use shop::settings::Settings;
use testkit::deploy::{self, RuntimeStage};

use crate::helpers::*;

const BASE: &str = include_str!("../../configuration/base.yaml");

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("{url}: no port"))
}

#[test]
fn the_image_and_compose_name_only_real_settings_and_matching_addresses() {
    let keys = deploy::setting_keys(BASE);
    let image = RuntimeStage::of("shop/Dockerfile");
    assert!(image.uid() >= 1000, "a non-root uid");
    assert!(
        image.from.starts_with("debian:bookworm-slim"),
        "no build tools at run time"
    );
    assert_eq!(image.healthcheck, ["shop", "healthcheck"]);
    assert_eq!(image.entrypoint, ["shop"]);
    let compose = deploy::compose();
    let secret = "s".repeat(64);
    let mut env: HashMap<String, String> = image.env.clone().into_iter().collect();
    for service in ["shop", "migrate"] {
        let service_env = deploy::compose_env(&compose, service, &secret);
        let names = service_env.keys().cloned().collect();
        deploy::assert_all_settings(&names, "SHOP", &keys, &format!("compose.yaml {service}"));
        env.extend(service_env);
    }
    let names = image.env.keys().cloned().collect();
    deploy::assert_all_settings(&names, "SHOP", &keys, "shop/Dockerfile");
    let settings = Settings::load_with(env).expect("the image's and compose's environment is valid settings");
    assert_eq!(image.expose, [settings.server.port], "EXPOSE is the port it listens on");
    let published = compose["services"]["shop"]["ports"][0].as_str().expect("published");
    assert!(
        published.ends_with(&format!(":{}", settings.server.port)),
        "{published}"
    );
    assert_eq!(compose["services"]["migrate"]["command"][0].as_str(), Some("migrate"));
    // The sidecar and the gateway where compose runs them.
    let sidecar = RuntimeStage::of("risk-sidecar/Dockerfile");
    assert_eq!(
        port_of(&settings.risk.url),
        sidecar.env["RISK__SERVER__PORT"].parse::<u16>().expect("port")
    );
    assert!(
        settings.risk.url.contains("//risk-sidecar:"),
        "the sidecar's service name"
    );
    let gateway = deploy::compose_env(&compose, "gateway", &secret);
    assert_eq!(
        port_of(&settings.gateway.url),
        port_of(&gateway["SANDBOX_GATEWAY_ADDR"])
    );
    let prometheus = std::fs::read_to_string(deploy::repo_path("monitoring/prometheus.compose.yaml")).expect("config");
    assert!(
        prometheus.contains(&format!("shop:{}", settings.server.port)),
        "Prometheus scrapes the shop"
    );
    for script in ["scripts/run.sh", "scripts/e2e.sh", "scripts/loadtest.sh", "Makefile"] {
        let names = deploy::env_names_in(script, "SHOP");
        deploy::assert_all_settings(&names, "SHOP", &keys, script);
    }
}

/// Settings the chart never takes from values: the pod's layout fixes them, a Secret
/// holds them, or they are development mode (the mailbox, demo data).
const LEFT_OUT_OF_THE_CHART: &[&str] = &[
    "server.host",
    "server.port",
    "risk.url",
    "log.format",
    "database.url",
    "auth.access_token_secret",
    "auth.csrf_secret",
    "gateway.api_key",
    "dev.enabled",
    "dev.demo_data",
];

#[test]
fn every_chart_value_is_a_setting_and_every_setting_is_in_the_chart_or_left_out() {
    deploy::assert_chart_settings("shop", BASE, LEFT_OUT_OF_THE_CHART, None, &[]);
    let keys = deploy::setting_keys(BASE);
    for template in [
        "charts/shop/templates/deployment.yaml",
        "charts/shop/templates/migrate-job.yaml",
    ] {
        deploy::assert_all_settings(&deploy::env_names_in(template, "SHOP"), "SHOP", &keys, template);
    }
    let mut env: HashMap<String, String> = deploy::chart_settings("shop")
        .into_iter()
        .map(|(k, v)| (format!("SHOP__{}", k.to_ascii_uppercase().replace('.', "__")), v))
        .collect();
    // Distinct, as the shop requires of its two keys.
    for (secret, fill) in [
        ("SHOP__AUTH__ACCESS_TOKEN_SECRET", "a"),
        ("SHOP__AUTH__CSRF_SECRET", "c"),
        ("SHOP__GATEWAY__API_KEY", "g"),
    ] {
        env.insert(secret.into(), fill.repeat(64));
    }
    env.insert("SHOP__DATABASE__URL".into(), "postgres://shop@db:5432/shop".into());
    Settings::load_with(env).expect("the chart's settings are valid outside development mode");
}

#[tokio::test]
async fn the_healthcheck_subcommand_answers_for_a_running_shop_only() {
    let app = spawn_app(Risk::Disabled).await;
    let port = port_of(&app.address);
    let check = move |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_shop"))
            .arg("healthcheck")
            .env("SHOP__SERVER__PORT", port.to_string())
            .env("SHOP__DEV__ENABLED", "true")
            .output()
            .expect("runs")
    };
    let up = tokio::task::spawn_blocking(move || check(port)).await.expect("joined");
    assert_eq!(up.status.code(), Some(0), "{}", String::from_utf8_lossy(&up.stderr));
    let down = tokio::task::spawn_blocking(move || check(free_port()))
        .await
        .expect("joined");
    assert_eq!(down.status.code(), Some(1), "nothing listens there");
}
