//! The transaction limit of a reservation: DynamoDB takes at most 100 writes in one
//! `TransactWriteItems`, and a reservation is never split across two.

use super::dynamodb;
use orders_test_support::saga_contract::{self, SagaFixture, at};

use chrono::Utc;
use orders_workflow::steps::Stock;

/// One transaction holds at most 100 writes: 99 products and the reservation record. Wider
/// orders are refused before anything is written; 99 still go in one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_wider_than_one_transaction_is_refused_and_takes_nothing() {
    let fx = dynamodb().await;
    for i in 1..=100 {
        fx.set_stock(&format!("p-{i:03}"), 5).await;
    }
    let order = fx.new_order("c-wide").await;
    let items: Vec<_> = (1..=100)
        .map(|i| saga_contract::item(&format!("p-{i:03}"), 1))
        .collect();
    let err = fx
        .store
        .reserve(at(order, Utc::now()), &items)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, orders_workflow::steps::StepStoreError::Unavailable(m) if m.contains("100 distinct")),
        "{err}"
    );
    assert_eq!(fx.stock("p-001").await, Some(5));
    assert_eq!(fx.stock("p-100").await, Some(5));
    let reserved = fx
        .store
        .reserve(at(order, Utc::now()), &items[..99])
        .await
        .unwrap();
    assert_eq!(
        reserved,
        orders_workflow::steps::store::Reservation::Reserved
    );
    assert_eq!(fx.stock("p-001").await, Some(4));
    assert_eq!(fx.stock("p-099").await, Some(4));
    assert_eq!(fx.stock("p-100").await, Some(5));
}
