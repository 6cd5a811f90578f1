//! Orders through the whole local stack with its real actors: the simulator's signed
//! webhooks to the stack's own listener, the warehouse on the queue.

use orders_test_support as common;

use common::stack::{Stack, StackOptions, assert_failed_with, order_body, with_payment};
use orders_workflow::executor::ExecutorOptions;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// `orders`' own defaults for the actors.
fn default_delays() -> StackOptions {
    StackOptions {
        sim_delay: Duration::from_millis(50),
        packing: Duration::from_millis(50),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_order_completes_through_the_simulator_and_the_warehouse_in_under_two_seconds() {
    let s = Stack::with_options(default_delays()).await;
    let started = Instant::now();
    let id = s.create(&order_body("life-1", "laptop", 1, 1299.99)).await;
    let o = s.wait_status(&id, T).await;
    let took = started.elapsed();
    assert_eq!(o["status"], "COMPLETED", "{o}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(o["payment"]["status"], "SUCCEEDED", "{o}");
    assert_eq!(
        o["payment"]["paymentId"],
        format!("pay_{}", id.replace('-', ""))
    );
    // The warehouse's answer as the store recorded it.
    let shipped = s.query_i64(
        &format!(
            "SELECT COUNT(*) FROM shipments WHERE order_id = ?1 AND tracking_number GLOB 'TRK-{}'",
            "[0-9A-F]".repeat(12)
        ),
        [&id],
    );
    assert_eq!(shipped, 1, "{o}");
    // The webhook that moved it was the simulator's, verified against the stack's secret.
    let webhooks = s.query_i64("SELECT COUNT(*) FROM payment_webhooks", []);
    assert_eq!(webhooks, 1);
    eprintln!("COMPLETED {took:?} after POST");
}

#[tokio::test]
async fn a_declined_card_fails_the_order_by_webhook() {
    let s = Stack::new().await;
    let body = with_payment(
        order_body("life-2", "mouse", 1, 19.99),
        "pm_card_chargeDeclined",
    );
    let id = s.create(&body).await;
    let o = s.wait_terminal(&id, T).await;
    assert_failed_with(&o, "PaymentDeclined");
    assert_eq!(o["payment"]["status"], "FAILED", "{o}");
}

#[tokio::test]
async fn a_card_never_answered_times_the_payment_out() {
    // TimeoutSeconds 900 scaled to 0.45 s.
    let s = Stack::with_options(StackOptions {
        executor: ExecutorOptions {
            delay_scale: 0.001,
            timeout_scale: 0.0005,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let body = with_payment(order_body("life-3", "mouse", 1, 19.99), "pm_card_noAnswer");
    let id = s.create(&body).await;
    let o = s.wait_terminal(&id, T).await;
    assert_failed_with(&o, "PaymentTimeout");
    let shipped = s.query_i64("SELECT COUNT(*) FROM shipments WHERE order_id = ?1", [&id]);
    assert_eq!(shipped, 0, "{o}");
}
