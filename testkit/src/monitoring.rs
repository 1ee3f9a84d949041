//! The alert rules and the dashboard (`monitoring/`) against a real scrape: every metric
//! they name must be one the service exports, and the scrape must pass
//! `promtool check metrics` (Debian's `prometheus` package; `make monitoring-tools`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn monitoring_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../monitoring")
}

/// Every name starting with `prefix` in the alert rules and the dashboards (queries,
/// annotations and descriptions alike: a name in prose must exist too).
pub fn referenced_metrics(prefix: &str) -> BTreeSet<String> {
    let dir = monitoring_dir();
    let mut files = vec![dir.join("alerts.yaml")];
    let dashboards = std::fs::read_dir(dir.join("dashboards")).expect("monitoring/dashboards");
    files.extend(dashboards.filter_map(Result::ok).map(|e| e.path()));
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        names.extend(identifiers(&text, prefix));
    }
    assert!(!names.is_empty(), "no {prefix}* metric named in monitoring/");
    names
}

/// The metric names in a Prometheus text scrape: each series' name, and each family
/// named by a `# TYPE` line (a histogram's own name, beside its _bucket/_sum/_count).
pub fn exported_metrics(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                names.insert(name.to_owned());
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Panics, naming them, when `monitoring/` names a `prefix` metric the scrape lacks.
pub fn assert_monitoring_matches(scrape: &str, prefix: &str) {
    let exported = exported_metrics(scrape);
    let missing: Vec<_> = referenced_metrics(prefix)
        .into_iter()
        .filter(|n| !exported.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "monitoring/ names metrics the service does not export (at start-up): {missing:?}"
    );
}

/// `promtool check metrics` on the scrape: exits non-zero on a lint finding.
pub fn assert_promtool_accepts(scrape: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs: `make monitoring-tools` installs Debian's prometheus package");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("scrape written to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn identifiers(text: &str, prefix: &str) -> Vec<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix).map(|i| i + from) {
        let starts_word = text[..at].chars().next_back().is_none_or(|c| !word(c));
        let end = text[at..].find(|c: char| !word(c)).map_or(text.len(), |i| i + at);
        if starts_word && end > at + prefix.len() {
            found.push(text[at..end].to_owned());
        }
        from = end.max(at + 1);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_whole_words_with_the_prefix() {
        let text = r#"rate(risk_a_total[5m]) / x_risk_b + "risk_c_seconds_bucket{le}" risk_"#;
        assert_eq!(identifiers(text, "risk_"), ["risk_a_total", "risk_c_seconds_bucket"]);
    }

    #[test]
    fn a_scrape_lists_series_and_families() {
        let scrape = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_sum 0\nc_total 3\n";
        let names: Vec<_> = exported_metrics(scrape).into_iter().collect();
        assert_eq!(names, ["c_total", "h", "h_bucket", "h_sum"]);
    }
}
