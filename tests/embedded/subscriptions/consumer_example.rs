//! `docs/examples/consumer.py`, the documented minimal subscriber, run against the local
//! stack: it must accept every delivery of an order (verified with the subscription's secret),
//! refuse a tampered one, and act on each event once.

use super::*;
use orders_test_support::stack::order_body;
use std::path::PathBuf;
use std::process::{Child, Command};

struct Consumer(Child);

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "consumer.py does not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_documented_consumer_verifies_and_takes_each_event_once() {
    let s = stack(0.01).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/events");
    let all = [
        "order.created",
        "order.payment_processed",
        "order.shipped",
        "voucher.issued",
        "order.completed",
    ];
    let (_, secret) = subscribe(&s, &url, &all).await;
    let _consumer = Consumer(
        Command::new(root.join(".venv/bin/python"))
            .arg(root.join("docs/examples/consumer.py"))
            .arg(port.to_string())
            .arg(&out)
            .env("ORDERS_WEBHOOK_SECRET", &secret)
            .spawn()
            .expect("run docs/examples/consumer.py (scripts/setup-venv.sh installs its library)"),
    );
    wait_listening(port).await;

    // Unsigned: refused, nothing acted on.
    let tampered = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", "msg_x")
        .header("webhook-timestamp", Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,AAAA")
        .body(r#"{"id":"x","subject":"y","sequence":"1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 400);

    let id = s
        .create(&order_body("cust-consumer", "laptop", 1, 1299.99))
        .await;
    assert_eq!(
        s.wait_terminal(&id, Duration::from_secs(15)).await["status"],
        "COMPLETED"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let lines = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= all.len() || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, all, "each event once, in order");
    assert!(
        lines
            .iter()
            .all(|l| l["stale"] == false && l["event"]["subject"] == id.as_str())
    );
}
