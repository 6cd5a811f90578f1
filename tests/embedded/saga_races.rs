//! Cancellation against the outside actors, end to end on the local stack (the relay, the
//! executor, the provider simulator's signed webhooks, the warehouse worker): the races the
//! lifecycle is built to win. Whatever the interleaving, the database decides one way, and no
//! order ends CANCELLED or FAILED holding a charge or a reservation.
//!
//! - a cancellation while the saga waits for the provider fails the waiting task at once;
//! - cancellations fired at random moments around the payment webhook and around the
//!   shipment: each one is either accepted (the order ends CANCELLED) or refused 409 because
//!   the parcel had shipped (the order ends COMPLETED), never both, never neither;
//! - eight concurrent cancellations of one order: all 202, one request recorded, one signal;
//! - a cancellation of an order failing already is refused, and it still ends FAILED.

use orders_test_support as common;

use axum::http::StatusCode;
use common::stack::{Stack, StackOptions, order_body, with_payment};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// No charge and no reservation is kept by an order that did not complete.
fn assert_nothing_held(s: &Stack, id: &str, order: &Value) {
    let charged = s.payments(id, Some("SUCCEEDED"));
    let reserved = s.query_i64(
        "SELECT COUNT(*) FROM reservations WHERE order_id = ?1 AND status = 'RESERVED'",
        [id],
    );
    if order["status"] == "COMPLETED" {
        assert_eq!((charged, reserved), (1, 1), "{order}");
    } else {
        assert_eq!((charged, reserved), (0, 0), "{order}");
    }
}

#[tokio::test]
async fn a_cancellation_fails_the_task_waiting_for_the_provider_at_once() {
    let s = Stack::new().await;
    s.put_inventory("gizmo", 10).await;
    let body = with_payment(order_body("race-1", "gizmo", 2, 5.0), "pm_card_noAnswer");
    let id = s.create(&body).await;
    s.wait_for_status(&id, "AWAITING_PAYMENT", T).await;
    let asked = Instant::now();
    let (status, accepted) = s.cancel(&id, Some("too slow")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["cancellationRequested"], true, "{accepted}");
    let o = s.wait_terminal(&id, T).await;
    // The payment's TimeoutSeconds is 900: only the cancellation can end it this soon.
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(o["status"], "CANCELLED", "{o}");
    assert_eq!(o["cancellationReason"], "too slow", "{o}");
    assert!(o.get("failureReason").is_none(), "{o}");
    assert_eq!(s.execution_status(&id).await, "SUCCEEDED");
    assert_eq!(s.stock("gizmo").await, 10);
    assert_nothing_held(&s, &id, &o);
    let history = o["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h["step"] == "MarkCancelled"), "{o}");
}

/// `n` orders, each cancelled a random delay within `window_ms` after it reached `from` (or
/// after its creation): the outcome of every one must be one of the two the database allows.
async fn cancel_at_random(
    s: Arc<Stack>,
    product: &str,
    n: usize,
    from: Option<&'static str>,
    window_ms: u64,
) -> (usize, usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = s.clone();
        let product = product.to_owned();
        tasks.spawn(async move {
            let id = s
                .create(&order_body(
                    &format!("race-{product}-{i}"),
                    &product,
                    1,
                    7.0,
                ))
                .await;
            if let Some(status) = from {
                s.wait_for_status(&id, status, T).await;
            }
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..window_ms))).await;
            let (status, answer) = s.cancel(&id, None).await;
            let o = s.wait_terminal(&id, T).await;
            match status {
                StatusCode::ACCEPTED => {
                    assert_eq!(o["status"], "CANCELLED", "accepted, so cancelled: {o}");
                    assert!(o.get("shipment").is_none(), "{o}");
                }
                StatusCode::CONFLICT => {
                    assert_eq!(o["status"], "COMPLETED", "refused, so it had shipped: {o}");
                    let detail = answer["detail"].as_str().unwrap_or_default();
                    assert!(detail.contains("shipped"), "{answer}");
                }
                other => panic!("cancel answered {other}: {answer}"),
            }
            assert_nothing_held(&s, &id, &o);
            status == StatusCode::ACCEPTED
        });
    }
    let outcomes = tasks.join_all().await;
    let cancelled = outcomes.iter().filter(|c| **c).count();
    (cancelled, outcomes.len() - cancelled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_racing_the_payment_webhook_are_cancelled_or_refused_never_half() {
    // The webhook comes 100 ms after the request; each cancellation lands 0-400 ms after the
    // test saw the order waiting for it: before the webhook, or after it and before the parcel
    // leaves (packing takes 700 ms), so both sides of the webhook are hit. The windows are
    // wide because seeing the status takes some polls: on a loaded machine those ate most of
    // a 30 ms window, and every cancellation came after the webhook.
    let s = Arc::new(
        Stack::with_options(StackOptions {
            sim_delay: Duration::from_millis(100),
            packing: Duration::from_millis(700),
            ..StackOptions::default()
        })
        .await,
    );
    s.put_inventory("race-pay", 1_000).await;
    let (cancelled, completed) =
        cancel_at_random(s.clone(), "race-pay", 40, Some("AWAITING_PAYMENT"), 400).await;
    assert_eq!(cancelled + completed, 40);
    assert!(cancelled > 0, "no cancellation won in 40 tries");
    // Every cancelled order's stock came back; every completed one's is gone.
    assert_eq!(s.stock("race-pay").await, 1_000 - completed as i64);
    // A cancellation after the webhook finds the order charged, and compensation refunds it;
    // one before the webhook makes the webhook's success refunded as it is recorded. Every
    // cancelled order's payment ends REFUNDED either way.
    let outcome = |o: &str| {
        s.query_i64(
            "SELECT COUNT(*) FROM payment_webhooks w JOIN orders o USING (order_id)
             WHERE o.status = 'CANCELLED' AND w.outcome = ?1",
            [o],
        )
    };
    let (after, before) = (outcome("applied"), outcome("refunded"));
    let refunded = s.query_i64(
        "SELECT COUNT(*) FROM payments p JOIN orders o USING (order_id)
         WHERE o.status = 'CANCELLED' AND p.status = 'REFUNDED'",
        [],
    );
    println!(
        "payment race: cancelled={cancelled} completed={completed} \
         cancelled_after_the_webhook={after} cancelled_before_it={before} refunded={refunded}"
    );
    assert!(
        after > 0 && before > 0,
        "both sides of the webhook: {after} after, {before} before"
    );
    assert_eq!(
        refunded,
        after + before,
        "every charge of a cancelled order refunded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_racing_the_shipment_are_cancelled_or_refused_never_half() {
    // Each cancellation lands 0-2500 ms after the payment, while the warehouse packs for
    // 300 ms (the parcel leaves about half a second after the payment with 40 sagas at once,
    // and over a second later on a loaded machine): some before it leaves, some after, a few
    // at the moment it does.
    let s = Arc::new(
        Stack::with_options(StackOptions {
            sim_delay: Duration::from_millis(1),
            packing: Duration::from_millis(300),
            ..StackOptions::default()
        })
        .await,
    );
    s.put_inventory("race-ship", 1_000).await;
    let (cancelled, completed) =
        cancel_at_random(s.clone(), "race-ship", 40, Some("PAYMENT_PROCESSED"), 2500).await;
    assert_eq!(cancelled + completed, 40);
    assert!(
        cancelled > 0 && completed > 0,
        "{cancelled} cancelled, {completed} completed"
    );
    assert_eq!(s.stock("race-ship").await, 1_000 - completed as i64);
    // A paid order that was cancelled got its money back.
    let paid_then_cancelled = s.query_i64(
        "SELECT COUNT(*) FROM payments p JOIN orders o USING (order_id)
         WHERE o.status = 'CANCELLED' AND p.status = 'REFUNDED'",
        [],
    );
    assert!(
        paid_then_cancelled > 0,
        "no cancellation caught a paid order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_cancellations_record_one_request() {
    let s = Arc::new(Stack::new().await);
    let body = with_payment(
        order_body("race-twice", "laptop", 1, 10.0),
        "pm_card_noAnswer",
    );
    let id = s.create(&body).await;
    s.wait_for_status(&id, "AWAITING_PAYMENT", T).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (s, id) = (s.clone(), id.clone());
        tasks.spawn(async move { s.cancel(&id, Some("once")).await });
    }
    for (status, answer) in tasks.join_all().await {
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "CANCELLED", "{o}");
    let signals = s.query_i64(
        "SELECT COUNT(*) FROM outbox WHERE order_id = ?1
           AND json_extract(payload, '$.data.signal') = 'cancelWaiting'",
        [&id],
    );
    assert_eq!(signals, 1, "one cancellation recorded, one signal");
}

#[tokio::test]
async fn an_order_failing_already_cannot_be_cancelled_and_ends_failed() {
    let s = Stack::with_options(StackOptions {
        failure_rate: 1.0,
        ..StackOptions::default()
    })
    .await;
    let id = s.create(&order_body("race-fail", "laptop", 1, 10.0)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(
        o["status"], "FAILED",
        "the warehouse refuses every parcel: {o}"
    );
    let (status, answer) = s.cancel(&id, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let o = s.get_json(&format!("/orders/{id}")).await;
    assert_eq!(o["status"], "FAILED", "{o}");
    assert!(o.get("cancellationRequested").is_none(), "{o}");
    assert_nothing_held(&s, &id, &o);
    assert_eq!(s.payments(&id, Some("REFUNDED")), 1, "paid, then refunded");
}
