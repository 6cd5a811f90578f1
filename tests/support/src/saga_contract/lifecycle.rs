//! The contract's cases for what the outside actors leave on an order: the payment
//! RequestPayment records and compensation refunds, the customer's cancellation (read back, and
//! the guard that refuses every forward move once it is asked for), and the shipment
//! MarkShipped records with its status change.

use super::status::{assert_step, attempt, set_status};
use super::{Driver, PaymentView, SagaFixture, at, step};
use chrono::{DateTime, Utc};
use orders_domain::lifecycle::{PaymentStatus, Shipment};
use orders_domain::{Cents, OrderId, OrderStatus, PaymentId};
use orders_workflow::steps::store::{PaymentRequest, StatusChange};
use orders_workflow::steps::{Step, StepStoreError};

/// What the fixture's orders cost (`SagaFixture::new_order`'s total does not matter here).
const AMOUNT: Cents = Cents(12_000);

/// RequestPayment's store call for the order's payment, waiting on `token`.
async fn request(
    store: &Driver,
    order: OrderId,
    token: &str,
) -> Result<PaymentStatus, StepStoreError> {
    let token = token.to_owned();
    store
        .call(move |s| async move {
            let payment_id = PaymentId::for_order(order);
            let request = PaymentRequest {
                payment_id: &payment_id,
                amount: AMOUNT,
                method: "pm_card_visa",
                token: &token,
            };
            s.request_payment(at(order, Utc::now()), &request).await
        })
        .await
}

async fn refund(store: &Driver, order: OrderId) -> bool {
    step!(store, s => s.refund(at(order, Utc::now()))).unwrap()
}

fn payment(order: OrderId, status: PaymentStatus, token: &str) -> Option<PaymentView> {
    Some(PaymentView {
        payment_id: PaymentId::for_order(order),
        status,
        amount: AMOUNT,
        token: Some(token.to_owned()),
    })
}

/// Moves a new order along the forward path up to `to` (each step's move, as the saga makes
/// it); returns the order's version there.
async fn advance(fx: &dyn SagaFixture, order: OrderId, to: OrderStatus) -> i64 {
    let store = fx.store();
    let path = [
        (Step::ReserveInventory, OrderStatus::InventoryReserved),
        (Step::RequestPayment, OrderStatus::AwaitingPayment),
        (Step::RequestPayment, OrderStatus::PaymentProcessed),
    ];
    for (step, status) in path {
        set_status(&store, order, step, status, None).await.unwrap();
        if status == to {
            break;
        }
    }
    let (status, version, _) = fx.order(order).await;
    assert_eq!(status, to);
    version
}

/// A shipment at a whole millisecond (what both stores keep of a time).
fn shipment(tracking: &str) -> Shipment {
    let millis = Utc::now().timestamp_millis();
    Shipment {
        tracking_number: tracking.to_owned(),
        shipped_at: DateTime::from_timestamp_millis(millis).unwrap(),
    }
}

async fn mark_shipped(
    store: &Driver,
    order: OrderId,
    shipment: &Shipment,
) -> Result<StatusChange, StepStoreError> {
    let shipment = shipment.clone();
    step!(store, s => s.mark_shipped(at(order, Utc::now()), Step::MarkShipped, &shipment))
}

pub async fn payment_is_requested_then_refunded_once(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-pay").await;
    assert!(!refund(&store, order).await, "no payment to refund");
    assert_eq!(fx.payment(order).await, None);
    let requested = PaymentStatus::Requested;
    assert_eq!(request(&store, order, "token-1").await, Ok(requested));
    assert_eq!(
        fx.payment(order).await,
        payment(order, requested, "token-1")
    );
    // A retried RequestPayment waits on a new token: the webhook must complete that one.
    assert_eq!(request(&store, order, "token-2").await, Ok(requested));
    assert_eq!(
        fx.payment(order).await,
        payment(order, requested, "token-2")
    );
    assert!(
        !refund(&store, order).await,
        "nothing was charged while REQUESTED"
    );
    assert_eq!(fx.payment(order).await.map(|p| p.status), Some(requested));
    fx.settle_payment(order, PaymentStatus::Succeeded).await;
    assert!(refund(&store, order).await);
    let refunded = PaymentStatus::Refunded;
    assert_eq!(fx.payment(order).await, payment(order, refunded, "token-2"));
    assert!(!refund(&store, order).await, "refunded once");
    // A late re-run of RequestPayment learns the answer and must not ask again.
    assert_eq!(request(&store, order, "token-3").await, Ok(refunded));
    assert_eq!(fx.payment(order).await, payment(order, refunded, "token-2"));
}

pub async fn a_settled_payment_is_kept(fx: &dyn SagaFixture) {
    let store = fx.store();
    let paid = fx.new_order("c-settled").await;
    request(&store, paid, "token-1").await.unwrap();
    fx.settle_payment(paid, PaymentStatus::Succeeded).await;
    let succeeded = PaymentStatus::Succeeded;
    assert_eq!(request(&store, paid, "token-2").await, Ok(succeeded));
    assert_eq!(fx.payment(paid).await, payment(paid, succeeded, "token-1"));

    let declined = fx.new_order("c-settled").await;
    request(&store, declined, "token-1").await.unwrap();
    fx.settle_payment(declined, PaymentStatus::Failed).await;
    let failed = PaymentStatus::Failed;
    assert_eq!(request(&store, declined, "token-2").await, Ok(failed));
    assert!(
        !refund(&store, declined).await,
        "a failed payment has no charge"
    );
    assert_eq!(
        fx.payment(declined).await,
        payment(declined, failed, "token-1")
    );
}

pub async fn cancellation_is_read_back(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-cancel-read").await;
    assert_eq!(step!(store, s => s.cancellation(order)), Ok(None));
    let before = Utc::now() - chrono::Duration::seconds(1);
    fx.request_cancel(order, Some("changed my mind")).await;
    let request = step!(store, s => s.cancellation(order)).unwrap().unwrap();
    assert_eq!(request.reason.as_deref(), Some("changed my mind"));
    assert!(
        request.requested_at > before
            && request.requested_at < Utc::now() + chrono::Duration::seconds(1),
        "{request:?}"
    );
    let silent = fx.new_order("c-cancel-read").await;
    fx.request_cancel(silent, None).await;
    let request = step!(store, s => s.cancellation(silent)).unwrap().unwrap();
    assert_eq!(request.reason, None);
}

pub async fn cancellation_stops_every_forward_move(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-guard").await;
    advance(fx, order, OrderStatus::InventoryReserved).await;
    let reason = "changed my mind";
    fx.request_cancel(order, Some(reason)).await;
    let (_, v, _) = fx.order(order).await;
    let refused = Err(StepStoreError::Cancelled {
        reason: Some(reason.into()),
    });
    let step = Step::RequestPayment;
    attempt(&store, order, step).await;
    let awaiting = OrderStatus::AwaitingPayment;
    assert_eq!(
        set_status(&store, order, step, awaiting, None).await,
        refused
    );
    assert_step(fx, order, step, "RUNNING", 1, None).await;
    // Forward moves the lifecycle would forbid anyway are refused as cancelled too.
    for to in [
        OrderStatus::PaymentProcessed,
        OrderStatus::Shipped,
        OrderStatus::Completed,
    ] {
        assert_eq!(set_status(&store, order, step, to, None).await, refused);
    }
    // A re-run of a move made before the request stays a no-op.
    let reserved = OrderStatus::InventoryReserved;
    let rerun = set_status(&store, order, Step::ReserveInventory, reserved, None).await;
    assert_eq!(rerun, Ok(StatusChange::Unchanged));
    assert_eq!(fx.order(order).await, (reserved, v, None));
    // Compensation is not forward: it runs to CANCELLED.
    let why = Some("cancelled by the customer");
    let (compensating, cancelled) = (OrderStatus::Compensating, OrderStatus::Cancelled);
    let begun = set_status(&store, order, Step::BeginCompensation, compensating, why).await;
    assert_eq!(begun, Ok(StatusChange::Changed { version: v + 1 }));
    let ended = set_status(&store, order, Step::MarkCancelled, cancelled, None).await;
    assert_eq!(ended, Ok(StatusChange::Changed { version: v + 2 }));
    assert_eq!(
        fx.order(order).await,
        (cancelled, v + 2, why.map(Into::into))
    );

    let pending = fx.new_order("c-guard").await;
    fx.request_cancel(pending, None).await;
    let first = set_status(&store, pending, Step::ReserveInventory, reserved, None).await;
    assert_eq!(first, Err(StepStoreError::Cancelled { reason: None }));
    assert_eq!(fx.order(pending).await.0, OrderStatus::Pending);
}

pub async fn mark_shipped_records_once_and_moves(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-ship").await;
    let v = advance(fx, order, OrderStatus::PaymentProcessed).await;
    assert_eq!(fx.shipment(order).await, None);
    attempt(&store, order, Step::MarkShipped).await;
    let first = shipment("TRK-FIRST");
    let shipped = mark_shipped(&store, order, &first).await;
    assert_eq!(shipped, Ok(StatusChange::Changed { version: v + 1 }));
    assert_eq!(fx.order(order).await, (OrderStatus::Shipped, v + 1, None));
    assert_eq!(fx.shipment(order).await, Some(first.clone()));
    assert_step(fx, order, Step::MarkShipped, "SUCCEEDED", 1, None).await;
    // A re-run (after a crash, or a second report of the warehouse) changes nothing.
    attempt(&store, order, Step::MarkShipped).await;
    let second = shipment("TRK-SECOND");
    let rerun = mark_shipped(&store, order, &second).await;
    assert_eq!(rerun, Ok(StatusChange::Unchanged));
    assert_eq!(
        fx.shipment(order).await,
        Some(first.clone()),
        "the first stands"
    );
    assert_step(fx, order, Step::MarkShipped, "SUCCEEDED", 2, None).await;
    let completed = OrderStatus::Completed;
    set_status(&store, order, Step::MarkCompleted, completed, None)
        .await
        .unwrap();
    let late = mark_shipped(&store, order, &second).await;
    assert_eq!(late, Ok(StatusChange::Unchanged));
    assert_eq!(fx.order(order).await, (completed, v + 2, None));
    assert_eq!(fx.shipment(order).await, Some(first));
}

pub async fn mark_shipped_is_refused_when_cancelled_or_early(fx: &dyn SagaFixture) {
    let store = fx.store();
    let cancelled = fx.new_order("c-ship-refused").await;
    advance(fx, cancelled, OrderStatus::PaymentProcessed).await;
    fx.request_cancel(cancelled, Some("too slow")).await;
    let (_, v, _) = fx.order(cancelled).await;
    attempt(&store, cancelled, Step::MarkShipped).await;
    let parcel = shipment("TRK-NEVER");
    assert_eq!(
        mark_shipped(&store, cancelled, &parcel).await,
        Err(StepStoreError::Cancelled {
            reason: Some("too slow".into())
        })
    );
    assert_eq!(fx.shipment(cancelled).await, None, "nothing recorded");
    let paid = OrderStatus::PaymentProcessed;
    assert_eq!(fx.order(cancelled).await, (paid, v, None));
    assert_step(fx, cancelled, Step::MarkShipped, "RUNNING", 1, None).await;

    let early = fx.new_order("c-ship-refused").await;
    let reserved = OrderStatus::InventoryReserved;
    advance(fx, early, reserved).await;
    assert_eq!(
        mark_shipped(&store, early, &parcel).await,
        Err(StepStoreError::InvalidTransition {
            from: reserved,
            to: OrderStatus::Shipped
        })
    );
    assert_eq!(fx.shipment(early).await, None);
    let missing = OrderId::new();
    assert_eq!(
        mark_shipped(&store, missing, &parcel).await,
        Err(StepStoreError::OrderNotFound(missing))
    );
}
