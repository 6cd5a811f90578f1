//! Deliveries as a subscriber sees them: every event of every order once, in `sequence`
//! order per order, the body the stored event byte for byte, signed with the subscription's
//! secret, the trace continued; and an event that keeps failing holds its order's later
//! events back until it is delivered.

use super::{
    ALL_TYPES, Received, Reply, Stored, Subscriber, delivered, stack, stored_events, subscribe,
    wait_listed,
};
use chrono::Utc;
use orders_domain::Traceparent;
use orders_domain::standard_webhooks::{WebhookSecret, verify};
use orders_test_support::stack::{Stack, order_body, with_payment};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Orders of every outcome the saga reaches without a race: large (a voucher), small, and
/// declined (FAILED).
async fn place_orders(s: &Stack) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, (product, price)) in [("laptop", 1299.99), ("mouse", 19.99), ("monitor", 249.0)]
        .into_iter()
        .enumerate()
    {
        ids.push(
            s.create(&order_body(&format!("sub-cust-{i}"), product, 1, price))
                .await,
        );
    }
    let declined = with_payment(
        order_body("sub-cust-d", "keyboard", 1, 49.0),
        "pm_card_chargeDeclined",
    );
    ids.push(s.create(&declined).await);
    for id in &ids {
        s.wait_terminal(id, T).await;
    }
    ids
}

fn events_of(s: &Stack, orders: &[String]) -> Vec<Stored> {
    stored_events(s)
        .into_iter()
        .filter(|e| orders.contains(&e.order))
        .collect()
}

/// Per order, the sequences in the order they arrived.
fn arrival_order(log: &[Received]) -> BTreeMap<String, Vec<u64>> {
    let mut by_order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in log {
        by_order.entry(r.order()).or_default().push(r.sequence());
    }
    by_order
}

#[tokio::test]
async fn every_event_arrives_once_in_order_as_stored_and_signed() {
    let s = stack(1.0).await;
    let subscriber = Subscriber::answering(204).await;
    let (id, secret) = subscribe(&s, &subscriber.url, &ALL_TYPES).await;
    let secret = WebhookSecret::parse(&secret).unwrap();
    let orders = place_orders(&s).await;
    let stored = events_of(&s, &orders);
    let kinds: HashSet<String> = stored
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.payload).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for kind in [
        "order.created",
        "order.completed",
        "order.failed",
        "voucher.issued",
        "order.shipped",
    ] {
        assert!(kinds.contains(kind), "{kind} among {kinds:?}");
    }
    let want: HashSet<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    let log = subscriber
        .wait_until(T, |log| {
            let got: HashSet<String> = delivered(log).iter().map(Received::webhook_id).collect();
            want.iter().all(|id| got.contains(*id))
        })
        .await;

    assert_eq!(log.len(), stored.len(), "each event once, nothing else");
    for r in &log {
        let event = stored
            .iter()
            .find(|e| e.id == r.webhook_id())
            .expect("a stored event");
        assert_eq!(
            r.body,
            event.payload.as_bytes(),
            "the stored event, byte for byte"
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/cloudevents+json")
        );
        verify(
            &secret,
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.header("webhook-signature"),
            &r.body,
            Utc::now(),
        )
        .expect("signed with the subscription's secret");
        let stored_trace = r.event()["traceparent"]
            .as_str()
            .map(|t| Traceparent::parse(t).unwrap());
        let sent = r
            .header("traceparent")
            .map(|t| Traceparent::parse(t).unwrap());
        match (stored_trace, sent) {
            (Some(stored), Some(sent)) => {
                assert_eq!(sent.trace_id(), stored.trace_id(), "the event's trace");
                assert_ne!(
                    sent.span_id(),
                    stored.span_id(),
                    "a span of the delivery's own"
                );
            }
            (None, None) => {}
            other => panic!("traceparent stored and sent: {other:?}"),
        }
    }
    let mut expected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in &stored {
        expected
            .entry(e.order.clone())
            .or_default()
            .push(e.sequence);
    }
    assert_eq!(
        arrival_order(&log),
        expected,
        "per order, in sequence order"
    );
    for sequences in expected.values() {
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    }

    // Recorded just after each answer: listed once all are.
    let listed = wait_listed(&s, &id, "delivered", stored.len()).await;
    let page = Value::from(listed.clone());
    assert_eq!(listed.len(), stored.len(), "{page}");
    assert!(
        listed
            .iter()
            .all(|d| d["attempts"] == 1 && d["lastStatus"] == 204),
        "{page}"
    );
    assert!(
        listed
            .iter()
            .all(|d| d["status"] == "DELIVERED" && d["finishedAt"].is_string())
    );
}

#[tokio::test]
async fn a_failing_event_holds_back_its_orders_later_events_until_delivered() {
    let s = stack(0.0005).await;
    let failing = Arc::new(AtomicBool::new(true));
    let fails = failing.clone();
    let behaviour: super::Behaviour = Arc::new(move |r, _| {
        if r.event()["type"] == "order.payment_processed" && fails.load(Ordering::SeqCst) {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
    let subscriber = Subscriber::start(behaviour).await;
    let (id, _) = subscribe(&s, &subscriber.url, &ALL_TYPES).await;
    let mut orders = Vec::new();
    for i in 0..3 {
        orders.push(
            s.create(&order_body(&format!("held-{i}"), "mouse", 1, 10.0))
                .await,
        );
    }
    for order in &orders {
        let o = s.wait_terminal(order, T).await;
        assert_eq!(
            o["status"], "COMPLETED",
            "the saga does not wait for subscribers: {o}"
        );
    }
    let stored = events_of(&s, &orders);
    // Every order's payment event failed at least once; none of its later events went out.
    subscriber
        .wait_until(T, |log| {
            let failed: HashSet<String> = log
                .iter()
                .filter(|r| !r.delivered())
                .map(Received::order)
                .collect();
            failed.len() == orders.len()
        })
        .await;
    let before = subscriber.received();
    for r in &before {
        let kind = r.event()["type"].as_str().unwrap().to_owned();
        assert!(
            kind == "order.created" || kind == "order.payment_processed",
            "{kind} of {} arrived while its payment event was failing",
            r.order()
        );
    }
    let pending = s
        .get_json(&format!("/subscriptions/{id}/deliveries?status=pending"))
        .await;
    let waiting = pending["deliveries"].as_array().unwrap();
    // All but `order.created`: the payment event between its retries, the later ones behind it.
    assert_eq!(waiting.len(), stored.len() - orders.len(), "{pending}");

    failing.store(false, Ordering::SeqCst);
    let want: HashSet<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    let log = subscriber
        .wait_until(T, |log| {
            let got: HashSet<String> = delivered(log).iter().map(Received::webhook_id).collect();
            want.iter().all(|id| got.contains(*id))
        })
        .await;
    for (order, sequences) in arrival_order(&log) {
        assert!(
            sequences.windows(2).all(|w| w[0] <= w[1]),
            "{order}: every request after the one before it in sequence: {sequences:?}"
        );
    }
    let page = wait_listed(&s, &id, "delivered", stored.len()).await;
    let retried: Vec<&Value> = page
        .iter()
        .filter(|d| d["type"] == "order.payment_processed")
        .collect();
    assert_eq!(retried.len(), orders.len(), "{page:?}");
    for d in retried {
        assert!(d["attempts"].as_u64().unwrap() >= 2, "{d}");
        assert_eq!(d["lastStatus"], 200, "{d}");
        assert!(d["lastError"].is_null(), "{d}");
    }
}
