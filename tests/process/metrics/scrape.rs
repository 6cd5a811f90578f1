//! One scrape of `/metrics`, parsed by the reference parser (PyPI `prometheus-client`), and
//! the questions the tests ask of it.

use reqwest::Client;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Reads the exposition on stdin and prints its samples as JSON (non-finite values as null).
const PARSE: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families

out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        value = s.value if math.isfinite(s.value) else None
        out.append({"type": family.type, "name": s.name,
                    "labels": s.labels, "value": value})
print(json.dumps(out))
"#;

#[derive(Debug, serde::Deserialize)]
pub struct Sample {
    #[serde(rename = "type")]
    kind: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    value: Option<f64>,
}

/// A histogram's name and its labels but `le`.
type Series = (String, Vec<(String, String)>);

/// One scrape, as the reference parser read it.
pub struct Scrape(pub Vec<Sample>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} not found: run scripts/setup-venv.sh (it installs prometheus-client)",
            python.display()
        );
        let mut child = Command::new(python)
            .args(["-c", PARSE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(text.as_bytes()).expect("python reads");
        drop(stdin);
        let out = child.wait_with_output().expect("python runs");
        assert!(
            out.status.success(),
            "prometheus-client refused the exposition:\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        Scrape(serde_json::from_slice(&out.stdout).expect("the script prints JSON"))
    }

    /// The sum of the samples named `name` whose labels include `labels` (0 when none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
            })
            .map(|s| s.value.unwrap_or(f64::INFINITY))
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }

    /// Every histogram series' buckets are cumulative and end in `+Inf` equal to `_count`.
    pub fn assert_histograms_cumulative(&self) {
        let mut series: BTreeMap<Series, Vec<(f64, f64)>> = BTreeMap::new();
        for s in self.0.iter().filter(|s| s.kind == "histogram") {
            let Some(base) = s.name.strip_suffix("_bucket") else {
                continue;
            };
            let mut labels = s.labels.clone();
            let le = labels.remove("le").expect("a bucket has le");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le is a number")
            };
            let key = (base.to_owned(), labels.into_iter().collect());
            series
                .entry(key)
                .or_default()
                .push((le, s.value.expect("a finite count")));
        }
        assert!(!series.is_empty(), "no histogram in the scrape");
        for ((base, labels), mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{base}{labels:?}: buckets not cumulative: {buckets:?}"
            );
            let (last_le, last) = *buckets.last().unwrap();
            assert!(last_le.is_infinite(), "{base}{labels:?} has no +Inf bucket");
            let label_refs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let count = self.value(&format!("{base}_count"), &label_refs);
            assert_eq!(last, count, "{base}{labels:?}: +Inf bucket vs _count");
        }
    }
}

pub async fn scrape(client: &Client, url: &str, token: Option<&str>) -> Scrape {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("GET /metrics answered");
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(&res.text().await.unwrap())
}
