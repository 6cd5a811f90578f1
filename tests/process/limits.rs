//! Hostile clients against the real binary: requests past the in-flight cap are shed with a
//! 503 problem+json, a stalled request is answered 503 at the request timeout, a silent
//! connection is closed at the idle timeout, connections past the cap wait instead of being
//! served, and a JSON object with a key twice is a 400 problem+json.

use orders_test_support as common;

use common::process::{Server, Workdir, http_client, post_raw};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Raw sockets, blocking: these clients misbehave below HTTP, where a client library would
/// not let them.
fn connect(port: u16, first_bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(first_bytes).unwrap();
    s
}

/// A POST whose body never comes: its handler waits for the body, holding its slot.
fn stalled_post(port: u16) -> TcpStream {
    connect(
        port,
        b"POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
}

/// Everything the server sends until it closes (or `within` passes).
fn read_all(s: &mut TcpStream, within: Duration) -> String {
    s.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let _ = tokio::task::block_in_place(|| s.read_to_end(&mut out));
    String::from_utf8_lossy(&out).into_owned()
}

/// GET /health: the cheapest request, so its answer shows only whether a slot is free.
async fn health(server: &Server) -> reqwest::Response {
    let url = format!("{}/health", server.base);
    http_client().get(url).send().await.expect("GET /health")
}

fn problem_type(raw_response: &str) -> String {
    let body = raw_response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str::<Value>(body).map_or(String::new(), |v| {
        v["type"].as_str().unwrap_or_default().to_owned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_cap_sheds_and_stalled_requests_time_out() {
    let work = Workdir::new("l.db");
    let args = ["--max-in-flight", "2", "--request-timeout-secs", "2"];
    let server = work.start(&args, &[]).await;
    let mut stalled = vec![stalled_post(work.port), stalled_post(work.port)];
    tokio::time::sleep(Duration::from_millis(300)).await;

    let shed = health(&server).await;
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.headers()["content-type"], "application/problem+json");
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["type"], "/problems/overloaded", "{body}");

    // The stalled requests are cut at the timeout, each with a problem.
    let started = Instant::now();
    for s in &mut stalled {
        let raw = read_all(s, Duration::from_secs(5));
        assert!(raw.starts_with("HTTP/1.1 503"), "{raw}");
        assert_eq!(problem_type(&raw), "/problems/timeout", "{raw}");
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    // Slots are free again.
    assert_eq!(health(&server).await.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_capped() {
    let work = Workdir::new("l.db");
    let port = work.port;
    let args = [
        "--max-connections",
        "2",
        "--client-idle-timeout-secs",
        "2",
        "--request-timeout-secs",
        "1",
    ];
    let _server = work.start(&args, &[]).await;
    // Server::start's own probe connection may still be closing: let it go.
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // Two clients that start a request line and stop (slow loris) take both connections.
    let mut loris = Vec::new();
    for _ in 0..2 {
        loris.push(connect(port, b"GET /health HTTP/1.1\r\nHo"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third client is not served while they hold them...
    let started = Instant::now();
    let mut third = connect(
        port,
        b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    // ...and is once the idle timeout closes them.
    let raw = read_all(&mut third, Duration::from_secs(5));
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "served at once ({waited:?}): the cap did not hold"
    );
    for s in &mut loris {
        let raw = read_all(s, Duration::from_secs(3));
        assert!(!raw.starts_with("HTTP/1.1 200"), "{raw}");
    }
}

#[tokio::test]
async fn duplicate_keys_and_oversized_input_are_refused() {
    let limited = Workdir::new("l.db");
    let server = limited.start(&["--body-limit", "2048"], &[]).await;
    let client = http_client();
    let item = r#"{"productId":"laptop","quantity":1,"price":1}"#;
    let cases = [
        (
            format!(r#"{{"customerId":"a","customerId":"b","items":[{item}]}}"#),
            None,
            400,
            "/problems/malformed-json",
        ),
        (
            r#"{"customerId":"a","items":[{"productId":"x","productId":"laptop","quantity":1,"price":1}]}"#
                .to_owned(),
            None,
            400,
            "/problems/malformed-json",
        ),
        (
            format!(
                r#"{{"customerId":"a","items":[{}]}}"#,
                vec![item; 101].join(",")
            ),
            None,
            413,
            "/problems/payload-too-large",
        ),
        (
            format!(r#"{{"customerId":"a","items":[{item}]}}"#),
            Some("k".repeat(256)),
            400,
            "/problems/bad-request",
        ),
    ];
    for (body, key, status, kind) in cases {
        let res = post_raw(&client, &server.base, body, key.as_deref()).await;
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["type"], kind, "{p}");
    }
    let items_101 = format!(
        r#"{{"customerId":"a","items":[{}]}}"#,
        vec![r#"{"productId":"p","quantity":1,"price":1}"#; 101].join(",")
    );
    assert!(items_101.len() < 8_000);
    let default = Workdir::new("l.db");
    let big = default.start(&[], &[]).await;
    let res = post_raw(&client, &big.base, items_101, None).await;
    assert_eq!(res.status().as_u16(), 400);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "items", "{p}");
    assert_eq!(common::count_rows(&limited.db, "orders"), 0);
    assert_eq!(common::count_rows(&default.db, "orders"), 0);
}

#[test]
fn an_idle_timeout_not_above_the_request_timeout_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
        .args(["--listen", "127.0.0.1:0", "--database"])
        .arg(dir.path().join("l.db"))
        .args([
            "--client-idle-timeout-secs",
            "5",
            "--request-timeout-secs",
            "5",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process started serving");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("--client-idle-timeout-secs"), "{err}");
}
