//! Crash loop on the real release binary: eight clients post keyed orders (some declined, some
//! never answered by the payment provider, some redeeming vouchers) and cancel some of them
//! with keyed PATCHes, while the process is killed with `kill -9` at random moments (sagas
//! waiting for the provider's webhook and for the warehouse among them) and restarted on the
//! same database, `CRASH_KILLS` times (default 5, about 40 s). The clients then retry, with
//! the same key, every request that was never answered, and the promises of DESIGN.md section
//! 6 are checked over the API and the database file (`common::invariants`), and a webhook
//! subscriber in the test process must have received every public event of every order, in
//! order per order (`subscriber`). A long run:
//! `CRASH_KILLS=25 cargo test --release --test process crash -- --nocapture`; it prints the
//! counts and the violations (which must be none).

mod subscriber;

use orders_test_support as common;

use common::invariants::{self, Acked};
use common::process::{
    CancelSent, Posted, Workdir, cancel_keyed, http_client, pick, post_keyed, put_stock,
};
use reqwest::Client;
use rusqlite::Connection;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PRODUCTS: [&str; 2] = ["crash-a", "crash-b"];
const START_STOCK: i64 = 1_000_000;
const WORKERS: usize = 8;
const DEFAULT_KILLS: usize = 5;

fn kills() -> usize {
    std::env::var("CRASH_KILLS")
        .ok()
        .map(|v| v.parse().expect("CRASH_KILLS is a number"))
        .unwrap_or(DEFAULT_KILLS)
}

/// Some orders are over 100 EUR (they earn vouchers), one in five is declined, one in ten is
/// never answered by the provider (it times out), and one in four redeems a READY voucher of
/// its customer when it has one.
async fn new_request(client: &Client, base: &str, worker: usize, i: usize) -> (String, Value) {
    let customer = format!("crash-c{}", i % 7);
    let method = match pick(10) {
        0 | 1 => "pm_card_chargeDeclined",
        2 => "pm_card_noAnswer",
        _ => "pm_card_visa",
    };
    let mut body = json!({"customerId": customer, "paymentMethod": method,
        "items": [{"productId": PRODUCTS[pick(2) as usize], "quantity": 1 + pick(3), "price": 60.5}]});
    if pick(4) == 0 {
        let vouchers: Option<Value> = match client
            .get(format!("{base}/customers/{customer}/vouchers"))
            .send()
            .await
        {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        let ready = vouchers.as_ref().and_then(|v| {
            v["vouchers"]
                .as_array()?
                .iter()
                .find(|v| v["status"] == "READY")
                .map(|v| v["voucherCode"].clone())
        });
        if let Some(code) = ready {
            body["voucherCode"] = code;
        }
    }
    (format!("crash-{}-{worker}-{i}", std::process::id()), body)
}

/// One order in six is cancelled by its customer right after it was acknowledged.
const CANCEL_ONE_IN: u64 = 6;

#[derive(Default)]
struct Outcomes {
    acked: Vec<Acked>,
    /// Never answered: the client does not know whether the order exists.
    lost: Vec<(String, Value)>,
    /// Answered refusals by status (409: a voucher taken by a concurrent order).
    refused: std::collections::BTreeMap<u16, usize>,
    /// Orders whose cancellation was acknowledged (202).
    cancelled: Vec<String>,
    /// Cancellations never answered: (key, order), retried after the restart.
    cancels_lost: Vec<(String, String)>,
    /// Cancellations refused, by status (409: the parcel had shipped).
    cancels_refused: std::collections::BTreeMap<u16, usize>,
}

impl Outcomes {
    fn cancel_sent(&mut self, key: String, order: String, sent: CancelSent) {
        match sent {
            CancelSent::Accepted => self.cancelled.push(order),
            CancelSent::Refused(s) => *self.cancels_refused.entry(s).or_default() += 1,
            CancelSent::Lost => self.cancels_lost.push((key, order)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_dash_nine_loses_nothing_acknowledged() {
    let kills = kills();
    let work = Workdir::new("crash.db");
    let db = &work.db;
    let client = http_client();
    // Timeouts scaled so a never-answered payment gives up after 4.5 s; the provider and the
    // warehouse slow enough that every kill finds sagas waiting on both. The warehouse packs
    // enough parcels at once for the clients' rate: a request queued longer than the scaled
    // HeartbeatSeconds (1.5 s) before packing starts would time out.
    let args = [
        "--retry-delay-scale",
        "0.01",
        "--timeout-scale",
        "0.005",
        "--payment-sim-delay-ms",
        "300",
        "--warehouse-packing-ms",
        "300",
        "--warehouse-concurrency",
        "512",
    ];
    let env = [
        ("ORDERS_PAYMENT_TRANSIENT_ERROR_RATE", "0.2"),
        ("ORDERS_ALLOW_PRIVATE_SUBSCRIBERS", "true"),
    ];
    let mut server = work.start(&args, &env).await;
    for p in PRODUCTS {
        put_stock(&client, &server.base, p, START_STOCK).await;
    }
    let events = subscriber::Subscriber::start().await;
    events.subscribe(&client, &server.base).await;

    let out: Arc<Mutex<Outcomes>> = Arc::default();
    let started = Instant::now();
    let mut at_kills = Vec::new();
    let mut next = 0usize;
    for round in 0..=kills {
        let last = round == kills;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (client, base, out, stop) = (
                    client.clone(),
                    server.base.clone(),
                    out.clone(),
                    stop.clone(),
                );
                let first = next;
                tokio::spawn(async move {
                    let mut i = first;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (key, body) = new_request(&client, &base, w, i).await;
                        i += 1;
                        let posted = post_keyed(&client, &base, &key, &body).await;
                        let order_id = match posted {
                            Posted::Created(order_id) => order_id,
                            Posted::Refused(s) => {
                                *out.lock().unwrap().refused.entry(s).or_default() += 1;
                                continue;
                            }
                            Posted::Lost => {
                                out.lock().unwrap().lost.push((key, body));
                                break;
                            }
                        };
                        let cancel = pick(CANCEL_ONE_IN) == 0;
                        out.lock().unwrap().acked.push(Acked {
                            key: key.clone(),
                            body,
                            order_id: order_id.clone(),
                        });
                        if cancel {
                            let key = format!("{key}-cancel");
                            let sent = cancel_keyed(&client, &base, &key, &order_id).await;
                            let lost = sent == CancelSent::Lost;
                            out.lock().unwrap().cancel_sent(key, order_id, sent);
                            if lost {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        next += 1_000_000;
        // A random moment: mid-request for the clients, mid-step for the sagas.
        tokio::time::sleep(Duration::from_millis(200 + pick(1_500))).await;
        let lost_before = out.lock().unwrap().lost.len();
        if last {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        } else {
            server.kill9();
        }
        for w in workers {
            w.await.unwrap();
        }
        if last {
            break;
        }
        let conn = Connection::open(db).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        at_kills.push((
            count("SELECT COUNT(*) FROM executions WHERE status = 'RUNNING'"),
            count(
                "SELECT COUNT(*) FROM executions WHERE status = 'RUNNING'
                   AND json_extract(snapshot, '$.waiting') IS NOT NULL",
            ),
            count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"),
            out.lock().unwrap().lost.len() - lost_before,
        ));
        drop(conn);
        server = work.start(&args, &env).await;
    }

    // Clients retry what was never answered, with the same key: a committed order replays,
    // an uncommitted one is created now (or refused, e.g. its voucher is taken meanwhile).
    let lost = std::mem::take(&mut out.lock().unwrap().lost);
    let mut unanswered = 0;
    for (key, body) in &lost {
        match post_keyed(&client, &server.base, key, body).await {
            Posted::Created(order_id) => out.lock().unwrap().acked.push(Acked {
                key: key.clone(),
                body: body.clone(),
                order_id,
            }),
            Posted::Refused(s) => *out.lock().unwrap().refused.entry(s).or_default() += 1,
            Posted::Lost => unanswered += 1,
        }
    }
    let cancels_lost = std::mem::take(&mut out.lock().unwrap().cancels_lost);
    for (key, order) in &cancels_lost {
        let sent = cancel_keyed(&client, &server.base, key, order).await;
        if sent == CancelSent::Lost {
            unanswered += 1;
        }
        out.lock()
            .unwrap()
            .cancel_sent(key.clone(), order.clone(), sent);
    }
    assert_eq!(unanswered, 0, "retries after the restart are answered");
    let out = std::mem::take(&mut *out.lock().unwrap());

    invariants::wait_all_terminal(db, Duration::from_secs(120)).await;
    let settle = started.elapsed();
    let delivered = subscriber::check(db, &events, Duration::from_secs(120)).await;
    let stock: Vec<(&str, i64)> = PRODUCTS.iter().map(|p| (*p, START_STOCK)).collect();
    let report = invariants::check(
        db,
        &client,
        &server.base,
        &out.acked,
        &out.cancelled,
        &stock,
    )
    .await;
    println!(
        "crash loop: kills={kills} acknowledged={} (retried after a kill: {}) refused={:?} \
         cancels_acknowledged={} (retried after a kill: {}) cancels_refused={:?} \
         orders={} completed={} failed={} cancelled={} outbox_events={} executions={} \
         payments={} refunds={} webhooks={} shipment_requests={} \
         vouchers={} replays_checked={} endings={:?} all_terminal_after={:.1}s \
         at_each_kill(running executions, waiting executions, unpublished events, requests in flight)={at_kills:?} \
         subscriber(events={}, received={}, duplicates={}, missing={}, out_of_order={}, dead_lettered={}) \
         violations={}",
        out.acked.len(),
        lost.len(),
        out.refused,
        out.cancelled.len(),
        cancels_lost.len(),
        out.cancels_refused,
        report.orders,
        report.completed,
        report.failed,
        report.cancelled,
        report.outbox_events,
        report.executions,
        report.payments,
        report.refunds,
        report.webhooks,
        report.shipment_requests,
        report.vouchers,
        report.replays_checked,
        report.endings,
        settle.as_secs_f64(),
        delivered.events,
        delivered.received,
        delivered.duplicates,
        delivered.missing.len(),
        delivered.out_of_order.len(),
        delivered.dead_lettered,
        report.violations.len()
    );
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(
        delivered.missing.is_empty(),
        "undelivered: {:#?}",
        delivered.missing
    );
    assert!(
        delivered.out_of_order.is_empty(),
        "first receipts out of sequence: {:#?}",
        delivered.out_of_order
    );
    assert_eq!(
        delivered.dead_lettered, 0,
        "a healthy subscriber gets everything"
    );
    // Every order has at least its order.created and its ending.
    assert!(
        delivered.events as i64 >= 2 * report.orders,
        "{delivered:?}"
    );
    assert!(
        out.refused.keys().all(|s| *s == 409),
        "only voucher conflicts are refused: {:?}",
        out.refused
    );
    assert!(
        out.cancels_refused.keys().all(|s| *s == 409),
        "only cancellations after shipping are refused: {:?}",
        out.cancels_refused
    );
    assert_eq!(report.parked, 0, "nothing the service wrote is undecodable");
    assert!(report.orders > 0 && report.completed > 0 && report.failed > 0);
    assert!(report.cancelled > 0 && report.webhooks > 0 && report.shipment_requests > 0);
}
