//! The run's figures: the JSON summary on stdout and the per-request CSV log.
//!
//! Percentiles are nearest rank over every kept sample, no histogram: the p-th percentile of
//! n sorted samples is the one at 1-based rank ceil(p/100 * n), so it is always a latency some
//! request had, and p100 is the max. Samples are microseconds; figures are printed in
//! milliseconds. Latency covers answered requests only (any status); failures are counted in
//! `errors`, not timed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::Config;
use crate::run::{Answer, Errors, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank summary of microsecond samples, in milliseconds; `None` without samples.
pub fn latency(mut samples: Vec<u64>) -> Option<Latency> {
    samples.sort_unstable();
    let n = samples.len();
    let last = *samples.last()?;
    // Per mille in integers: 0.999 * 1000 in floats can round up a whole rank.
    let at = |per_mille: usize| {
        let rank = (per_mille * n).div_ceil(1000).clamp(1, n);
        ms(samples[rank - 1])
    };
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(Latency {
        p50: at(500),
        p90: at(900),
        p99: at(990),
        p999: at(999),
        max: ms(last),
        mean: (sum as f64 / n as f64).round() / 1000.0,
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub tool: String,
    pub url: &'a str,
    pub method: &'a str,
    pub rate: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connections: u32,
    /// Requests due in the measured window.
    pub due: u64,
    pub sent: u64,
    pub answered: u64,
    pub errors: Errors,
    /// Answers by HTTP status.
    pub codes: BTreeMap<String, u64>,
    /// Answers per second from the first due time to the last answer (or to the end of the
    /// window, if later): a server that falls behind stretches the denominator.
    pub achieved_rps: f64,
    /// From the due time (or the send, if the timer woke it early) to the end of the response.
    pub corrected_ms: Option<Latency>,
    /// From the actual send to the end of the response.
    pub uncorrected_ms: Option<Latency>,
    /// From the due time to the actual send, 0 for a send before it: the wait for a free
    /// connection, plus any timer lag beyond the 2 ms a request is woken ahead.
    pub start_lag_ms: Option<Latency>,
    pub late_starts: u64,
}

impl<'a> Report<'a> {
    pub fn new(config: &'a Config, outcome: &Outcome) -> Self {
        let answers = &outcome.answers;
        let mut codes = BTreeMap::new();
        for a in answers {
            *codes.entry(a.status.to_string()).or_insert(0) += 1;
        }
        let series = |f: fn(&Answer) -> u64| latency(answers.iter().map(f).collect());
        let last = answers.iter().map(|a| a.answered_us).max().unwrap_or(0);
        let span_us = last.max(outcome.stop_us) - outcome.window_start_us;
        let answered = answers.len() as u64;
        let achieved_rps = if span_us == 0 {
            0.0
        } else {
            (answered as f64 * 1e6 / span_us as f64 * 100.0).round() / 100.0
        };
        Self {
            tool: concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")).to_owned(),
            url: &config.url,
            method: config.method.as_str(),
            rate: config.rate,
            duration_s: config.duration_s,
            warmup_s: config.warmup_s,
            connections: config.connections,
            due: outcome.due,
            sent: outcome.sent,
            answered,
            errors: outcome.errors,
            codes,
            achieved_rps,
            corrected_ms: series(|a| a.answered_us - a.due_us.min(a.sent_us)),
            uncorrected_ms: series(|a| a.answered_us - a.sent_us),
            start_lag_ms: series(|a| a.sent_us.saturating_sub(a.due_us)),
            late_starts: outcome.late_starts,
        }
    }
}

/// `seq,uuid,status,due_us,sent_us,answered_us,location`, one line per answer in seq order,
/// times in epoch microseconds.
pub fn write_log(path: &Path, outcome: &mut Outcome) -> std::io::Result<()> {
    outcome.answers.sort_unstable_by_key(|a| a.seq);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let epoch = |us: u64| outcome.t0_epoch_us + us;
    for a in &outcome.answers {
        writeln!(
            out,
            "{},{},{},{},{},{},{}",
            a.seq,
            a.uuid.hyphenated(),
            a.status,
            epoch(a.due_us),
            epoch(a.sent_us),
            epoch(a.answered_us),
            csv_field(a.location.as_deref().unwrap_or("")),
        )?;
    }
    out.flush()
}

/// A Location is a URL and should need no quoting; one that does is quoted as CSV wants.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        assert_eq!(latency(vec![]), None);
        let one = latency(vec![7_000]).map(|l| (l.p50, l.p999, l.max, l.mean));
        assert_eq!(one, Some((7.0, 7.0, 7.0, 7.0)));
        // 1..=1000 µs: rank ceil(p * n) is the value itself.
        let l = latency((1..=1000).rev().collect()).map(|l| (l.p50, l.p90, l.p99, l.p999, l.max));
        assert_eq!(l, Some((0.5, 0.9, 0.99, 0.999, 1.0)));
        // Ten samples: p99 and p999 are both the largest, p90 the ninth.
        let l = latency((1..=10).collect()).map(|l| (l.p50, l.p90, l.p99));
        assert_eq!(l, Some((0.005, 0.009, 0.01)));
        assert_eq!(csv_field("/orders/1"), "/orders/1");
        assert_eq!(csv_field("a,\"b"), "\"a,\"\"b\"");
    }
}
