//! Faults end to end: the provider's transient errors retried by the state machine and never
//! charging twice, notifications that always fail never failing a paid order.

use super::{T, T_BULK};
use orders_test_support::stack::{Stack, assert_failed_with, assert_step, order_body, step};

use orders_workflow::steps::StepSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_payment_errors_are_retried_and_never_leak() {
    let s = Stack::with(StepSettings {
        payment_transient_rate: 0.5,
        ..Default::default()
    })
    .await;
    let before = s.stock("laptop").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            s.create(&order_body(&format!("cust-7-{i}"), "laptop", 1, 10.0))
                .await,
        );
    }
    let (mut completed, mut retried) = (0, 0);
    for id in &ids {
        let o = s.wait_terminal(id, T_BULK).await;
        let pay = step(&o, "RequestPayment").expect("RequestPayment");
        let attempts = pay["attempts"].as_i64().unwrap();
        assert!((1..=5).contains(&attempts), "{pay}");
        retried += i64::from(attempts > 1);
        if o["status"] == "COMPLETED" {
            completed += 1;
            assert_eq!(pay["status"], "SUCCEEDED", "{pay}");
            assert_eq!(s.payments(id, Some("SUCCEEDED")), 1);
        } else {
            assert_failed_with(&o, "Transient");
            assert_eq!(attempts, 5, "retries exhausted: {pay}");
            assert_eq!(s.payments(id, Some("SUCCEEDED")), 0);
            let released = s.query_i64(
                "SELECT COUNT(*) FROM reservations WHERE order_id = ?1 AND status = 'RELEASED'",
                [id],
            );
            assert_eq!(released, 1, "{o}");
        }
    }
    assert!(
        retried > 0,
        "no payment was retried in 20 orders at rate 0.5"
    );
    assert_eq!(s.stock("laptop").await, before - completed);
}

#[tokio::test]
async fn failed_notifications_never_fail_a_paid_order() {
    let s = Stack::with(StepSettings {
        notification_failure_rate: 1.0,
        ..Default::default()
    })
    .await;
    let id = s.create(&order_body("cust-8", "laptop", 1, 1299.99)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    let n = assert_step(&o, "SendNotification", "FAILED");
    assert_eq!(n["attempts"], 5, "initial try and 4 retries: {n}");
    assert!(
        n["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Transient"),
        "{n}"
    );
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM notifications", []), 0);
    assert_eq!(s.payments(&id, Some("SUCCEEDED")), 1);
    assert_eq!(s.vouchers("cust-8").await.len(), 1);
}
