//! The steps' cancel guard: refused before the write when the read sees the request, and by
//! the write's own condition when the request lands between the read and the write.

use super::{AWAITING, RESERVED, fx_with};
use crate::dynamodb::attr;
use crate::tables::attrs::order as oa;
use chrono::Utc;
use orders_domain::lifecycle::Shipment;
use orders_domain::store::CancelOutcome;
use orders_domain::{OrderId, OrderStatus};
use orders_workflow::steps::store::{OrderAt, StatusChange};
use orders_workflow::steps::{Progress, Shipments, Step, StepStoreError};

const REASON: Option<&str> = Some("changed my mind");

fn cancelled() -> StepStoreError {
    StepStoreError::Cancelled {
        reason: REASON.map(str::to_owned),
    }
}

/// After a cancellation: every forward move not yet reached is refused (in one read), a
/// reached one is still a no-op, compensation moves on to CANCELLED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_moves_are_refused_once_cancelled_compensation_is_not() {
    let (fx, id) = fx_with(RESERVED).await;
    let ghost = OrderId::new();
    assert_eq!(
        fx.steps.cancellation(ghost).await,
        Err(StepStoreError::OrderNotFound(ghost))
    );
    assert_eq!(fx.steps.cancellation(id).await.unwrap(), None);
    assert!(matches!(
        fx.cancel(id, None).await.unwrap(),
        CancelOutcome::Accepted(_)
    ));
    let asked = fx
        .steps
        .cancellation(id)
        .await
        .unwrap()
        .expect("the request");
    assert_eq!(asked.reason.as_deref(), REASON);
    fx.hook.take();
    let refused = fx
        .mv(id, Step::RequestPayment, OrderStatus::AwaitingPayment)
        .await;
    assert_eq!(refused, Err(cancelled()));
    assert_eq!(
        fx.hook.take(),
        ["GetItem"],
        "refused on the read, nothing written"
    );
    assert_eq!(
        fx.mv(id, Step::ReserveInventory, OrderStatus::InventoryReserved)
            .await,
        Ok(StatusChange::Unchanged)
    );
    let shipment = Shipment {
        tracking_number: "TRK-1".into(),
        shipped_at: Utc::now(),
    };
    let at = OrderAt::now(id);
    assert_eq!(
        fx.steps
            .mark_shipped(at, Step::MarkShipped, &shipment)
            .await,
        Err(cancelled())
    );
    fx.walk(
        id,
        &[
            (Step::BeginCompensation, OrderStatus::Compensating),
            (Step::MarkCancelled, OrderStatus::Cancelled),
        ],
    )
    .await;
    let order = fx.get(id).await;
    assert_eq!((order.status, order.version), (OrderStatus::Cancelled, 5));
    assert_eq!(order.shipment, None);
    assert_eq!(order.cancellation.unwrap().reason.as_deref(), REASON);
}

/// A request written between the step's read and its update, without touching the version
/// (so only the guard in the condition can see it): refused, from the failed condition's old
/// image, with no re-read; the order stays where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_landing_after_the_read_is_refused_by_the_condition() {
    let (fx, id) = fx_with(RESERVED).await;
    fx.before_order_update(
        "UpdateItem",
        id,
        "SET #c = :c, #r = :r",
        vec![("#c", oa::CANCEL_REQUESTED_AT), ("#r", oa::CANCEL_REASON)],
        vec![
            (":c", attr::s("2026-01-01T00:00:00.000Z")),
            (":r", attr::s(REASON.unwrap())),
        ],
    );
    let refused = fx
        .mv(id, Step::RequestPayment, OrderStatus::AwaitingPayment)
        .await;
    assert_eq!(refused, Err(cancelled()));
    assert_eq!(fx.hook.take(), ["GetItem", "UpdateItem"]);
    let item = fx.order_item(id).await;
    assert_eq!(attr::get_s(&item, oa::STATUS), Ok("INVENTORY_RESERVED"));
    assert_eq!(attr::get_n(&item, oa::VERSION), Ok(2));
}

/// Another writer's version bump between the read and the write is a stale read, not a
/// cancellation: read again and move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_is_read_again_and_the_move_made() {
    let (fx, id) = fx_with(RESERVED).await;
    fx.before_order_update(
        "UpdateItem",
        id,
        "SET #v = #v + :one",
        vec![("#v", oa::VERSION)],
        vec![(":one", attr::n(1))],
    );
    let moved = fx
        .mv(id, Step::RequestPayment, OrderStatus::AwaitingPayment)
        .await;
    assert_eq!(moved, Ok(StatusChange::Changed { version: 4 }));
    assert_eq!(
        fx.hook.take(),
        ["GetItem", "UpdateItem", "GetItem", "UpdateItem"]
    );
}

/// The shipment and SHIPPED in one update (the step marked SUCCEEDED by it); a re-run is
/// `Unchanged` and keeps the first shipment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_shipped_records_the_shipment_with_the_move_once() {
    let (fx, id) = fx_with(AWAITING).await;
    // PAYMENT_PROCESSED is the webhook's move; here another writer's.
    fx.mv(id, Step::RequestPayment, OrderStatus::PaymentProcessed)
        .await
        .unwrap();
    fx.steps
        .step_attempt(OrderAt::now(id), Step::MarkShipped)
        .await
        .unwrap();
    fx.hook.take();
    let first = Shipment {
        tracking_number: "TRK-FIRST".into(),
        shipped_at: orders_domain::time::parse_ts("2026-02-03T04:05:06.789Z").unwrap(),
    };
    let at = OrderAt::now(id);
    assert_eq!(
        fx.steps.mark_shipped(at, Step::MarkShipped, &first).await,
        Ok(StatusChange::Changed { version: 5 })
    );
    assert_eq!(fx.hook.take(), ["GetItem", "TransactWriteItems"]);
    let second = Shipment {
        tracking_number: "TRK-SECOND".into(),
        shipped_at: Utc::now(),
    };
    assert_eq!(
        fx.steps.mark_shipped(at, Step::MarkShipped, &second).await,
        Ok(StatusChange::Unchanged)
    );
    let order = fx.get(id).await;
    assert_eq!((order.status, order.version), (OrderStatus::Shipped, 5));
    assert_eq!(order.shipment, Some(first));
    let step = order
        .steps
        .iter()
        .find(|s| s.step == "MarkShipped")
        .unwrap();
    assert_eq!(step.status, "SUCCEEDED");
    assert!(matches!(
        fx.cancel(id, None).await.unwrap(),
        CancelOutcome::NotCancellable(_)
    ));
}
