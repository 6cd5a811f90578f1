//! Graceful shutdown under load: SIGTERM while eight clients post keyed orders. The process
//! must exit on its own, successfully, within its grace period; every order it acknowledged
//! must be in the database after a restart, and requests it never answered, retried with
//! their keys, must find their order or create it once (`common::invariants`).

use orders_test_support as common;

use common::invariants::{self, Acked};
use common::process::{Posted, Workdir, http_client, post_keyed, put_stock};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PRODUCT: &str = "shutdown-a";
const STOCK: i64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_nothing_acknowledged() {
    let work = Workdir::new("shutdown.db");
    let client = http_client();
    // The payment simulator lives in the process: a webhook it had not sent when the process
    // stopped is never sent, and that payment ends by its timeout, scaled here to 9 s.
    let args = [
        "--retry-delay-scale",
        "0.01",
        "--timeout-scale",
        "0.01",
        "--shutdown-grace-secs",
        "5",
    ];
    let mut server = work.start(&args, &[]).await;
    put_stock(&client, &server.base, PRODUCT, STOCK).await;

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let lost: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base) = (client.clone(), server.base.clone());
            let (acked, lost, stop) = (acked.clone(), lost.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("shutdown-{w}-{i}");
                    i += 1;
                    let body = json!({"customerId": format!("sd-{w}"),
                        "items": [{"productId": PRODUCT, "quantity": 1, "price": 120.0}]});
                    match post_keyed(&client, &base, &key, &body).await {
                        Posted::Created(order_id) => acked.lock().unwrap().push(Acked {
                            key,
                            body,
                            order_id,
                        }),
                        other => {
                            // Refused (503 while draining) or unanswered: retried later.
                            assert_ne!(other, Posted::Refused(500), "{key}");
                            lost.lock().unwrap().push((key, body));
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let acked_before_term = acked.lock().unwrap().len();
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let server = work.start(&args, &[]).await;
    let lost = std::mem::take(&mut *lost.lock().unwrap());
    for (key, body) in &lost {
        match post_keyed(&client, &server.base, key, body).await {
            Posted::Created(order_id) => acked.lock().unwrap().push(Acked {
                key: key.clone(),
                body: body.clone(),
                order_id,
            }),
            other => panic!("retry of {key} after the restart: {other:?}"),
        }
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    invariants::wait_all_terminal(&work.db, Duration::from_secs(60)).await;
    let report = invariants::check(
        &work.db,
        &client,
        &server.base,
        &acked,
        &[],
        &[(PRODUCT, STOCK)],
    )
    .await;
    println!(
        "shutdown: acknowledged before SIGTERM {acked_before_term}, in all {} (retried {}), \
         orders={} completed={} violations={}",
        acked.len(),
        lost.len(),
        report.orders,
        report.completed,
        report.violations.len()
    );
    assert!(acked_before_term > 0, "no load before SIGTERM");
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}
