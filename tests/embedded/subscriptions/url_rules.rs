//! The URL rules hold when a delivery is sent, not only when its subscription is created: a
//! name is resolved through the rules' resolver on every connection (so a name that now
//! points at a refused address reaches nothing) and an address in the URL is checked again.
//! Here the rules tighten between the two: subscriptions to loopback made while private
//! subscribers were allowed, then the service restarted without.

use super::{Subscriber, listed, stack, subscribe};
use orders::local::deliveries::DeliverySettings;
use orders_test_support::stack::{Stack, StackOptions, order_body};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_refused_address_is_never_connected_to_whatever_the_subscription_said() {
    let by_name = Subscriber::answering(200).await;
    let by_address = Subscriber::answering(200).await;
    let s = stack(1.0).await;
    let name_url = by_name.url.replace("127.0.0.1", "localhost");
    let (named, _) = subscribe(&s, &name_url, &["order.created"]).await;
    let (addressed, _) = subscribe(&s, &by_address.url, &["order.created"]).await;
    let dir = s.stop().await;

    let strict = StackOptions {
        deliveries: DeliverySettings::default(),
        ..StackOptions::default()
    };
    let s = Stack::start(dir, strict).await;
    let order = s.create(&order_body("rules-1", "mouse", 1, 10.0)).await;
    s.wait_terminal(&order, Duration::from_secs(20)).await;
    for id in [&named, &addressed] {
        let deadline = Instant::now() + Duration::from_secs(20);
        let tried = loop {
            let pending = listed(&s, id, "pending").await;
            if pending
                .first()
                .is_some_and(|d| d["attempts"].as_u64() >= Some(1))
            {
                break pending[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no attempt recorded: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let error = tried["lastError"].as_str().unwrap_or_default();
        assert!(error.contains("loopback or private"), "{tried}");
        assert!(tried["lastStatus"].is_null(), "{tried}");
    }
    assert!(
        by_name.received().is_empty(),
        "the name's loopback address was not connected to"
    );
    assert!(by_address.received().is_empty());
}
