//! The crash loop's subscriber: a webhook receiver in the test process (which is never
//! killed) subscribed to every public type before the first order, recording each delivery it
//! receives. After the loop, every public event of every order must have reached it at least
//! once (DESIGN.md section 6: "every delivery eventually made"), in `sequence` order per
//! order counting first receipts (a redelivery after a kill may repeat an event it had already
//! received, which is counted, not refused), and none may be dead-lettered.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use orders_domain::event::EventType;
use reqwest::Client;
use rusqlite::Connection;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One received delivery: (event id, order, sequence).
type Receipt = (String, String, u64);

#[derive(Clone, Default)]
pub struct Subscriber {
    receipts: Arc<Mutex<Vec<Receipt>>>,
    pub url: String,
}

async fn receive(State(r): State<Arc<Mutex<Vec<Receipt>>>>, body: Bytes) -> StatusCode {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let sequence = event["sequence"].as_str().and_then(|s| s.parse().ok());
    match (event["id"].as_str(), event["subject"].as_str(), sequence) {
        (Some(id), Some(order), Some(seq)) => {
            r.lock()
                .unwrap()
                .push((id.to_owned(), order.to_owned(), seq));
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

impl Subscriber {
    /// Listens on a free loopback port.
    pub async fn start() -> Subscriber {
        let receipts: Arc<Mutex<Vec<Receipt>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/events", post(receive))
            .with_state(receipts.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Subscriber { receipts, url }
    }

    /// Subscribes this receiver to every public type.
    pub async fn subscribe(&self, client: &Client, base: &str) {
        let types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        let res = client
            .post(format!("{base}/subscriptions"))
            .json(&json!({"url": self.url, "types": types}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    }
}

/// What the subscriber got, against what the database says was published.
#[derive(Debug)]
pub struct DeliveryReport {
    pub events: usize,
    pub received: usize,
    pub duplicates: usize,
    pub missing: Vec<String>,
    pub out_of_order: Vec<String>,
    pub dead_lettered: i64,
}

/// Waits until no delivery is pending (or `timeout`), then compares.
pub async fn check(db: &Path, subscriber: &Subscriber, timeout: Duration) -> DeliveryReport {
    let conn = Connection::open(db).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let deadline = Instant::now() + timeout;
    while count("SELECT COUNT(*) FROM deliveries WHERE state = 'PENDING'") > 0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut st = conn
        .prepare("SELECT event_id, order_id FROM outbox WHERE signal = 0 ORDER BY seq")
        .unwrap();
    let published: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let receipts = subscriber.receipts.lock().unwrap().clone();
    let mut first: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for (id, order, seq) in &receipts {
        if seen.insert(id.clone()) {
            first.entry(order.clone()).or_default().push(*seq);
        }
    }
    let out_of_order = first
        .iter()
        .filter(|(_, seqs)| seqs.windows(2).any(|w| w[0] >= w[1]))
        .map(|(order, seqs)| format!("{order}: {seqs:?}"))
        .collect();
    let missing = published
        .iter()
        .filter(|(id, _)| !seen.contains(id))
        .map(|(id, order)| format!("event {id} of order {order}"))
        .collect();
    DeliveryReport {
        events: published.len(),
        received: receipts.len(),
        duplicates: receipts.len() - seen.len(),
        missing,
        out_of_order,
        dead_lettered: count("SELECT COUNT(*) FROM deliveries WHERE state = 'FAILED'"),
    }
}
