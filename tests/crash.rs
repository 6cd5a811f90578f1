//! Crash safety of the real binary: concurrent clients with idempotency keys, `kill -9` at
//! random moments, restart on the same database, then every promise of DESIGN.md section 6
//! is checked over the API and the database file:
//! - every acknowledged order exists, and its key replays to the same order id;
//! - every order has exactly one outbox event, published, and exactly one execution;
//! - every order ends COMPLETED or FAILED;
//! - stock is conserved: start stock - completed quantities = end stock, per product;
//! - no FAILED order keeps a charge.

use rand_like::pick;
use reqwest::Client;
use rusqlite::Connection;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_orders");
const PRODUCTS: [&str; 2] = ["crash-a", "crash-b"];
const START_STOCK: i64 = 2_000;
const KILLS: usize = 3;

/// Tiny dependency-free randomness for kill timing and request mix.
mod rand_like {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    pub fn pick(n: u64) -> u64 {
        let mut x =
            STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ std::process::id() as u64;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x % n
    }
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(db: &Path, port: u16) -> Server {
        let child = Command::new(BIN)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--retry-delay-scale",
                "0.01",
            ])
            .args(["--payment-transient-error-rate", "0.2", "--database"])
            .arg(db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn orders");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{base}/health")).await.is_err() {
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Server { child, base }
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
struct Request {
    key: String,
    body: Value,
}

fn new_request(i: usize) -> Request {
    let product = PRODUCTS[pick(2) as usize];
    let method = if pick(5) == 0 {
        "pm_card_chargeDeclined"
    } else {
        "pm_card_visa"
    };
    Request {
        key: format!("crash-{}-{i}", std::process::id()),
        body: json!({"customerId": format!("crash-c{}", i % 7), "paymentMethod": method,
                     "items": [{"productId": product, "quantity": 1 + pick(3), "price": 60.5}]}),
    }
}

async fn post(client: &Client, base: &str, r: &Request) -> Option<String> {
    let res = client
        .post(format!("{base}/orders"))
        .header("x-idempotency-key", &r.key)
        .json(&r.body)
        .send()
        .await
        .map_err(|e| eprintln!("{} -> {e:?}", r.key))
        .ok()?;
    if res.status().as_u16() != 201 {
        eprintln!(
            "{} -> {} {}",
            r.key,
            res.status(),
            res.text().await.unwrap_or_default()
        );
        return None;
    }
    res.json::<Value>().await.ok()?["orderId"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_dash_nine_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut server = Server::start(&db, port).await;
    for p in PRODUCTS {
        let r = client
            .put(format!("{}/inventory/{p}", server.base))
            .json(&json!({"available": START_STOCK}))
            .send()
            .await;
        assert_eq!(r.unwrap().status().as_u16(), 200);
    }

    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let unacked: Arc<Mutex<Vec<Request>>> = Arc::default();
    let started = Instant::now();
    let mut in_flight_at_kills = Vec::new();
    let mut recovered = 0;
    let mut next = 0usize;
    for round in 0..=KILLS {
        // Rounds that end in a kill run until the kill; the last one runs briefly after the
        // final restart.
        let stop = Instant::now()
            + Duration::from_millis(if round == KILLS {
                300 + pick(500)
            } else {
                5_000
            });
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (client, base, acked, unacked) = (
                    client.clone(),
                    server.base.clone(),
                    acked.clone(),
                    unacked.clone(),
                );
                let first = next + w * 10_000;
                tokio::spawn(async move {
                    let mut i = first;
                    while Instant::now() < stop {
                        let r = new_request(i);
                        i += 1;
                        match post(&client, &base, &r).await {
                            Some(id) => drop(acked.lock().unwrap().insert(r.key, id)),
                            None => {
                                // In flight when the server died: the client retries it later.
                                unacked.lock().unwrap().push(r);
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        next += 100_000;
        if round == KILLS {
            for w in workers {
                w.await.unwrap();
            }
            break;
        }
        let answered_before = unacked.lock().unwrap().len();
        // Kill while the workers are mid-request and sagas are mid-step.
        tokio::time::sleep(Duration::from_millis(150 + pick(250))).await;
        server.kill9();
        for w in workers {
            w.await.unwrap();
        }
        let conn = Connection::open(&db).unwrap();
        let running: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM executions WHERE status = 'RUNNING'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let unpublished: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let unanswered = unacked.lock().unwrap().len() - answered_before;
        in_flight_at_kills.push((running, unpublished, unanswered));
        recovered += running + unpublished;
        server = Server::start(&db, port).await;
    }

    // Clients retry what was never answered, with the same key: a committed order replays.
    let retries: Vec<Request> = std::mem::take(&mut *unacked.lock().unwrap());
    for r in &retries {
        let mut answer = None;
        for _ in 0..3 {
            answer = post(&client, &server.base, r).await;
            if answer.is_some() {
                break;
            }
        }
        let id = answer.expect("a retry with the same key is answered after the restart");
        acked.lock().unwrap().insert(r.key.clone(), id);
    }
    let acked = acked.lock().unwrap().clone();

    // Every order reaches a terminal state.
    let deadline = Instant::now() + Duration::from_secs(120);
    let conn = Connection::open(&db).unwrap();
    loop {
        let open: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM orders WHERE status NOT IN ('COMPLETED', 'FAILED')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} orders never reached a terminal state"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settle = started.elapsed();

    // Acknowledged orders exist and replay to the same id.
    for (i, (key, id)) in acked.iter().enumerate() {
        let res = client
            .get(format!("{}/orders/{id}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "acknowledged order {id} is missing"
        );
        if i % 10 == 0 {
            let body: Value = res.json().await.unwrap();
            let r = Request {
                key: key.clone(),
                body: json!({
                "customerId": body["customerId"], "paymentMethod": body["paymentMethod"],
                "items": [{"productId": body["items"][0]["productId"], "quantity": body["items"][0]["quantity"], "price": 60.5}]}),
            };
            assert_eq!(
                post(&client, &server.base, &r).await.as_deref(),
                Some(id.as_str()),
                "key {key} replays"
            );
        }
    }

    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let orders = one("SELECT COUNT(*) FROM orders");
    assert_eq!(
        orders,
        acked.len() as i64,
        "every order was acknowledged (after client retries)"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM outbox"),
        orders,
        "one outbox event per order"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL OR dead_at IS NOT NULL"),
        0
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM executions"),
        orders,
        "one execution per order"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM executions e JOIN outbox o ON o.event_id = e.name"),
        orders,
        "each execution is named after its order's event"
    );
    assert_eq!(
        one(
            "SELECT COUNT(*) FROM payments p JOIN orders o USING (order_id) WHERE o.status = 'FAILED' AND p.status = 'CHARGED'"
        ),
        0,
        "a failed order keeps no charge"
    );
    assert_eq!(
        one(
            "SELECT COUNT(*) FROM orders o LEFT JOIN payments p USING (order_id) WHERE o.status = 'COMPLETED' AND p.status IS NOT 'CHARGED'"
        ),
        0,
        "every completed order is charged"
    );
    for p in PRODUCTS {
        let end: i64 = conn
            .query_row(
                "SELECT available FROM inventory WHERE product_id = ?1",
                [p],
                |r| r.get(0),
            )
            .unwrap();
        let sold: i64 = conn
            .query_row(
                "SELECT COALESCE(SUM(json_extract(i.value, '$.quantity')), 0) FROM orders o, json_each(o.items) i
                 WHERE o.status = 'COMPLETED' AND json_extract(i.value, '$.productId') = ?1",
                [p],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(START_STOCK - sold, end, "stock of {p} is conserved");
    }
    let completed = one("SELECT COUNT(*) FROM orders WHERE status = 'COMPLETED'");
    println!(
        "crash test: {KILLS} kills; at each kill (running executions, unpublished events, requests in flight): \
         {in_flight_at_kills:?}; recovered {recovered}; {} orders acknowledged ({} after a client retry), \
         {completed} COMPLETED, {} FAILED; all terminal {:.1} s after the first request",
        acked.len(),
        retries.len(),
        orders - completed,
        settle.as_secs_f64()
    );
}
