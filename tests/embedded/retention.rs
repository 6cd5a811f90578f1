//! Retention on the whole local stack: real orders run through the saga, then one purge with
//! a clock 31 days ahead (30 kept). The finished sagas' history, the processed events, the
//! expired idempotency records, the consumed warehouse messages and the webhook records go;
//! a saga still waiting keeps everything of its own; the business records all stay, and an
//! old order still answers GET.

use orders_test_support as common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::stack::{Stack, order_body, with_payment};
use orders_sqlite::Retention;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const DAY: Duration = Duration::from_secs(86_400);

/// POSTs an order with an idempotency key; returns its id.
async fn create_with_key(s: &Stack, customer: &str, key: &str) -> String {
    let req = Request::post("/orders")
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(
            order_body(customer, "laptop", 1, 1299.99).to_string(),
        ))
        .unwrap();
    let (status, json) = s.request(req).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["orderId"].as_str().unwrap().to_owned()
}

fn count(s: &Stack, table: &str) -> i64 {
    s.query_i64(&format!("SELECT count(*) FROM {table}"), [])
}

/// Waits until no execution runs: an order is terminal a record before its execution ends
/// (the Succeed state after MarkCompleted is written by the next record), so counting right
/// after the status would race that last write.
async fn executions_ended(s: &Stack) {
    let deadline = std::time::Instant::now() + T;
    while count(s, "executions WHERE status = 'RUNNING'") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "executions still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn of_order(s: &Stack, table: &str, order: &str) -> i64 {
    s.query_i64(
        &format!("SELECT count(*) FROM {table} WHERE order_id = ?1"),
        [order],
    )
}

#[tokio::test]
async fn a_purge_a_month_later_keeps_the_business_records_and_what_still_runs() {
    let s = Stack::new().await;
    let mut done = Vec::new();
    for i in 0..3 {
        let id = create_with_key(&s, &format!("cust-r{i}"), &format!("key-{i}")).await;
        done.push(id);
    }
    for id in &done {
        let o = s.wait_terminal(id, T).await;
        assert_eq!(o["status"], "COMPLETED", "{o}");
    }
    executions_ended(&s).await;
    // Started after every shipment message above was sent and consumed; its payment is never
    // answered, so its saga waits (far longer than this test) with its own history.
    let waiting = s
        .create(&with_payment(
            order_body("cust-w", "laptop", 1, 10.0),
            "pm_card_noAnswer",
        ))
        .await;
    s.wait_for_status(&waiting, "AWAITING_PAYMENT", T).await;
    let old = s.get_json(&format!("/orders/{}", done[0])).await;

    let business = [
        "orders",
        "payments",
        "reservations",
        "shipments",
        "vouchers",
    ];
    let before: Vec<i64> = business.iter().map(|t| count(&s, t)).collect();
    assert_eq!(before[..4], [4, 4, 4, 3], "{before:?}");
    assert!(count(&s, "queue_messages WHERE deleted_at_ms IS NOT NULL") >= 3);
    assert_eq!(count(&s, "payment_webhooks"), 3);
    assert_eq!(count(&s, "idempotency"), 3);

    let purged = s
        .store
        .purge(
            &Retention::new(30 * DAY),
            chrono::Utc::now() + chrono::Duration::days(31),
            || false,
        )
        .await
        .unwrap();
    assert_eq!(purged.executions, 3, "{purged:?}");

    // The finished sagas and everything that only logged them.
    let execution = s.execution_name(&waiting);
    assert_eq!(count(&s, "executions"), 1);
    assert_eq!(
        s.query_i64(
            "SELECT count(*) FROM executions WHERE name = ?1 AND status = 'RUNNING'",
            [&execution]
        ),
        1
    );
    assert_eq!(
        count(&s, "execution_history"),
        s.query_i64(
            "SELECT count(*) FROM execution_history WHERE name = ?1",
            [&execution]
        )
    );
    for table in ["saga_steps", "notifications", "payment_webhooks"] {
        let all = count(&s, table);
        assert_eq!(
            all,
            of_order(&s, table, &waiting),
            "{table}: only the waiting order's"
        );
    }
    assert!(of_order(&s, "saga_steps", &waiting) >= 2);
    // Every event was processed (no subscriber is owed one): all gone, the waiting order's too.
    assert_eq!(count(&s, "outbox"), 0);
    assert_eq!(
        count(&s, "idempotency"),
        0,
        "expired 10 minutes after their POST"
    );
    assert_eq!(
        count(&s, "queue_messages WHERE deleted_at_ms IS NOT NULL"),
        0,
        "sent before the oldest running saga started"
    );

    // The business records, untouched.
    let after: Vec<i64> = business.iter().map(|t| count(&s, t)).collect();
    assert_eq!(after, before);
    let now_old = s.get_json(&format!("/orders/{}", done[0])).await;
    for field in [
        "orderId",
        "status",
        "version",
        "items",
        "totalCents",
        "payment",
        "shipment",
    ] {
        assert_eq!(now_old[field], old[field], "{field}: {now_old}");
    }
    assert_eq!(now_old["status"], "COMPLETED");
    let waiting_now = s.get_json(&format!("/orders/{waiting}")).await;
    assert_eq!(waiting_now["status"], "AWAITING_PAYMENT", "{waiting_now}");

    // A second purge at the same time has nothing left to do.
    let again = s
        .store
        .purge(
            &Retention::new(30 * DAY),
            chrono::Utc::now() + chrono::Duration::days(31),
            || false,
        )
        .await
        .unwrap();
    assert_eq!(again.rows(), 0, "{again:?}");
}

#[tokio::test]
async fn within_the_period_nothing_goes_but_expired_idempotency_records() {
    let s = Stack::new().await;
    let id = create_with_key(&s, "cust-k", "key-k").await;
    s.wait_terminal(&id, T).await;
    executions_ended(&s).await;
    let tables = [
        "executions",
        "execution_history",
        "saga_steps",
        "outbox",
        "payment_webhooks",
    ];
    let before: Vec<i64> = tables.iter().map(|t| count(&s, t)).collect();
    let purged = s
        .store
        .purge(
            &Retention::new(30 * DAY),
            chrono::Utc::now() + chrono::Duration::days(29),
            || false,
        )
        .await
        .unwrap();
    assert_eq!(purged.rows(), purged.idempotency, "{purged:?}");
    assert_eq!(purged.idempotency, 1);
    let after: Vec<i64> = tables.iter().map(|t| count(&s, t)).collect();
    assert_eq!(after, before);
}
