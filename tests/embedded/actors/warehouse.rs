//! The warehouse worker on the local queue, answering through the executor's task tokens.

use orders_test_support as common;

use common::stack::{Stack, StackOptions, order_body};
use orders::local::assemble::WAREHOUSE_QUEUE;
use orders_workflow::executor::{ExecutorOptions, HistoryEventKind, QueueMessage};
use serde_json::json;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);

/// The executor's history of the order's saga, as event kinds and states.
async fn history(s: &Stack, order: &str) -> Vec<orders_workflow::executor::HistoryEvent> {
    let name = s.execution_name(order);
    s.executor.store().history(&name).await.expect("history")
}

fn heartbeats(events: &[orders_workflow::executor::HistoryEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.kind == HistoryEventKind::TaskHeartbeat)
        .count()
}

/// Live (not deleted) messages on the warehouse queue.
async fn live(s: &Stack) -> u32 {
    let depth = s
        .store
        .depth(WAREHOUSE_QUEUE, chrono::Utc::now())
        .await
        .unwrap();
    depth.visible + depth.in_flight
}

#[tokio::test]
async fn heartbeats_keep_a_packing_longer_than_heartbeat_seconds_alive() {
    // HeartbeatSeconds 300 scaled to 0.3 s, packing four times that.
    let s = Stack::with_options(StackOptions {
        executor: ExecutorOptions {
            delay_scale: 0.001,
            timeout_scale: 0.001,
            ..Default::default()
        },
        packing: Duration::from_millis(1_200),
        ..Default::default()
    })
    .await;
    let id = s.create(&order_body("wh-1", "laptop", 1, 1299.99)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    let events = history(&s, &id).await;
    let beats = heartbeats(&events);
    assert!(beats >= 3, "{beats} heartbeats in 1.2 s at one per 0.1 s");
    assert!(
        !events
            .iter()
            .any(|e| e.kind == HistoryEventKind::TaskTimedOut),
        "{events:?}"
    );
    assert_eq!(live(&s).await, 0, "the message was deleted");
}

#[tokio::test]
async fn a_failure_rate_of_one_refuses_every_shipment() {
    let s = Stack::with_options(StackOptions {
        failure_rate: 1.0,
        ..Default::default()
    })
    .await;
    let before = s.stock("monitor").await;
    let id = s.create(&order_body("wh-2", "monitor", 2, 199.0)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "FAILED", "{o}");
    let reason = o["failureReason"].as_str().unwrap_or_default();
    assert!(reason.contains("WarehouseRefused"), "{o}");
    let shipped = s.query_i64("SELECT COUNT(*) FROM shipments WHERE order_id = ?1", [&id]);
    assert_eq!(shipped, 0, "{o}");
    assert_eq!(o["payment"]["status"], "REFUNDED", "{o}");
    assert_eq!(s.stock("monitor").await, before);
    assert_eq!(live(&s).await, 0, "the refused request was deleted");
}

#[tokio::test]
async fn a_request_whose_task_is_closed_or_unknown_is_deleted() {
    let s = Stack::new().await;
    let id = s.create(&order_body("wh-3", "mouse", 1, 19.99)).await;
    assert_eq!(s.wait_terminal(&id, T).await["status"], "COMPLETED");
    let used = history(&s, &id)
        .await
        .into_iter()
        .find(|e| {
            e.kind == HistoryEventKind::TaskScheduled
                && e.state.as_deref() == Some("PrepareShipment")
        })
        .and_then(|e| e.task_token)
        .expect("the shipment's token");
    for (dedup, token) in [("stale", used.as_str()), ("garbage", "not-a-token")] {
        let message = QueueMessage {
            dedup_id: dedup.into(),
            body: json!({"orderId": id, "items": [], "taskToken": token}),
        };
        assert!(s.store.enqueue(WAREHOUSE_QUEUE, &message).await.unwrap());
    }
    let deadline = Instant::now() + T;
    while live(&s).await > 0 {
        assert!(Instant::now() < deadline, "stale requests kept");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let received = s.query_i64(
        "SELECT COUNT(*) FROM queue_messages WHERE dedup_id IN ('stale', 'garbage')
         AND receive_count = 1 AND deleted_at_ms IS NOT NULL",
        [],
    );
    assert_eq!(received, 2, "each received once, then deleted");
    let o = s.get_json(&format!("/orders/{id}")).await;
    assert_eq!(o["status"], "COMPLETED", "untouched: {o}");
}

#[tokio::test]
async fn a_restart_mid_packing_packs_again_with_the_same_token() {
    let slow = StackOptions {
        packing: Duration::from_secs(30),
        ..Default::default()
    };
    let s = Stack::with_options(slow).await;
    let id = s.create(&order_body("wh-4", "keyboard", 1, 49.0)).await;
    let deadline = Instant::now() + T;
    loop {
        let depth = s
            .store
            .depth(WAREHOUSE_QUEUE, chrono::Utc::now())
            .await
            .unwrap();
        if depth.in_flight == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never took the request"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dir = s.stop().await;
    let s = Stack::start(dir, StackOptions::default()).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    let shipped = s.query_i64(
        "SELECT COUNT(*) FROM shipments WHERE order_id = ?1 AND tracking_number LIKE 'TRK-%'",
        [&id],
    );
    assert_eq!(shipped, 1, "{o}");
    let rows = s.query_i64(
        "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1",
        [WAREHOUSE_QUEUE],
    );
    assert_eq!(rows, 1, "one shipment request");
    let received = s.query_i64(
        "SELECT receive_count FROM queue_messages WHERE queue = ?1",
        [WAREHOUSE_QUEUE],
    );
    assert_eq!(received, 2, "packed again after the restart");
}
