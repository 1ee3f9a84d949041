//! Start-up plumbing both services share, so that they load settings, log and export
//! metrics the same way. Each service keeps its own settings types, metric names and
//! descriptions; only the mechanism lives here.

pub mod postgres;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
pub use metrics_exporter_prometheus::{Matcher, PrometheusHandle};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing_subscriber::EnvFilter;

/// Settings: the service's embedded `base.yaml`, then `PREFIX__SECTION__KEY` variables
/// from the process environment, or from `overrides` in its place (tests never mutate
/// the environment). Numbers and booleans are parsed from their strings; the keys in
/// `list_keys` (dotted, lower case: `server.trusted_proxies`) are comma-separated lists.
pub fn load_settings<T: DeserializeOwned>(
    base_yaml: &str,
    prefix: &str,
    list_keys: &[&str],
    overrides: Option<HashMap<String, String>>,
) -> Result<T, config::ConfigError> {
    let mut env = config::Environment::with_prefix(prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(overrides);
    if !list_keys.is_empty() {
        env = env.list_separator(",");
        for key in list_keys {
            env = env.with_list_parse_key(key);
        }
    }
    config::Config::builder()
        .add_source(config::File::from_str(base_yaml, config::FileFormat::Yaml))
        .add_source(env)
        .build()?
        .try_deserialize()
}

/// For a list setting (one of `load_settings`'s `list_keys`): an empty variable is an
/// empty list. `config` reads `""` as one empty item, which then failed to parse (a
/// chart or an operator clearing the list could not start the service).
pub fn list_setting<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let items: Vec<String> = Vec::deserialize(deserializer)?;
    items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
        .map(|item| item.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// The request span of both services: method, route pattern and status, never the
/// path, the query string, a header or an error's text. Callers may put anything in
/// those (a card number, say), and tracing-actix-web's default span records the target
/// and the user agent on every line logged inside the request. Server errors are logged
/// once, with their cause chain, by each service's error type.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        // Field values are evaluated only when the span is enabled: at a level that
        // records nothing, the route's pattern is not even copied.
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %request.match_pattern().as_deref().unwrap_or("unmatched"),
            http.status_code = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status().as_u16(),
            Err(error) => error.as_response_error().status_code().as_u16(),
        };
        span.record("http.status_code", status);
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Logs to stderr: JSON lines in production, readable text in a terminal, filtered by
/// RUST_LOG (default `info`). Installs the global subscriber once; later calls (tests
/// start many apps in one process) are no-ops.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder once (tests start many apps in one
/// process): the histograms each matcher names get its buckets (explicit buckets, not
/// summaries), then `describe` runs. Returns the handle `/metrics` renders.
pub fn install_metrics(buckets: &[(Matcher, &[f64])], describe: fn()) -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let builder = buckets
                .iter()
                .try_fold(PrometheusBuilder::new(), |b, (matcher, list)| {
                    b.set_buckets_for_metric(matcher.clone(), list)
                })
                .expect("bucket lists are non-empty");
            let handle = builder
                .install_recorder()
                .expect("the recorder is installed once per process");
            describe();
            handle
        })
        .clone()
}

/// Drains histogram buckets so memory stays bounded; the exporter's docs ask for it.
pub fn spawn_metrics_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

/// `<binary> healthcheck`: exit 0 when the service listening on `host:port` answers
/// `GET path` with 200 within 2 s, else 1 with the reason on stderr. For a container's
/// HEALTHCHECK and exec probes: the runtime images carry no curl. A wildcard `host`
/// (the service listening on every address) is asked on loopback.
pub fn healthcheck(host: &str, port: u16, path: &str) -> std::process::ExitCode {
    match probe(host, port, path) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("healthcheck: {host}:{port}{path}: {reason}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn probe(host: &str, port: u16, path: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    };
    let timeout = Duration::from_secs(2);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    if status == "200" {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Example {
        server: Server,
    }

    #[derive(Deserialize)]
    struct Server {
        port: u16,
        host: String,
        #[serde(default)]
        peers: Vec<String>,
    }

    #[test]
    fn overrides_replace_the_base_file_and_are_parsed() {
        let base = "server:\n  port: 8080\n  host: 127.0.0.1\n";
        let plain: Example = load_settings(base, "EX", &[], Some(HashMap::new())).expect("base");
        assert_eq!((plain.server.port, plain.server.host.as_str()), (8080, "127.0.0.1"));
        let overrides = HashMap::from([("EX__SERVER__PORT".to_owned(), "9".to_owned())]);
        let changed: Example = load_settings(base, "EX", &[], Some(overrides)).expect("override");
        assert_eq!(changed.server.port, 9);
        let bad = HashMap::from([("EX__SERVER__PORT".to_owned(), "many".to_owned())]);
        assert!(load_settings::<Example>(base, "EX", &[], Some(bad)).is_err());
    }

    #[test]
    fn list_keys_are_split_on_commas() {
        let base = "server:\n  port: 8080\n  host: 127.0.0.1\n  peers: []\n";
        let overrides = HashMap::from([("EX__SERVER__PEERS".to_owned(), "10.0.0.0/8,127.0.0.1".to_owned())]);
        let listed: Example = load_settings(base, "EX", &["server.peers"], Some(overrides)).expect("list");
        assert_eq!(listed.server.peers, ["10.0.0.0/8", "127.0.0.1"]);
    }
}
