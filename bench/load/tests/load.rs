//! The load generator through its binary, against the in-test server of `server`.
//!
//! Each test checks a figure the tool could get wrong in a way a quick look would not see: a
//! placeholder rendered twice differently, latency measured from the send instead of the due
//! time (the correction test fails then), a schedule that drifts or stops early.

mod server;

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use server::Server;

/// Runs the tool on `url` with `flags` (split on whitespace) and then `extra` (verbatim).
fn load(url: &str, flags: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orders-bench-load"))
        .args(["--url", url])
        .args(flags.split_whitespace())
        .args(extra)
        .output()
        .expect("run orders-bench-load")
}

/// Like [`load`], expecting success; returns the JSON report.
fn report(url: &str, flags: &str, extra: &[&str]) -> Value {
    let out = load(url, flags, extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn ms(report: &Value, series: &str, figure: &str) -> f64 {
    report[series][figure]
        .as_f64()
        .unwrap_or_else(|| panic!("{series}.{figure} in {report}"))
}

#[test]
fn placeholders_are_one_seq_and_one_uuid_per_request() {
    let server = Server::start(|_| None);
    let dir = std::env::temp_dir().join(format!("orders-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("placeholders.csv");
    let url = format!("http://{}/orders/{{seq}}?id={{uuid}}", server.addr);
    let log_path = log.to_str().expect("utf-8 path");
    let r = report(
        &url,
        "--rate 500 --duration 0.1 --connections 4 --method POST",
        &[
            "--header=X-Request: {seq}/{uuid}",
            "--header=Content-Type: application/json",
            r#"--body={"seq":{seq},"id":"{uuid}"}"#,
            "--log",
            log_path,
        ],
    );
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(50), Some(50)),
        "{r}"
    );
    assert_eq!(r["codes"]["201"].as_u64(), Some(50), "{r}");

    // seq -> (uuid, location) as the server saw it; URL, header and body must agree.
    let mut seen = HashMap::new();
    for got in server.received() {
        assert_eq!(got.method, "POST");
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.header("host"), Some(server.addr.to_string().as_str()));
        let (path, query) = got.target.split_once("?id=").expect("query in the target");
        let seq: u64 = path
            .trim_start_matches("/orders/")
            .parse()
            .expect("seq in the path");
        let id = uuid::Uuid::parse_str(query).expect("uuid in the query");
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(
            got.header("x-request"),
            Some(format!("{seq}/{id}").as_str())
        );
        let body: Value = serde_json::from_str(&got.body).expect("JSON body");
        assert_eq!(body, serde_json::json!({"seq": seq, "id": id.to_string()}));
        assert!(
            seen.insert(seq, (id, got.location)).is_none(),
            "seq {seq} twice"
        );
    }
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        (0..50).collect()
    );
    let ids: BTreeSet<_> = seen.values().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 50, "uuids are not unique");

    let text = std::fs::read_to_string(&log).expect("log written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 50);
    let mut first_due = None;
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7, "{line}");
        let seq: u64 = f[0].parse().expect("seq");
        assert_eq!(seq, i as u64, "log in seq order");
        let (id, location) = &seen[&seq];
        assert_eq!(
            (f[1], f[2], f[6]),
            (id.to_string().as_str(), "201", location.as_str())
        );
        let t: Vec<u64> = f[3..6]
            .iter()
            .map(|v| v.parse().expect("epoch µs"))
            .collect();
        // A request is woken up to 2 ms before its due time, and none is late here.
        assert!(
            t[0] <= t[1] + 2000 && t[1] <= t[2],
            "due - 2 ms <= sent <= answered: {line}"
        );
        // Due times are the schedule itself: 2 ms apart at 500/s.
        let first = *first_due.get_or_insert(t[0]);
        assert!(
            t[0].abs_diff(first + seq * 2000) <= 1,
            "due time off schedule: {line}"
        );
    }
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    assert!(
        now_us.abs_diff(first_due.unwrap_or(0)) < 60_000_000,
        "not epoch time"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_stall_shows_in_corrected_latency_only() {
    // One connection at 100/s: the answer to request 50 takes 500 ms, and the ~50 requests due
    // meanwhile wait for the connection. Timed from their send they look fast; from their due
    // time they waited up to half a second.
    let server = Server::start(|n| (n == 50).then_some(Duration::from_millis(500)));
    let url = format!("http://{}/", server.addr);
    let r = report(&url, "--rate 100 --duration 2 --connections 1", &[]);
    assert_eq!(r["answered"].as_u64(), Some(200), "{r}");
    let corrected_p99 = ms(&r, "corrected_ms", "p99");
    let uncorrected_p50 = ms(&r, "uncorrected_ms", "p50");
    assert!(
        corrected_p99 >= 400.0,
        "corrected p99 {corrected_p99} ms: {r}"
    );
    assert!(
        uncorrected_p50 < 50.0,
        "uncorrected p50 {uncorrected_p50} ms: {r}"
    );
    assert!(ms(&r, "uncorrected_ms", "max") >= 500.0, "{r}");
    assert!(r["late_starts"].as_u64().unwrap_or(0) >= 40, "{r}");
}

#[test]
fn the_rate_holds_and_warmup_is_not_counted() {
    let server = Server::start(|_| None);
    let url = format!("http://{}/r/{{seq}}", server.addr);
    let flags = "--rate 200 --duration 2 --warmup 0.5 --connections 8";
    let r = report(&url, flags, &[]);
    let sent = r["sent"].as_f64().unwrap_or(0.0);
    assert!((sent - 400.0).abs() <= 8.0, "sent {sent}: {r}");
    assert_eq!(r["answered"].as_u64(), r["sent"].as_u64(), "{r}");
    let rps = r["achieved_rps"].as_f64().unwrap_or(0.0);
    assert!((rps - 200.0).abs() <= 10.0, "achieved {rps}/s: {r}");
    // 100 warm-up requests reached the server too, and the measured 400 arrived over 2 s,
    // a quarter in each half second: the schedule neither bunches nor drifts.
    let got = server.received();
    assert_eq!(got.len(), 500);
    let seq = |target: &str| target.trim_start_matches("/r/").parse::<u64>().unwrap_or(0);
    let measured: Vec<_> = got
        .iter()
        .filter(|g| seq(&g.target) >= 100)
        .map(|g| g.at)
        .collect();
    let (first, last) = (measured.iter().min(), measured.iter().max());
    let (Some(&first), Some(&last)) = (first, last) else {
        panic!("no measured arrivals")
    };
    let span = last.duration_since(first).as_secs_f64();
    assert!(
        (1.9..2.1).contains(&span),
        "measured arrivals span {span} s"
    );
    for quarter in 0..4 {
        let from = first + Duration::from_millis(500 * quarter);
        let to = from + Duration::from_millis(500);
        let n = measured.iter().filter(|&&t| t >= from && t < to).count();
        assert!((90..=110).contains(&n), "{n} arrivals in quarter {quarter}");
    }
}

#[test]
fn failures_are_counted_and_set_the_exit_code() {
    // Every answer is later than the timeout; a connection each, so all five are sent on time.
    let server = Server::start(|_| Some(Duration::from_millis(300)));
    let url = format!("http://{}/", server.addr);
    let flags = "--rate 50 --duration 0.1 --connections 5 --timeout-ms 100";
    let out = load(&url, flags, &[]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("report even without answers");
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(5), Some(0)),
        "{r}"
    );
    assert_eq!(r["errors"]["timeout"].as_u64(), Some(5), "{r}");
    assert!(r["corrected_ms"].is_null(), "{r}");
    // Each reached the server once: a failed request is not retried.
    assert_eq!(server.arrivals(), 5);

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let base = "--duration 1 --connections 1";
    let out = load(&url, base, &["--rate", "10"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unreachable"));

    for bad in [
        &["--rate", "0"][..],
        &["--rate", "10", "--header", "no colon"],
    ] {
        let out = load(&url, base, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// Not a test: the loopback server for measuring the tool itself. Run with
/// `LOAD_SERVE_ADDR=127.0.0.1:PORT LOAD_SERVE_SECS=60 cargo test --release -p orders-bench-load
/// --test load -- --ignored serve`.
#[test]
#[ignore = "a server for manual measurement, not a test"]
fn serve() {
    let addr = std::env::var("LOAD_SERVE_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let secs = std::env::var("LOAD_SERVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let server = Server::start_on(&addr, false, Box::new(|_| None));
    eprintln!("serving on http://{} for {secs} s", server.addr);
    std::thread::sleep(Duration::from_secs(secs));
    eprintln!("answered {}", server.arrivals());
}
