//! The binary against a server of the test's own on 127.0.0.1: what it sends (placeholders),
//! how it counts a stall (latency from the due time, not from the send), and whether it keeps
//! the rate. The server speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies).

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every request the server got, as raw text; the request number `stall` waits 500 ms.
type Seen = Arc<Mutex<Vec<String>>>;

async fn serve(stall: Option<usize>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let all = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(connection(sock, all.clone(), stall));
        }
    });
    (url, seen)
}

async fn connection(mut sock: TcpStream, seen: Seen, stall: Option<usize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request: the head, then Content-Length bytes of body.
        let request = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if buf.len() >= end + 4 + len {
                    let req = String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
                    buf.drain(..end + 4 + len);
                    break req;
                }
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let n = {
            let mut s = seen.lock().unwrap();
            s.push(request);
            s.len() - 1
        };
        if Some(n) == stall {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let answer = b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nlocation: /orders/x\r\n\r\n";
        if sock.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Runs the binary (blocking, off the runtime the server lives on); its JSON report.
async fn load(args: Vec<String>) -> serde_json::Value {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_orders-bench-load"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn args(url: &str, rate: &str, secs: &str, conns: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--url",
        url,
        "--rate",
        rate,
        "--duration",
        secs,
        "--connections",
        conns,
    ]
    .map(String::from)
    .to_vec();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_give_each_request_its_number_and_one_uuid() {
    let (url, seen) = serve(None).await;
    let dir = tempfile_dir();
    let log = format!("{dir}/log.csv");
    let report = load(args(
        &format!("{url}/o/{{uuid}}?n={{seq}}"),
        "500",
        "0.1",
        "4",
        &[
            "--method",
            "POST",
            "--header",
            "x-key: k-{uuid}",
            "--body",
            "{\"seq\":{seq},\"id\":\"{uuid}\"}",
            "--log",
            &log,
        ],
    ))
    .await;
    assert_eq!(report["answered"], 50);
    let seen = seen.lock().unwrap();
    let mut seqs = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for req in seen.iter() {
        let path_id = req
            .split("/o/")
            .nth(1)
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let seq: u64 = req
            .split("?n=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            req.contains(&format!("x-key: k-{path_id}")),
            "header uuid differs: {req}"
        );
        assert!(
            req.ends_with(&format!("{{\"seq\":{seq},\"id\":\"{path_id}\"}}")),
            "body differs: {req}"
        );
        assert!(ids.insert(path_id), "a uuid was used twice");
        seqs.push(seq);
    }
    seqs.sort();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.contains(",201,") && l.ends_with("/orders/x"))
            .count(),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_counts_for_every_request_that_waited_behind_it() {
    // One connection at 100/s: a 500 ms stall of request 50 delays the ~50 due behind it.
    let (url, _seen) = serve(Some(50)).await;
    let r = load(args(&url, "100", "2", "1", &[])).await;
    let p99 = r["corrected_ms"]["p99"].as_f64().unwrap();
    let p50 = r["uncorrected_ms"]["p50"].as_f64().unwrap();
    assert!(p99 >= 400.0, "corrected p99 {p99} ms hides the stall");
    assert!(p50 < 50.0, "uncorrected p50 {p50} ms");
    // A closed loop would measure the stall once: the uncorrected p90 stays small.
    assert!(r["uncorrected_ms"]["p90"].as_f64().unwrap() < 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_is_kept() {
    let (url, _seen) = serve(None).await;
    let r = load(args(&url, "200", "2", "8", &[])).await;
    let sent = r["sent"].as_u64().unwrap();
    assert!((392..=408).contains(&sent), "sent {sent}, due 400");
    assert_eq!(r["codes"]["201"], sent);
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("orders-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}
