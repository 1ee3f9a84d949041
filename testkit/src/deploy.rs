//! The deployment files read as data, for the tests that hold them to the services'
//! settings: a Dockerfile's runtime stage, `compose.yaml`, environment names in scripts,
//! and a service's `base.yaml` flattened to its setting keys. No Docker engine runs on
//! the project's machines, so these files are checked here instead of being run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The last stage of a Dockerfile (what runs), instruction by instruction.
#[derive(Debug, Default)]
pub struct RuntimeStage {
    pub from: String,
    pub env: BTreeMap<String, String>,
    pub expose: Vec<u16>,
    pub user: Option<String>,
    /// (source, destination); the source is in the build context unless `--from` is set.
    pub copies: Vec<(String, String, bool)>,
    pub runs: Vec<String>,
    pub volumes: Vec<String>,
    pub healthcheck: Vec<String>,
    pub entrypoint: Vec<String>,
}

impl RuntimeStage {
    pub fn of(dockerfile: &str) -> RuntimeStage {
        let text = read(dockerfile);
        // Continuation lines joined; comments dropped.
        let joined = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("\\\n", " ");
        let mut stage = RuntimeStage::default();
        for line in joined.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (op, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match op.to_ascii_uppercase().as_str() {
                "FROM" => {
                    stage = RuntimeStage {
                        from: rest.to_owned(),
                        ..RuntimeStage::default()
                    }
                }
                "ENV" => stage.env.extend(env_pairs(rest)),
                "EXPOSE" => stage.expose.extend(
                    rest.split_whitespace()
                        .map(|p| p.trim_end_matches("/tcp").parse::<u16>().expect("EXPOSE port")),
                ),
                "USER" => stage.user = Some(rest.to_owned()),
                "COPY" => {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let from_stage = words.iter().any(|w| w.starts_with("--from="));
                    let paths: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
                    let (dest, sources) = paths.split_last().expect("COPY source and destination");
                    for source in sources {
                        stage
                            .copies
                            .push(((*source).to_owned(), (*dest).to_owned(), from_stage));
                    }
                }
                "RUN" => stage.runs.push(rest.to_owned()),
                "VOLUME" => stage.volumes.extend(json_list(rest)),
                "HEALTHCHECK" => {
                    let cmd = rest.split_once("CMD").expect("HEALTHCHECK CMD").1;
                    stage.healthcheck = json_list(cmd);
                }
                "ENTRYPOINT" => stage.entrypoint = json_list(rest),
                _ => {}
            }
        }
        stage
    }

    /// Whether `path` is a file or directory this stage puts in place (a COPY's
    /// destination or below it, or made by a RUN's `mkdir -p`).
    pub fn provides(&self, path: &str) -> bool {
        self.copies
            .iter()
            .any(|(_, dest, _)| path == dest || path.starts_with(&format!("{}/", dest.trim_end_matches('/'))))
            || self.runs.iter().any(|r| r.contains("mkdir -p") && r.contains(path))
    }

    /// The numeric uid of USER (`uid[:gid]`); panics on a name or on root.
    pub fn uid(&self) -> u32 {
        let user = self.user.as_deref().expect("a USER in the runtime stage");
        let uid: u32 = user
            .split(':')
            .next()
            .and_then(|u| u.parse().ok())
            .unwrap_or_else(|| panic!("USER {user} is not numeric (Kubernetes runAsNonRoot needs a uid)"));
        assert_ne!(uid, 0, "the runtime user is root");
        uid
    }
}

fn env_pairs(rest: &str) -> Vec<(String, String)> {
    rest.split_whitespace()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {kv}: key=value expected"));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not an exec-form list: {text}: {e}"))
}

/// `compose.yaml`, parsed (anchors resolved).
pub fn compose() -> serde_yaml::Value {
    serde_yaml::from_str(&read("compose.yaml")).expect("compose.yaml parses")
}

/// A compose service's environment, `${VAR:?…}` interpolations given `placeholder`.
pub fn compose_env(compose: &serde_yaml::Value, service: &str, placeholder: &str) -> HashMap<String, String> {
    let env = &compose["services"][service]["environment"];
    let map = env
        .as_mapping()
        .unwrap_or_else(|| panic!("services.{service}.environment is a mapping"));
    map.iter()
        .map(|(k, v)| {
            let key = k.as_str().expect("key").to_owned();
            let value = match v {
                serde_yaml::Value::String(s) if s.starts_with("${") => placeholder.to_owned(),
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).expect("scalar").trim().to_owned(),
            };
            (key, value)
        })
        .collect()
}

/// Every `PREFIX__…` environment name in a file (scripts, the chart, compose).
pub fn env_names_in(rel: &str, prefix: &str) -> BTreeSet<String> {
    let text = read(rel);
    let pattern = format!("{prefix}__");
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(&pattern).map(|i| i + from) {
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |i| i + at);
        let before = text[..at].chars().next_back();
        if before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_')) {
            names.insert(text[at..end].trim_end_matches('_').to_owned());
        }
        from = end.max(at + 1);
    }
    names
}

/// A service's `base.yaml` (every setting with its default) as dotted keys:
/// `decision_log.spool_dir`.
pub fn setting_keys(base_yaml: &str) -> BTreeSet<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(base_yaml).expect("base.yaml parses");
    let mut keys = BTreeSet::new();
    flatten(&value, String::new(), &mut keys);
    keys
}

fn flatten(value: &serde_yaml::Value, at: String, keys: &mut BTreeSet<String>) {
    match value.as_mapping() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                let k = k.as_str().expect("string keys");
                let path = if at.is_empty() {
                    k.to_owned()
                } else {
                    format!("{at}.{k}")
                };
                flatten(v, path, keys);
            }
        }
        _ => {
            keys.insert(at);
        }
    }
}

/// `RISK__DECISION_LOG__SPOOL_DIR` -> `decision_log.spool_dir`. A key under a map of
/// its own (`currency.rates.usd.rate`) counts as that map's.
pub fn setting_of(env_name: &str, prefix: &str, keys: &BTreeSet<String>) -> Option<String> {
    let rest = env_name.strip_prefix(&format!("{prefix}__"))?;
    let dotted = rest.to_ascii_lowercase().replace("__", ".");
    if keys.contains(&dotted) || keys.iter().any(|k| dotted.starts_with(&format!("{k}."))) {
        Some(dotted)
    } else {
        None
    }
}

/// Asserts every name is a setting of the service (`whence` names the file).
pub fn assert_all_settings(names: &BTreeSet<String>, prefix: &str, keys: &BTreeSet<String>, whence: &str) {
    let unknown: Vec<_> = names.iter().filter(|n| setting_of(n, prefix, keys).is_none()).collect();
    assert!(unknown.is_empty(), "{whence}: not settings of the service: {unknown:?}");
}

pub fn exists(rel: &str) -> bool {
    Path::new(&repo_path(rel)).exists()
}

/// `charts/shop/values.yaml`'s `<section>.settings` (dotted keys), values as strings.
pub fn chart_settings(section: &str) -> BTreeMap<String, String> {
    let values: serde_yaml::Value = serde_yaml::from_str(&read("charts/shop/values.yaml")).expect("values.yaml parses");
    let settings = values[section]["settings"]
        .as_mapping()
        .unwrap_or_else(|| panic!("values.yaml: {section}.settings is a mapping"));
    settings
        .iter()
        .map(|(k, v)| (k.as_str().expect("key").to_owned(), scalar(v)))
        .collect()
}

/// A service's base.yaml defaults, dotted keys to strings (lists comma-joined, as the
/// environment gives them).
pub fn setting_defaults(base_yaml: &str) -> BTreeMap<String, String> {
    let value: serde_yaml::Value = serde_yaml::from_str(base_yaml).expect("base.yaml parses");
    let mut keys = BTreeSet::new();
    flatten(&value, String::new(), &mut keys);
    keys.into_iter()
        .map(|k| {
            let v = k.split('.').fold(&value, |v, part| &v[part]);
            let s = match v {
                serde_yaml::Value::Sequence(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
                other => scalar(other),
            };
            (k, s)
        })
        .collect()
}

fn scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Sequence(items) if items.is_empty() => String::new(),
        other => serde_yaml::to_string(other).expect("scalar").trim().to_owned(),
    }
}

/// The settings the chart's templates refuse in values (`shop.forbidden` in _helpers.tpl).
pub fn chart_forbidden() -> BTreeSet<String> {
    let helpers = read("charts/shop/templates/_helpers.tpl");
    let start = helpers.find("define \"shop.forbidden\"").expect("shop.forbidden");
    let body = &helpers[start..];
    let body = &body[body.find("-}}").expect("define's end") + 3..body.find("{{- end").expect("end")];
    body.split_whitespace().map(str::to_owned).collect()
}

/// Asserts the chart's `<section>.settings` against the service's settings: every key a
/// setting with its base.yaml default (`changed` aside), and every setting either there
/// or in `left_out` (each of which the chart refuses in values), `left_out_prefix` aside.
pub fn assert_chart_settings(
    section: &str,
    base_yaml: &str,
    left_out: &[&str],
    left_out_prefix: Option<&str>,
    changed: &[&str],
) {
    let defaults = setting_defaults(base_yaml);
    let chart = chart_settings(section);
    for (key, value) in &chart {
        let default = defaults
            .get(key)
            .unwrap_or_else(|| panic!("values.yaml {section}.settings.{key}: not a setting"));
        if !changed.contains(&key.as_str()) {
            assert_eq!(
                value, default,
                "values.yaml {section}.settings.{key}: not base.yaml's default"
            );
        }
    }
    let forbidden = chart_forbidden();
    for key in defaults.keys() {
        if left_out_prefix.is_some_and(|p| key.starts_with(p)) {
            continue;
        }
        let left = left_out.contains(&key.as_str());
        assert!(
            chart.contains_key(key) || left,
            "setting {key} is neither in values.yaml {section}.settings nor left out on purpose"
        );
        assert!(
            !(chart.contains_key(key) && left),
            "{key}: left out, yet in values.yaml"
        );
        if left {
            assert!(
                forbidden.contains(key),
                "{key} is left out but the chart does not refuse it in values"
            );
        }
    }
}
