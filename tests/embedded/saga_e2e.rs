//! The saga end to end, in process: POST /orders, the outbox relay, the executor running
//! `workflow/statemachine.asl.json` with the real step handlers, the payment provider
//! simulator answering by signed webhook and the warehouse worker on the task queue, all over
//! one SQLite file. Here the outcomes an order can end in; the vouchers, the faults and the
//! delivery of the starting event in the submodules.

mod delivery;
mod faults;
mod vouchers;

use orders_test_support as common;

use common::stack::{Stack, assert_failed_with, assert_step, order_body, step, with_payment};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const T_BULK: Duration = Duration::from_secs(60);

#[tokio::test]
async fn happy_path_completes_reserves_and_charges_once() {
    let s = Stack::new().await;
    let before = s.stock("laptop").await;
    let id = s.create(&order_body("cust-1", "laptop", 2, 1299.99)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    // PENDING, then five moves: INVENTORY_RESERVED, AWAITING_PAYMENT, PAYMENT_PROCESSED (the
    // webhook), SHIPPED, COMPLETED; and the voucher this order earned (over 100.00 EUR).
    assert_eq!(o["version"], 7, "{o}");
    assert_eq!(s.execution_status(&id).await, "SUCCEEDED");
    assert_eq!(o["payment"]["status"], "SUCCEEDED", "{o}");
    let payment_id = o["payment"]["paymentId"].as_str().unwrap();
    assert_eq!(payment_id, format!("pay_{}", id.replace('-', "")));
    let tracking = o["shipment"]["trackingNumber"].as_str().unwrap();
    assert!(tracking.starts_with("TRK-"), "{o}");
    assert!(
        o["shipment"]["shippedAt"].as_str().unwrap().ends_with('Z'),
        "{o}"
    );
    assert!(o.get("cancellationRequested").is_none(), "{o}");
    for name in [
        "ReserveInventory",
        "RequestPayment",
        "SendNotification",
        "MarkShipped",
        "MarkCompleted",
    ] {
        let st = assert_step(&o, name, "SUCCEEDED");
        assert_eq!(st["attempts"], 1, "{st}");
    }
    assert!(step(&o, "BeginCompensation").is_none(), "{o}");
    assert_eq!(s.stock("laptop").await, before - 2);
    assert_eq!(s.payments(&id, None), 1);
    assert_eq!(s.payments(&id, Some("SUCCEEDED")), 1);
    assert_eq!(
        s.query_i64(
            "SELECT COUNT(*) FROM payment_webhooks WHERE order_id = ?1",
            [&id]
        ),
        1,
        "one webhook applied"
    );
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM shipments WHERE order_id = ?1", [&id]),
        1
    );
    let amount = s.query_i64(
        "SELECT amount_cents FROM payments WHERE order_id = ?1",
        [&id],
    );
    assert_eq!(amount, 259_998);
}

#[tokio::test]
async fn sold_out_product_fails_without_payment() {
    let s = Stack::new().await;
    let id = s.create(&order_body("cust-2", "sold-out", 1, 10.0)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_failed_with(&o, "OutOfStock");
    assert_eq!(
        s.execution_status(&id).await,
        "SUCCEEDED",
        "compensated: a business outcome"
    );
    assert_eq!(s.payments(&id, None), 0);
    assert_eq!(s.stock("sold-out").await, 0);
    assert!(step(&o, "RequestPayment").is_none(), "{o}");
    assert_step(&o, "MarkFailed", "SUCCEEDED");
}

#[tokio::test]
async fn declined_payment_fails_releases_stock_and_is_not_retried() {
    let s = Stack::new().await;
    s.put_inventory("gizmo", 10).await;
    let body = with_payment(
        order_body("cust-3", "gizmo", 3, 4.5),
        "pm_card_chargeDeclined",
    );
    let id = s.create(&body).await;
    let o = s.wait_terminal(&id, T).await;
    assert_failed_with(&o, "PaymentDeclined");
    assert_eq!(
        s.execution_status(&id).await,
        "SUCCEEDED",
        "compensated: a business outcome"
    );
    assert_eq!(s.stock("gizmo").await, 10);
    // The request succeeded; the provider's payment.failed webhook failed the waiting task.
    let pay = assert_step(&o, "RequestPayment", "SUCCEEDED");
    assert_eq!(pay["attempts"], 1, "{pay}");
    assert_eq!(s.payments(&id, None), 1);
    assert_eq!(s.payments(&id, Some("FAILED")), 1);
    assert_eq!(o["payment"]["status"], "FAILED", "{o}");
    assert!(o.get("shipment").is_none(), "{o}");
    assert_step(&o, "ReleaseInventory", "SUCCEEDED");
}

#[tokio::test]
async fn unknown_product_fails_out_of_stock() {
    let s = Stack::new().await;
    let id = s
        .create(&order_body("cust-4", "no-such-product", 1, 1.0))
        .await;
    let o = s.wait_terminal(&id, T).await;
    assert_failed_with(&o, "OutOfStock");
    assert_eq!(s.payments(&id, None), 0);
    assert_eq!(
        s.query_i64(
            "SELECT COUNT(*) FROM inventory WHERE product_id = 'no-such-product'",
            []
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_orders_for_twenty_in_stock() {
    let s = Arc::new(Stack::new().await);
    s.put_inventory("limited", 20).await;
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..50 {
        let s = s.clone();
        posts.spawn(async move {
            s.create(&order_body(&format!("cust-9-{i}"), "limited", 1, 3.0))
                .await
        });
    }
    let ids = posts.join_all().await;
    assert_eq!(ids.len(), 50);

    let mut completed = 0;
    for id in &ids {
        let stock = s.stock("limited").await;
        assert!((0..=20).contains(&stock), "stock {stock}");
        let o = s.wait_terminal(id, T_BULK).await;
        if o["status"] == "COMPLETED" {
            completed += 1;
        } else {
            assert_failed_with(&o, "OutOfStock");
            assert_eq!(s.payments(id, None), 0);
        }
    }
    assert_eq!(completed, 20);
    assert_eq!(s.stock("limited").await, 0);
    assert_eq!(
        s.query_i64(
            "SELECT COUNT(*) FROM payments WHERE status = 'SUCCEEDED'",
            []
        ),
        20
    );
}

#[tokio::test]
async fn a_terminal_order_shows_its_last_step_finished() {
    let s = Stack::new().await;
    for i in 0..20 {
        let pm = if i % 2 == 0 {
            "pm_card_visa"
        } else {
            "pm_card_chargeDeclined"
        };
        let body = with_payment(order_body(&format!("cust-12-{i}"), "laptop", 1, 10.0), pm);
        let o = s.wait_status(&s.create(&body).await, T).await;
        let steps = o["history"].as_array().unwrap();
        let running: Vec<_> = steps
            .iter()
            .filter(|st| st["finishedAt"].is_null())
            .collect();
        assert!(
            running.is_empty(),
            "{} with unfinished steps {running:?}",
            o["status"]
        );
    }
}
