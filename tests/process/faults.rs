//! Fault injection on the real release binary, switched on by configuration only
//! (`ORDERS_PAYMENT_TRANSIENT_ERROR_RATE=0.3`, `ORDERS_NOTIFICATION_FAILURE_RATE=0.5`):
//! every order still ends terminal, the retries show in each order's step history, failed
//! orders are fully compensated (stock released, no charge kept, redeemed voucher READY
//! again), and an undecodable outbox event is parked with its reason, listed by
//! `orders parked-events`, without holding back the events committed after it.
//!
//! The injected payment fault strikes before the provider is asked, so no order here is
//! charged and then failed: the refund path is proved by the saga and race tests, and here by
//! the invariant that no order but a COMPLETED one keeps a SUCCEEDED payment.

use orders_test_support as common;

use common::invariants::{self, Acked};
use common::process::{Posted, Workdir, get_json, http_client, post_keyed, put_stock};
use common::stack::{assert_step, step};
use serde_json::{Value, json};
use std::time::Duration;

const PRODUCT: &str = "fault-a";
const STOCK: i64 = 100_000;

fn body(customer: &str, product: &str, method: &str, voucher: Option<&str>) -> Value {
    let mut b = json!({"customerId": customer, "paymentMethod": method,
        "items": [{"productId": product, "quantity": 2, "price": 60.0}]});
    if let Some(code) = voucher {
        b["voucherCode"] = json!(code);
    }
    b
}

fn parked_events(db: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
        .args(["parked-events", "--database"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON array")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_faults_end_terminal_retried_and_compensated() {
    let work = Workdir::new("faults.db");
    let db = &work.db;
    let client = http_client();
    let args = ["--retry-delay-scale", "0.01"];
    let env = [
        ("ORDERS_PAYMENT_TRANSIENT_ERROR_RATE", "0.3"),
        ("ORDERS_NOTIFICATION_FAILURE_RATE", "0.5"),
    ];

    // A poison event first in the queue: planted while the service is stopped, so the
    // relay meets it before every order of this test.
    let mut server = work.start(&args, &env).await;
    server.terminate(Duration::from_secs(20));
    let poison = uuid::Uuid::new_v4().to_string();
    rusqlite::Connection::open(db)
        .unwrap()
        .execute(
            "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, ?2, 'not json', '2026-01-01T00:00:00.000Z')",
            [&poison, &uuid::Uuid::new_v4().to_string()],
        )
        .unwrap();
    let server = work.start(&args, &env).await;
    let base = server.base.clone();
    put_stock(&client, &base, PRODUCT, STOCK).await;

    let mut acked = Vec::new();
    let mut post = async |key: String, b: Value| -> String {
        match post_keyed(&client, &base, &key, &b).await {
            Posted::Created(order_id) => {
                acked.push(Acked {
                    key,
                    body: b,
                    order_id: order_id.clone(),
                });
                order_id
            }
            other => panic!("{key}: {other:?}"),
        }
    };
    // Round 1: 120 EUR orders earn vouchers; a fifth are declined; some are sold out.
    for i in 0..40 {
        let method = if i % 5 == 0 {
            "pm_card_chargeDeclined"
        } else {
            "pm_card_visa"
        };
        let product = if i % 13 == 0 { "sold-out" } else { PRODUCT };
        post(
            format!("fault-1-{i}"),
            body(&format!("fault-c{}", i % 8), product, method, None),
        )
        .await;
    }
    assert!(invariants::wait_all_terminal(db, Duration::from_secs(60)).await);

    // Round 2: every READY voucher is redeemed by an order that is then declined: its
    // compensation must put the voucher back to READY.
    let mut redeemed = Vec::new();
    for c in 0..8 {
        let customer = format!("fault-c{c}");
        let v = get_json(&client, &base, &format!("/customers/{customer}/vouchers")).await;
        for voucher in v["vouchers"].as_array().unwrap() {
            if voucher["status"] == "READY" {
                let code = voucher["voucherCode"].as_str().unwrap().to_owned();
                let b = body(&customer, PRODUCT, "pm_card_chargeDeclined", Some(&code));
                post(format!("fault-2-{code}"), b).await;
                redeemed.push((customer.clone(), code));
            }
        }
    }
    assert!(!redeemed.is_empty(), "round 1 earned no voucher");
    assert!(invariants::wait_all_terminal(db, Duration::from_secs(60)).await);

    let (mut pay_retried, mut notify_retried, mut notify_gave_up) = (0, 0, 0);
    for a in &acked {
        let o = get_json(&client, &base, &format!("/orders/{}", a.order_id)).await;
        let attempts = |name: &str| step(&o, name).map_or(0, |s| s["attempts"].as_i64().unwrap());
        pay_retried += i64::from(attempts("RequestPayment") > 1);
        notify_retried += i64::from(attempts("SendNotification") > 1);
        if let Some(n) = step(&o, "SendNotification")
            && n["status"] == "FAILED"
        {
            notify_gave_up += 1;
            assert_eq!(
                o["status"], "COMPLETED",
                "a lost notification fails no order: {o}"
            );
        }
        if o["status"] == "FAILED" {
            for s in ["ReleaseInventory", "MarkFailed"] {
                assert_step(&o, s, "SUCCEEDED");
            }
        }
    }
    assert!(pay_retried > 0, "no payment retry in the history");
    assert!(notify_retried > 0, "no notification retry in the history");

    for (customer, code) in &redeemed {
        let v = get_json(&client, &base, &format!("/customers/{customer}/vouchers")).await;
        let found = v["vouchers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["voucherCode"] == code.as_str())
            .cloned();
        assert_eq!(
            found.as_ref().map(|v| v["status"].clone()),
            Some(json!("READY")),
            "voucher {code} restored after its order failed: {v}"
        );
    }

    // The dead letter: listed with its reason, and it held back nothing (every order above
    // was committed after it and is terminal).
    let parked = parked_events(db);
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["eventId"], poison.as_str());
    let reason = parked[0]["reason"].as_str().unwrap();
    assert!(reason.contains("not a valid event"), "{reason}");
    assert!(parked[0]["parkedAt"].is_string());

    let report = invariants::check(db, &client, &base, &acked, &[], &[(PRODUCT, STOCK)]).await;
    println!(
        "faults: orders={} completed={} failed={} payment_retried={pay_retried} \
         notification_retried={notify_retried} notification_gave_up={notify_gave_up} \
         vouchers_restored={} parked={} violations={}",
        report.orders,
        report.completed,
        report.failed,
        redeemed.len(),
        report.parked,
        report.violations.len()
    );
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.parked, 1);
    assert!(report.completed > 0 && report.failed > 0);
}
