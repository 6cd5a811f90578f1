//! Dead letters: a delivery that fails for its whole retry window (a "day" scaled to under two
//! seconds) ends FAILED, listed with its last status and error; once the subscriber is fixed,
//! a retry through the API delivers it. A subscriber that answers 410 Gone is disabled.

use super::{Reply, Subscriber, delivery_rows, listed, stack, subscribe, wait_listed};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use orders_test_support::stack::{Stack, order_body};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

async fn retry(s: &Stack, id: &str, event: &str) -> (StatusCode, Value) {
    let uri = format!("/subscriptions/{id}/deliveries/{event}/retry");
    s.request(Request::post(uri).body(Body::empty()).unwrap())
        .await
}

#[tokio::test]
async fn a_day_of_failures_ends_in_a_dead_letter_that_a_retry_delivers() {
    // A day times 0.00002: a window of 1.7 s, waits of at most 72 ms.
    let s = stack(0.000_02).await;
    let subscriber = Subscriber::answering(500).await;
    let (id, _) = subscribe(&s, &subscriber.url, &["order.completed"]).await;
    let order = s.create(&order_body("dead-1", "mouse", 1, 10.0)).await;
    s.wait_terminal(&order, T).await;

    let failed = wait_listed(&s, &id, "failed", 1).await;
    assert_eq!(failed.len(), 1);
    let dead = &failed[0];
    assert_eq!(dead["type"], "order.completed");
    assert_eq!(dead["orderId"], order.as_str());
    assert_eq!(dead["status"], "FAILED");
    assert_eq!(dead["lastStatus"], 500, "{dead}");
    assert!(
        dead["lastError"].as_str().unwrap().contains("500"),
        "{dead}"
    );
    assert!(
        dead["finishedAt"].is_string() && dead["nextAttemptAt"].is_null(),
        "{dead}"
    );
    let attempts = dead["attempts"].as_u64().unwrap();
    assert!(attempts >= 3, "retried over the window: {dead}");
    assert_eq!(
        subscriber.received().len() as u64,
        attempts,
        "every attempt counted"
    );
    assert_eq!(listed(&s, &id, "pending").await.len(), 0);

    // The subscriber is fixed; nothing is sent until the dead letter is retried.
    subscriber.answer(Arc::new(|_, _| Reply::Status(200)));
    let event = dead["eventId"].as_str().unwrap();
    let (status, body) = retry(&s, &id, event).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["eventId"].as_str(), body["status"].as_str()),
        (Some(event), Some("PENDING"))
    );
    let log = subscriber
        .wait_until(T, |log| log.iter().any(|r| r.delivered()))
        .await;
    assert_eq!(
        log.last().unwrap().webhook_id(),
        event,
        "the same event, the same webhook-id"
    );
    let delivered = wait_listed(&s, &id, "delivered", 1).await;
    assert_eq!(delivered[0]["eventId"], event);
    assert_eq!(delivered[0]["lastStatus"], 200);
    assert_eq!(listed(&s, &id, "failed").await.len(), 0);

    let (status, problem) = retry(&s, &id, event).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only a dead letter is retried: {problem}"
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(retry(&s, &id, &unknown).await.0, StatusCode::NOT_FOUND);
    assert_eq!(retry(&s, &id, "not-an-id").await.0, StatusCode::NOT_FOUND);
    assert_eq!(retry(&s, &unknown, event).await.0, StatusCode::NOT_FOUND);
    let (status, problem) = s
        .request(
            Request::get(format!("/subscriptions/{id}/deliveries?status=lost"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}

#[tokio::test]
async fn gone_disables_the_subscription_and_later_events_make_no_deliveries() {
    let s = stack(1.0).await;
    let gone = Subscriber::answering(410).await;
    let other = Subscriber::answering(200).await;
    let (id, _) = subscribe(&s, &gone.url, &["order.created", "order.completed"]).await;
    subscribe(&s, &other.url, &["order.created"]).await;
    let first = s.create(&order_body("gone-1", "mouse", 1, 10.0)).await;
    s.wait_terminal(&first, T).await;

    let deadline = Instant::now() + T;
    let shown = loop {
        let shown = s.get_json(&format!("/subscriptions/{id}")).await;
        if shown["disabledAt"].is_string() {
            break shown;
        }
        assert!(Instant::now() < deadline, "not disabled: {shown}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        shown["disabledReason"].as_str().unwrap().contains("410"),
        "{shown}"
    );
    let all = s.get_json("/subscriptions").await;
    let entry = all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .cloned();
    assert_eq!(entry, Some(shown));
    let failed = wait_listed(&s, &id, "failed", 1).await;
    assert_eq!(failed[0]["lastStatus"], 410, "{failed:?}");
    assert_eq!(
        listed(&s, &id, "pending").await.len(),
        0,
        "nothing left pending"
    );
    assert_eq!(gone.received().len(), 1, "no attempt after the 410");

    let rows = delivery_rows(&s, &id);
    let second = s.create(&order_body("gone-2", "mouse", 1, 10.0)).await;
    s.wait_terminal(&second, T).await;
    other
        .wait_until(T, |log| log.iter().filter(|r| r.delivered()).count() == 2)
        .await;
    assert_eq!(
        delivery_rows(&s, &id),
        rows,
        "no new deliveries once disabled"
    );
    assert_eq!(gone.received().len(), 1);
    let (status, problem) = retry(&s, &id, failed[0]["eventId"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
}
