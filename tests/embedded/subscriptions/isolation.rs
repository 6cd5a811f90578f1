//! One subscriber that never answers and one that always fails, beside a healthy one: the
//! healthy one gets every event promptly, the orders complete, the API answers at once, and
//! the hanging one never has more requests open than its concurrency allows.

use super::{ALL_TYPES, Received, Reply, Subscriber, delivered, stack, stored_events, subscribe};
use orders::local::deliveries::DeliverySettings;
use orders_test_support::stack::order_body;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORDERS: usize = 30;

#[tokio::test]
async fn a_hanging_and_a_failing_subscriber_delay_neither_the_healthy_one_nor_the_orders() {
    let s = stack(1.0).await;
    let hanging = Subscriber::start(Arc::new(|_, _| Reply::Hang)).await;
    let failing = Subscriber::answering(500).await;
    let healthy = Subscriber::answering(200).await;
    // The slow ones first: had they a head start, it would be theirs.
    subscribe(&s, &hanging.url, &ALL_TYPES).await;
    subscribe(&s, &failing.url, &ALL_TYPES).await;
    subscribe(&s, &healthy.url, &ALL_TYPES).await;

    let started = Instant::now();
    let mut orders = Vec::new();
    let mut slowest_post = Duration::ZERO;
    for i in 0..ORDERS {
        let t = Instant::now();
        orders.push(
            s.create(&order_body(
                &format!("iso-{i}"),
                "mouse",
                1,
                10.0 + i as f64,
            ))
            .await,
        );
        slowest_post = slowest_post.max(t.elapsed());
    }
    for id in &orders {
        let o = s.wait_terminal(id, Duration::from_secs(8)).await;
        assert_eq!(o["status"], "COMPLETED", "{o}");
    }
    let stored = stored_events(&s);
    let want: HashSet<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    let log = healthy
        .wait_until(Duration::from_secs(8), |log| {
            let got: HashSet<String> = delivered(log).iter().map(Received::webhook_id).collect();
            want.iter().all(|id| got.contains(*id))
        })
        .await;
    let elapsed = started.elapsed();

    // Lag: from the event's own time to its arrival at the healthy subscriber.
    let mut lags: Vec<Duration> = log
        .iter()
        .map(|r| {
            let time = chrono::DateTime::parse_from_rfc3339(r.event()["time"].as_str().unwrap())
                .unwrap()
                .with_timezone(&chrono::Utc);
            (r.at - time).to_std().unwrap_or(Duration::ZERO)
        })
        .collect();
    lags.sort();
    let p99 = lags[(lags.len() * 99 / 100).min(lags.len() - 1)];
    let max = *lags.last().unwrap();
    println!(
        "isolation: {} events delivered to the healthy subscriber, p99 lag {p99:?}, max {max:?}; \
         hanging got {} requests, failing {} attempts; slowest POST /orders {slowest_post:?}",
        log.len(),
        hanging.received().len(),
        failing.received().len()
    );
    assert_eq!(log.len(), stored.len());
    // The hanging subscriber holds its slots for the 10 s timeout: anything waiting on it
    // would show a lag of seconds.
    assert!(
        max < Duration::from_secs(2),
        "healthy lag: p99 {p99:?}, max {max:?}"
    );
    assert!(slowest_post < Duration::from_secs(1), "{slowest_post:?}");
    assert!(
        elapsed < Duration::from_secs(9),
        "the attempts to the hanging one did not end: {elapsed:?}"
    );
    let open = hanging.received().len();
    assert!(
        open > 0 && open <= DeliverySettings::default().concurrency,
        "{open} requests open to the hanging subscriber"
    );
    assert!(
        failing.received().len() >= ORDERS,
        "the failing one is tried too"
    );
}
