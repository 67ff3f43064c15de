//! `/metrics` scrapes, parsed by the Prometheus project's own parsers (Python's
//! `prometheus_client`, strict about both formats), for assertions on values.

use std::collections::BTreeMap;
use std::process::Command;

/// One sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its name (with `_total`, `_bucket`, … suffixes).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// Every sample.
    pub samples: Vec<Sample>,
    /// The body as served.
    pub text: String,
}

impl Scrape {
    /// Samples named `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The sum of the samples named `name` whose labels include `labels` (0 if none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// Whether any sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

/// Scrapes `/metrics` of the admin API at `admin`, as Prometheus text or OpenMetrics (asked
/// for through `Accept`, as Prometheus does), and parses it.
pub fn scrape(admin: &str, openmetrics: bool) -> Scrape {
    let accept = if openmetrics {
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    } else {
        "text/plain;version=0.0.4"
    };
    let (status, headers, text) =
        super::http_request(admin, "GET", "/metrics", &[("Accept", accept)], "");
    assert_eq!(status, 200, "GET /metrics: {text}");
    let content_type = if openmetrics {
        "application/openmetrics-text"
    } else {
        "text/plain"
    };
    assert!(
        headers
            .to_ascii_lowercase()
            .contains(&format!("content-type: {content_type}")),
        "content type of the scrape: {headers}"
    );
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), &text).expect("scrape written");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/parse_metrics.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(file.path())
        .arg(if openmetrics {
            "openmetrics"
        } else {
            "prometheus"
        })
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the scrape does not parse: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (name, labels, value): (String, BTreeMap<String, String>, f64) =
                serde_json::from_str(line).expect("a sample line");
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect();
    Scrape { samples, text }
}
