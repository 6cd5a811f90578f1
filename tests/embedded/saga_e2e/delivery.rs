//! Delivery of the outbox event that starts a saga: a poison row parked without holding up
//! the next, an event left unrelayed started after a restart, and one event started twice
//! running one saga.

use super::T;
use orders_test_support::stack::{Stack, order_body, step};

use orders::local::saga::ExecutorStarter;
use orders_domain::OutboxEvent;
use orders_processor::{SagaStarter, Started};
use orders_workflow::executor::StartOutcome;
use orders_workflow::steps::StepSettings;
use std::time::Duration;

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
