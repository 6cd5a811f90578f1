//! The local task queue on SQLite: the `TaskQueue` the executor sends task-token messages on,
//! and the consumer side the warehouse worker uses. One message per dedup id for good (a
//! deleted one included), a visibility timeout with redelivery, receipts that go stale on
//! redelivery, FIFO, one consumer per message at a time, durable across a reopen, a wake-up on
//! send, the SQS size limit, and a full database refusing a send as an error.

use orders_test_support as common;

use chrono::{DateTime, TimeDelta, Utc};
use orders_domain::store::StoreError;
use orders_sqlite::{
    MAX_BODY_BYTES, QueueDepth, QueueError, Receipt, ReceivedMessage, SqliteOptions, SqliteStore,
};
use orders_workflow::executor::{QueueMessage, TaskQueue};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const QUEUE: &str = "WarehouseQueueUrl";
const VISIBILITY: Duration = Duration::from_secs(30);

fn message(token: &str, body: Value) -> QueueMessage {
    QueueMessage {
        dedup_id: token.into(),
        body,
    }
}

async fn send(store: &SqliteStore, token: &str, body: Value) {
    store.send(QUEUE, message(token, body)).await.expect("send");
}

/// Whether the send added a message.
async fn enqueue(store: &SqliteStore, queue: &str, token: &str, body: Value) -> bool {
    let sent = store.enqueue(queue, &message(token, body)).await;
    sent.expect("enqueue")
}

async fn receive(store: &SqliteStore, max: usize, now: DateTime<Utc>) -> Vec<ReceivedMessage> {
    store
        .receive(QUEUE, max, VISIBILITY, now)
        .await
        .expect("receive")
}

async fn depth(store: &SqliteStore, now: DateTime<Utc>) -> QueueDepth {
    store.depth(QUEUE, now).await.expect("depth")
}

fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + TimeDelta::from_std(d).expect("in range")
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<Value> {
    messages.iter().map(|m| m.body.clone()).collect()
}

#[tokio::test]
async fn a_message_is_sent_received_once_and_deleted() {
    let (store, _dir) = common::temp_store();
    let before = Utc::now();
    let body = json!({"orderId": "o-1", "taskToken": "t-1", "items": [{"sku": "mouse"}]});
    send(&store, "t-1", body.clone()).await;
    let t0 = Utc::now();
    assert_eq!(
        depth(&store, t0).await,
        QueueDepth {
            visible: 1,
            in_flight: 0
        }
    );

    let got = receive(&store, 10, t0).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body);
    assert_eq!(got[0].receive_count, 1);
    let sent_ms = got[0].sent_at.timestamp_millis();
    assert!((before.timestamp_millis()..=t0.timestamp_millis()).contains(&sent_ms));
    assert_eq!(
        depth(&store, t0).await,
        QueueDepth {
            visible: 0,
            in_flight: 1
        }
    );
    assert!(
        receive(&store, 10, t0).await.is_empty(),
        "in flight: invisible"
    );

    assert!(store.delete(QUEUE, &got[0].receipt).await.unwrap());
    assert!(
        !store.delete(QUEUE, &got[0].receipt).await.unwrap(),
        "deleted once"
    );
    let later = after(t0, VISIBILITY * 10);
    assert_eq!(depth(&store, later).await, QueueDepth::default());
    assert!(
        receive(&store, 10, later).await.is_empty(),
        "a deleted message never returns"
    );
}

#[tokio::test]
async fn a_dedup_id_is_taken_for_good_even_after_its_message_was_deleted() {
    let (store, _dir) = common::temp_store();
    send(&store, "token", json!({"n": 1})).await;
    send(&store, "token", json!({"n": 2})).await;
    let t0 = Utc::now();
    let got = receive(&store, 10, t0).await;
    assert_eq!(
        bodies(&got),
        [json!({"n": 1})],
        "the first send is the one kept"
    );

    assert!(store.delete(QUEUE, &got[0].receipt).await.unwrap());
    // A Task run again after its message was consumed: Ok, and nothing is sent.
    send(&store, "token", json!({"n": 3})).await;
    assert!(!enqueue(&store, QUEUE, "token", json!({"n": 4})).await);
    assert_eq!(depth(&store, t0).await, QueueDepth::default());
    assert!(receive(&store, 10, t0).await.is_empty());

    // The id is taken per queue, as an SQS queue's deduplication is.
    assert!(enqueue(&store, "OtherQueueUrl", "token", json!({"n": 5})).await);
}

#[tokio::test]
async fn a_message_not_deleted_in_time_is_received_again_with_a_higher_count() {
    let (store, _dir) = common::temp_store();
    send(&store, "t-1", json!({"n": 1})).await;
    let t0 = Utc::now();
    let first = receive(&store, 1, t0).await;
    assert_eq!(first[0].receive_count, 1);

    let just_before = after(t0, VISIBILITY) - TimeDelta::milliseconds(1);
    assert!(receive(&store, 1, just_before).await.is_empty());
    let second = receive(&store, 1, after(t0, VISIBILITY)).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt);
    let third = receive(&store, 1, after(t0, VISIBILITY * 2)).await;
    assert_eq!(third[0].receive_count, 3);
}

#[tokio::test]
async fn a_stale_receipt_neither_deletes_nor_extends_a_redelivered_message() {
    let (store, _dir) = common::temp_store();
    send(&store, "t-1", json!({"n": 1})).await;
    let t0 = Utc::now();
    let old = receive(&store, 1, t0).await.remove(0).receipt;
    let t1 = after(t0, VISIBILITY);
    let current = receive(&store, 1, t1).await.remove(0).receipt;

    assert!(!store.delete(QUEUE, &old).await.unwrap());
    let extend = store.change_visibility(QUEUE, &old, Duration::ZERO, t1);
    assert!(
        !extend.await.unwrap(),
        "cannot give back what another consumer holds"
    );
    let unknown: Receipt = "00000000-0000-4000-8000-000000000000".parse().unwrap();
    assert!(!store.delete(QUEUE, &unknown).await.unwrap());
    assert_eq!(
        depth(&store, t1).await,
        QueueDepth {
            visible: 0,
            in_flight: 1
        }
    );
    assert!(
        !store.delete("OtherQueueUrl", &current).await.unwrap(),
        "the receipt's queue only"
    );

    assert!(store.delete(QUEUE, &current).await.unwrap());
}

#[tokio::test]
async fn change_visibility_extends_the_hold_or_gives_the_message_back() {
    let (store, _dir) = common::temp_store();
    send(&store, "t-1", json!({"n": 1})).await;
    let t0 = Utc::now();
    let receipt = receive(&store, 1, t0).await.remove(0).receipt;

    // Packing takes longer than the visibility: the worker extends it halfway through.
    let t5 = after(t0, Duration::from_secs(5));
    let extend = store.change_visibility(QUEUE, &receipt, Duration::from_secs(60), t5);
    assert!(extend.await.unwrap());
    assert!(receive(&store, 1, after(t0, VISIBILITY)).await.is_empty());
    assert!(
        receive(&store, 1, after(t5, Duration::from_secs(59)))
            .await
            .is_empty()
    );
    assert_eq!(
        receive(&store, 1, after(t5, Duration::from_secs(60)))
            .await
            .len(),
        1
    );

    let t9 = after(t5, Duration::from_secs(60));
    let held = receive(&store, 1, after(t9, VISIBILITY)).await.remove(0);
    let now = after(t9, VISIBILITY);
    let give_back = store.change_visibility(QUEUE, &held.receipt, Duration::ZERO, now);
    assert!(give_back.await.unwrap());
    assert_eq!(receive(&store, 1, now).await[0].message_id, held.message_id);
}

#[tokio::test]
async fn messages_are_received_in_send_order_redeliveries_first() {
    let (store, _dir) = common::temp_store();
    for n in 0..10 {
        send(&store, &format!("t-{n}"), json!({"n": n})).await;
    }
    let t0 = Utc::now();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.extend(bodies(&receive(&store, 3, t0).await));
    }
    let expected: Vec<Value> = (0..10).map(|n| json!({"n": n})).collect();
    assert_eq!(seen, expected);

    // Nothing deleted: after the visibility all ten return, oldest first again.
    let again = receive(&store, 10, after(t0, VISIBILITY)).await;
    assert_eq!(bodies(&again), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_never_hold_the_same_message() {
    const MESSAGES: usize = 60;
    let (store, _dir) = common::temp_store();
    for n in 0..MESSAGES {
        send(&store, &format!("t-{n}"), json!({"n": n})).await;
    }
    let now = Utc::now();
    let consumers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut held = Vec::new();
                loop {
                    let got = receive(&store, 4, now).await;
                    if got.is_empty() {
                        return held;
                    }
                    held.extend(got.into_iter().map(|m| m.message_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for consumer in consumers {
        all.extend(consumer.await.expect("consumer"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a message was held twice");
    assert_eq!(all.len(), MESSAGES);
}

#[tokio::test]
async fn messages_and_their_state_survive_a_reopen() {
    let (store, dir) = common::temp_store();
    send(&store, "t-1", json!({"n": 1})).await;
    send(&store, "t-2", json!({"n": 2})).await;
    let t0 = Utc::now();
    let held = receive(&store, 1, t0).await.remove(0);
    let path = store.path().to_owned();
    drop(Arc::into_inner(store).expect("the only handle"));

    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        depth(&store, t0).await,
        QueueDepth {
            visible: 1,
            in_flight: 1
        }
    );
    let next = receive(&store, 10, t0).await;
    assert_eq!(
        bodies(&next),
        [json!({"n": 2})],
        "the held one stays invisible"
    );
    assert!(
        store.delete(QUEUE, &held.receipt).await.unwrap(),
        "its receipt still holds it"
    );
    let resend = enqueue(&store, QUEUE, "t-1", json!({"n": 1})).await;
    assert!(!resend, "its tombstone is on disk");
    drop(dir);
}

#[tokio::test]
async fn a_send_wakes_a_consumer_of_its_queue_only() {
    let (store, _dir) = common::temp_store();
    let signal = store.queue_signal(QUEUE);
    let waiting = {
        let (store, signal) = (Arc::clone(&store), Arc::clone(&signal));
        tokio::spawn(async move {
            signal.notified().await;
            receive(&store, 10, Utc::now()).await
        })
    };
    send(&store, "t-1", json!({"n": 1})).await;
    let woken = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    let got = woken.expect("woken by the send").expect("consumer");
    assert_eq!(bodies(&got), [json!({"n": 1})]);

    // A notification without a waiter is kept as a permit: a zero timeout polls once.
    let pending = || tokio::time::timeout(Duration::ZERO, signal.notified());
    store
        .send("OtherQueueUrl", message("t-2", json!({})))
        .await
        .unwrap();
    assert!(pending().await.is_err(), "another queue's send");
    send(&store, "t-1", json!({"n": 1})).await;
    assert!(pending().await.is_err(), "a deduplicated send adds nothing");
    send(&store, "t-3", json!({"n": 3})).await;
    assert!(pending().await.is_ok(), "a send without a waiter");

    let now = Utc::now();
    let held = receive(&store, 1, now).await.remove(0);
    store
        .change_visibility(QUEUE, &held.receipt, Duration::ZERO, now)
        .await
        .unwrap();
    assert!(pending().await.is_ok(), "a message given back");
}

#[tokio::test]
async fn a_body_over_256_kib_is_refused_and_leaves_nothing() {
    let (store, _dir) = common::temp_store();
    // A JSON string is its text plus two quotes.
    let at_limit = json!("a".repeat(MAX_BODY_BYTES - 2));
    let over = json!("a".repeat(MAX_BODY_BYTES - 1));
    send(&store, "fits", at_limit.clone()).await;

    let refused = store.send(QUEUE, message("big", over.clone())).await;
    let text = refused.expect_err("over the limit").to_string();
    assert!(text.contains(&(MAX_BODY_BYTES + 1).to_string()), "{text}");
    match store.enqueue(QUEUE, &message("big", over)).await {
        Err(QueueError::BodyTooLarge { bytes }) => assert_eq!(bytes, MAX_BODY_BYTES + 1),
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
    assert!(
        store
            .enqueue(QUEUE, &message("big", json!({})))
            .await
            .unwrap()
    );
    let got = receive(&store, 10, Utc::now()).await;
    assert_eq!(bodies(&got), [at_limit, json!({})]);
}

#[tokio::test]
async fn a_send_refused_for_want_of_space_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    drop(SqliteStore::open(&path).unwrap());
    let (pages, page_size): (u64, u64) = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let pragma = |name: &str| {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .unwrap()
                .unsigned_abs()
        };
        (pragma("page_count"), pragma("page_size"))
    };
    // Room for a few pages: a small message, not one of 200 KiB.
    let options = SqliteOptions {
        max_db_bytes: Some((pages + 4) * page_size),
        ..Default::default()
    };
    let store = SqliteStore::open_with(&path, options).unwrap();
    let big = json!("a".repeat(200 * 1024));
    match store.enqueue(QUEUE, &message("t-1", big.clone())).await {
        Err(QueueError::Store(StoreError::StorageFull)) => {}
        other => panic!("expected StorageFull, got {other:?}"),
    }
    assert!(store.send(QUEUE, message("t-1", big)).await.is_err());
    assert_eq!(depth(&store, Utc::now()).await, QueueDepth::default());

    // The refused send left no tombstone: its token goes through once it fits.
    assert!(
        store
            .enqueue(QUEUE, &message("t-1", json!({})))
            .await
            .unwrap()
    );
    assert_eq!(depth(&store, Utc::now()).await.visible, 1);
}
