//! The saga end to end, in process: POST /orders, the outbox relay, the executor running
//! `workflow/statemachine.asl.json` with the real step handlers, the payment provider
//! simulator answering by signed webhook and the warehouse worker on the task queue, all over
//! one SQLite file.

use orders_test_support as common;

use axum::http::StatusCode;
use common::stack::{Stack, assert_failed_with, assert_step, order_body, step, with_payment};
use orders::local::saga::ExecutorStarter;
use orders_domain::OutboxEvent;
use orders_processor::{SagaStarter, Started};
use orders_workflow::executor::StartOutcome;
use orders_workflow::steps::StepSettings;
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
    // webhook), SHIPPED, COMPLETED.
    assert_eq!(o["version"], 6, "{o}");
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

#[tokio::test]
async fn voucher_threshold_is_strictly_over_100() {
    let s = Stack::new().await;
    let id = s.create(&order_body("cust-5a", "mouse", 1, 100.01)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    let v = s.vouchers("cust-5a").await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["status"], "READY");
    assert_eq!(v[0]["discount"].as_f64(), Some(5.0));
    assert_eq!(v[0]["orderId"], id.as_str());
    let issued = &o["voucherIssued"];
    assert_eq!(issued["voucherCode"], v[0]["voucherCode"], "{o}");
    assert_eq!(issued["status"], "READY");

    let id = s.create(&order_body("cust-5b", "mouse", 2, 50.0)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    assert_eq!(o["totalAmount"].as_f64(), Some(100.0));
    assert!(o.get("voucherIssued").is_none(), "{o}");
    assert!(step(&o, "IssueVoucher").is_none(), "{o}");
    assert!(s.vouchers("cust-5b").await.is_empty());
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM vouchers", []), 1);
}

#[tokio::test]
async fn voucher_is_used_restored_on_failure_and_redeemable_again() {
    let mut s = Stack::new().await;
    let earn = s.create(&order_body("cust-6", "laptop", 1, 1299.99)).await;
    assert_eq!(s.wait_terminal(&earn, T).await["status"], "COMPLETED");
    let code = s.vouchers("cust-6").await[0]["voucherCode"]
        .as_str()
        .expect("voucher code")
        .to_owned();
    let redeem = |customer: &str, pm: &str| {
        let mut b = with_payment(order_body(customer, "mouse", 1, 20.0), pm);
        b["voucherCode"] = code.clone().into();
        b
    };

    // No saga runs while the relay is stopped, so USED is observed before any compensation.
    s.stop_relay().await;
    let (status, created) = s
        .post_order(&redeem("cust-6", "pm_card_chargeDeclined"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["totalAmount"].as_f64(), Some(15.0), "{created}");
    let v = s.vouchers("cust-6").await;
    assert_eq!(v[0]["status"], "USED", "{v:?}");
    let while_used = redeem("cust-6", "pm_card_visa");
    s.refused(&while_used, StatusCode::CONFLICT).await;

    s.start_relay();
    let declined = created["orderId"].as_str().unwrap();
    let o = s.wait_terminal(declined, T).await;
    assert_failed_with(&o, "PaymentDeclined");
    assert_eq!(o["voucherCode"], code.as_str());
    assert_step(&o, "RestoreVoucher", "SUCCEEDED");
    assert_eq!(s.vouchers("cust-6").await[0]["status"], "READY");

    let by_another = redeem("someone-else", "pm_card_visa");
    let p = s.refused(&by_another, StatusCode::CONFLICT).await;
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("another customer"), "{p}");
    assert_eq!(s.vouchers("cust-6").await[0]["status"], "READY");

    let again = s.create(&redeem("cust-6", "pm_card_visa")).await;
    let o = s.wait_terminal(&again, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    assert_eq!(o["discount"].as_f64(), Some(5.0), "{o}");
    assert_eq!(s.payments(&again, Some("SUCCEEDED")), 1);
    assert_eq!(
        s.query_i64(
            "SELECT amount_cents FROM payments WHERE order_id = ?1",
            [&again]
        ),
        1_500
    );
    let v = s.vouchers("cust-6").await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["status"], "USED");
    let once_more = redeem("cust-6", "pm_card_visa");
    let p = s.refused(&once_more, StatusCode::CONFLICT).await;
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("not READY"), "{p}");
}

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
async fn poison_event_is_parked_and_does_not_block_the_next() {
    let s = Stack::new().await;
    let poison_event = uuid::Uuid::new_v4().to_string();
    s.insert_outbox_row(&poison_event, &uuid::Uuid::new_v4().to_string(), "not json");
    let id = s.create(&order_body("cust-10", "laptop", 1, 10.0)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    let parked = s.store.parked_events().await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].event_id, poison_event);
    assert!(parked[0].reason.contains("not a valid event"), "{parked:?}");
    let seq = s.query_i64(
        "SELECT seq FROM outbox WHERE order_id = ?1 AND json_extract(payload, '$.type') = 'order.created'",
        [&id],
    );
    assert!(parked[0].seq < seq, "the poison row came first");
    assert!(s.published(&id));
    assert_eq!(
        s.query_i64(
            "SELECT COUNT(*) FROM outbox WHERE event_id = ?1 AND published_at IS NULL",
            [&poison_event]
        ),
        1
    );
}

#[tokio::test]
async fn an_unrelayed_event_starts_its_saga_after_a_restart() {
    let s = Stack::without_relay().await;
    let id = s.create(&order_body("cust-10b", "laptop", 1, 10.0)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!s.published(&id));
    assert_eq!(s.executions_for(&id), 0);
    assert_eq!(
        s.get_json(&format!("/orders/{id}")).await["status"],
        "PENDING"
    );

    let s = Stack::open(s.stop().await, StepSettings::default(), true).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    assert!(s.published(&id));
    assert_eq!(s.executions_for(&id), 1);
    assert_eq!(s.payments(&id, None), 1);
}

#[tokio::test]
async fn starting_one_event_twice_runs_one_saga() {
    let mut s = Stack::without_relay().await;
    let id = s.create(&order_body("cust-11", "laptop", 1, 10.0)).await;
    let payload = s.outbox_payload(&id);
    let ev = OutboxEvent::decode(payload.as_bytes()).unwrap();
    let name = ev.id.to_string();
    let starter = ExecutorStarter(s.executor.clone());
    assert_eq!(starter.start(&name, &ev.data).await.unwrap(), Started::New);
    assert_eq!(
        starter.start(&name, &ev.data).await.unwrap(),
        Started::AlreadyExists
    );
    let input = serde_json::to_value(&ev.data).unwrap();
    assert_eq!(
        s.executor.start(&name, input).await.unwrap(),
        StartOutcome::AlreadyExists
    );
    // The relay then delivers the same event: a no-op start, and the row is published; it
    // also carries the payment webhook's signal to the waiting saga.
    s.start_relay();
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    s.wait_published(&id, T).await;
    assert_eq!(s.executions_for(&id), 1);
    assert_eq!(
        s.query_i64("SELECT COUNT(*) FROM executions WHERE name = ?1", [&name]),
        1
    );
    assert_eq!(s.payments(&id, None), 1);
    let o = s.get_json(&format!("/orders/{id}")).await;
    assert_eq!(step(&o, "RequestPayment").unwrap()["attempts"], 1, "{o}");
    assert_eq!(o["version"], 6);
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
