//! The adapter's rules on a real database: one delivery per order at a time, in event order;
//! a retry holds the order's later deliveries back and a dead letter releases them; 410 Gone
//! disables; a dead letter is sent again only when FAILED.

use super::dispatch::GONE_REASON;
use crate::{SqliteStore, events, exec, sqlite_err};
use chrono::{DateTime, Duration, Utc};
use orders_domain::standard_webhooks::WebhookSecret;
use orders_domain::subscriptions::{
    AttemptResult, DeliveryOutcome, DeliveryQuery, DeliveryState, NewSubscription, RetryOutcome,
    SubscriberUrl, SubscriptionStore,
};
use orders_domain::{EventId, EventType, OrderId, SubscriptionId};
use rusqlite::params;

struct Db {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

async fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    Db { store, _dir: dir }
}

async fn subscribe(store: &SqliteStore, types: &[EventType]) -> SubscriptionId {
    let new = NewSubscription {
        id: SubscriptionId::new(),
        url: SubscriberUrl::from_checked("http://127.0.0.1:9/hook".into()),
        types: types.to_vec(),
        secret: WebhookSecret::generate().unwrap(),
        created_at: Utc::now(),
    };
    store.create_subscription(new).await.unwrap().id
}

/// Writes a public event of `order` at `version` as `events.rs` does; returns its outbox seq.
async fn event(store: &SqliteStore, order: OrderId, kind: EventType, version: u64) -> i64 {
    store
        .write(move |conn| {
            let payload = serde_json::json!({
                "specversion": "1.0", "id": EventId::new().to_string(), "source": "/orders",
                "type": kind.as_str(), "time": "2026-01-01T00:00:00Z",
                "subject": order.to_string(), "datacontenttype": "application/json",
                "sequence": version.to_string(), "data": {},
            });
            exec(
                conn,
                "INSERT INTO outbox (event_id, order_id, payload, created_at, published_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![
                    payload["id"].as_str().unwrap(),
                    order.to_string(),
                    payload.to_string(),
                    "2026-01-01T00:00:00.000Z"
                ],
            )
            .map_err(sqlite_err)?;
            let seq = conn.last_insert_rowid();
            events::fan_out(conn, seq, &order.to_string(), kind, 0)?;
            Ok(seq)
        })
        .await
        .unwrap()
}

async fn due_seqs(store: &SqliteStore, sub: SubscriptionId, now: DateTime<Utc>) -> Vec<i64> {
    let batch = store.due(sub, now, 100, &[]).await.unwrap();
    batch.deliveries.iter().map(|d| d.event_seq).collect()
}

fn outcome(
    sub: SubscriptionId,
    seq: i64,
    at: DateTime<Utc>,
    result: AttemptResult,
) -> DeliveryOutcome {
    DeliveryOutcome {
        subscription: sub,
        event_seq: seq,
        at,
        first_attempt: at,
        status: Some(500),
        error: Some("HTTP 500".into()),
        result,
    }
}

fn query(sub: SubscriptionId, state: Option<DeliveryState>) -> DeliveryQuery {
    DeliveryQuery {
        subscription: sub,
        state,
        limit: 100,
        after: None,
    }
}

#[tokio::test]
async fn one_delivery_per_order_at_a_time_in_event_order() {
    let Db { store, _dir } = db().await;
    let sub = subscribe(&store, &EventType::ALL).await;
    let (a, b) = (OrderId::new(), OrderId::new());
    let a1 = event(&store, a, EventType::OrderCreated, 1).await;
    let b1 = event(&store, b, EventType::OrderCreated, 1).await;
    let a2 = event(&store, a, EventType::OrderPaymentProcessed, 4).await;
    let now = Utc::now();
    assert_eq!(due_seqs(&store, sub, now).await, [a1, b1]);
    // In flight: not offered again, and the order's next event still waits.
    let batch = store.due(sub, now, 100, &[a1]).await.unwrap();
    assert_eq!(batch.deliveries.len(), 1);
    assert_eq!(batch.deliveries[0].event_seq, b1);

    let ok = DeliveryOutcome {
        status: Some(204),
        error: None,
        ..outcome(sub, a1, now, AttemptResult::Delivered)
    };
    store.record_attempts(vec![ok]).await.unwrap();
    assert_eq!(due_seqs(&store, sub, now).await, [b1, a2]);
}

#[tokio::test]
async fn a_retry_holds_the_order_back_and_a_dead_letter_releases_it() {
    let Db { store, _dir } = db().await;
    let sub = subscribe(&store, &EventType::ALL).await;
    let order = OrderId::new();
    let first = event(&store, order, EventType::OrderCreated, 1).await;
    let second = event(&store, order, EventType::OrderPaymentProcessed, 4).await;
    let now = Utc::now();
    let next_at = now + Duration::seconds(30);
    store
        .record_attempts(vec![outcome(
            sub,
            first,
            now,
            AttemptResult::Retry { next_at },
        )])
        .await
        .unwrap();
    let batch = store.due(sub, now, 100, &[]).await.unwrap();
    assert!(batch.deliveries.is_empty(), "{batch:?}");
    assert_eq!(
        batch.next_retry_at.map(|t| t.timestamp_millis()),
        Some(next_at.timestamp_millis())
    );
    let later = next_at + Duration::seconds(1);
    assert_eq!(
        due_seqs(&store, sub, later).await,
        [first],
        "the first goes first"
    );
    // The one held back moved with it, so a pass reads it no sooner than it can go.
    let pending = store
        .deliveries(&query(sub, Some(DeliveryState::Pending)))
        .await
        .unwrap()
        .unwrap();
    let held = pending.deliveries.iter().find(|d| d.sequence == 4).unwrap();
    assert_eq!(
        held.next_attempt_at.map(|t| t.timestamp_millis()),
        Some(next_at.timestamp_millis())
    );

    store
        .record_attempts(vec![outcome(sub, first, later, AttemptResult::Dead)])
        .await
        .unwrap();
    assert_eq!(
        due_seqs(&store, sub, later).await,
        [second],
        "released at once"
    );
    let failed = store
        .deliveries(&query(sub, Some(DeliveryState::Failed)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.deliveries.len(), 1);
    let dead = &failed.deliveries[0];
    assert_eq!((dead.attempts, dead.last_status), (2, Some(500)));
    assert_eq!(dead.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(dead.sequence, 1);
    assert!(dead.finished_at.is_some() && dead.next_attempt_at.is_none());
}

#[tokio::test]
async fn gone_disables_the_subscription_and_fails_what_was_pending() {
    let Db { store, _dir } = db().await;
    let sub = subscribe(&store, &[EventType::OrderCreated]).await;
    let other = subscribe(&store, &[EventType::OrderCreated]).await;
    let first = event(&store, OrderId::new(), EventType::OrderCreated, 1).await;
    event(&store, OrderId::new(), EventType::OrderCreated, 1).await;
    let now = Utc::now();
    let gone = DeliveryOutcome {
        status: Some(410),
        ..outcome(sub, first, now, AttemptResult::Gone)
    };
    store.record_attempts(vec![gone]).await.unwrap();

    let disabled = store.get_subscription(sub).await.unwrap().unwrap().disabled;
    assert_eq!(disabled.map(|d| d.reason), Some(GONE_REASON.to_owned()));
    let targets: Vec<_> = store
        .targets()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(targets, [other]);
    let page = store.deliveries(&query(sub, None)).await.unwrap().unwrap();
    assert!(
        page.deliveries
            .iter()
            .all(|d| d.state == DeliveryState::Failed)
    );
    assert_eq!(page.deliveries[0].last_status, Some(410));
    assert_eq!(page.deliveries[1].last_error.as_deref(), Some(GONE_REASON));
    event(&store, OrderId::new(), EventType::OrderCreated, 1).await;
    let after = store.deliveries(&query(sub, None)).await.unwrap().unwrap();
    assert_eq!(after.deliveries.len(), 2, "no new deliveries once disabled");
    assert_eq!(
        store
            .retry_delivery(sub, page.deliveries[0].event_id, now)
            .await
            .unwrap(),
        RetryOutcome::SubscriptionDisabled
    );

    // Disabling by hand does the same, once.
    let now = Utc::now();
    assert!(
        store
            .disable_subscription(other, "by hand", now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .disable_subscription(other, "again", now)
            .await
            .unwrap()
    );
    let page = store
        .deliveries(&query(other, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.deliveries.len(), 3);
    assert!(page.deliveries.iter().all(|d| d.state == DeliveryState::Failed
        && d.last_error.as_deref() == Some("by hand")));
    assert!(store.targets().await.unwrap().is_empty());
}

#[tokio::test]
async fn only_a_dead_letter_is_sent_again_and_deleting_removes_the_deliveries() {
    let Db { store, _dir } = db().await;
    let sub = subscribe(&store, &EventType::ALL).await;
    let seq = event(&store, OrderId::new(), EventType::OrderCreated, 1).await;
    let page = store.deliveries(&query(sub, None)).await.unwrap().unwrap();
    let event_id = page.deliveries[0].event_id;
    let now = Utc::now();
    let retry = |id, event| store.retry_delivery(id, event, now);
    assert_eq!(retry(sub, event_id).await.unwrap(), RetryOutcome::NotFailed);
    assert_eq!(
        retry(sub, EventId::new()).await.unwrap(),
        RetryOutcome::NotFound
    );
    assert_eq!(
        retry(SubscriptionId::new(), event_id).await.unwrap(),
        RetryOutcome::NotFound
    );
    store
        .record_attempts(vec![outcome(sub, seq, now, AttemptResult::Dead)])
        .await
        .unwrap();
    assert!(due_seqs(&store, sub, now).await.is_empty());
    assert_eq!(retry(sub, event_id).await.unwrap(), RetryOutcome::Retried);
    let batch = store.due(sub, now, 100, &[]).await.unwrap();
    assert_eq!(batch.deliveries.len(), 1);
    assert_eq!(batch.deliveries[0].attempts, 0, "a new retry window");
    assert_eq!(batch.deliveries[0].first_attempt, None);

    assert!(store.delete_subscription(sub).await.unwrap());
    assert!(!store.delete_subscription(sub).await.unwrap());
    assert!(store.deliveries(&query(sub, None)).await.unwrap().is_none());
    let left: i64 = store
        .read(|c| {
            c.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
                .map_err(sqlite_err)
        })
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn listings_page_by_event_and_filter_by_state() {
    let Db { store, _dir } = db().await;
    let sub = subscribe(&store, &[EventType::OrderCreated]).await;
    let mut seqs = Vec::new();
    for _ in 0..5 {
        seqs.push(event(&store, OrderId::new(), EventType::OrderCreated, 1).await);
    }
    // Not a type it wants: no delivery.
    event(&store, OrderId::new(), EventType::OrderShipped, 5).await;
    let now = Utc::now();
    store
        .record_attempts(vec![outcome(sub, seqs[3], now, AttemptResult::Dead)])
        .await
        .unwrap();
    let mut q = query(sub, None);
    q.limit = 2;
    let mut seen = Vec::new();
    loop {
        let page = store.deliveries(&q).await.unwrap().unwrap();
        seen.extend(page.deliveries.iter().map(|d| d.state));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    use DeliveryState::{Failed, Pending};
    assert_eq!(seen, [Pending, Pending, Pending, Failed, Pending]);
    let pending = store
        .deliveries(&query(sub, Some(Pending)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.deliveries.len(), 4);
    assert!(
        pending
            .deliveries
            .iter()
            .all(|d| d.next_attempt_at.is_some())
    );
}

#[tokio::test]
async fn a_pass_reads_the_due_index_and_checks_the_order_rule_by_index() {
    let Db { store, _dir } = db().await;
    let plan: Vec<String> = store
        .read(|conn| {
            let mut st = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", super::dispatch::DUE))
                .map_err(sqlite_err)?;
            let rows = st
                .query_map(params!["s", 0, 10], |r| r.get(3))
                .map_err(sqlite_err)?;
            rows.collect::<Result<_, _>>().map_err(sqlite_err)
        })
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("USING INDEX deliveries_due"), "{plan}");
    assert!(
        plan.contains("USING COVERING INDEX deliveries_pending_by_order")
            || plan.contains("USING INDEX deliveries_pending_by_order"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
}
