//! The contract's status and step-history cases: a status change is conditional on the
//! order's version and marks its step, and the step history counts every attempt.

use super::{Driver, SagaFixture, StepView, at, step};
use chrono::Utc;
use orders_domain::{OrderId, OrderStatus};
use orders_workflow::steps::store::{StatusChange, StatusMove};
use orders_workflow::steps::{Step, StepStoreError};

/// The store call with which `step` ends by moving the order to `to`, now.
pub(super) async fn set_status(
    store: &Driver,
    order: OrderId,
    step: Step,
    to: OrderStatus,
    reason: Option<&'static str>,
) -> Result<StatusChange, StepStoreError> {
    step!(store, s => s.set_status(at(order, Utc::now()), StatusMove { step, to, reason }))
}

/// Requires `step`'s move of the order to `to` to be refused, the lifecycle forbidding it
/// from `from`.
async fn assert_forbidden(
    store: &Driver,
    order: OrderId,
    step: Step,
    from: OrderStatus,
    to: OrderStatus,
) {
    let refused = Err(StepStoreError::InvalidTransition { from, to });
    assert_eq!(set_status(store, order, step, to, None).await, refused);
}

pub(super) async fn attempt(store: &Driver, order: OrderId, step: Step) {
    step!(store, s => s.step_attempt(at(order, Utc::now()), step)).unwrap();
}

/// Requires the order's history entry of `step` to show `status` after `attempts`, with
/// `error` as the last attempt's.
pub async fn assert_step(
    fx: &dyn SagaFixture,
    order: OrderId,
    step: Step,
    status: &str,
    attempts: i64,
    error: Option<&str>,
) {
    let want = StepView {
        status: status.into(),
        attempts,
        error: error.map(str::to_owned),
    };
    assert_eq!(fx.step(order, step).await, Some(want), "{}", step.name());
}

pub async fn status_changes_are_conditional_and_mark_the_step(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-status").await;
    let (status, v0, _) = fx.order(order).await;
    assert_eq!(status, OrderStatus::Pending);
    let step = Step::ReserveInventory;
    attempt(&store, order, step).await;
    let reserved = OrderStatus::InventoryReserved;
    let changed = set_status(&store, order, step, reserved, None).await;
    assert_eq!(changed, Ok(StatusChange::Changed { version: v0 + 1 }));
    assert_eq!(
        fx.step(order, step).await.map(|s| s.status).as_deref(),
        Some("SUCCEEDED"),
        "the status change marks its step"
    );
    // A re-run of the step (attempt, then the same move) changes nothing but the history.
    attempt(&store, order, step).await;
    let rerun = set_status(&store, order, step, reserved, None).await;
    assert_eq!(rerun, Ok(StatusChange::Unchanged));
    assert_step(fx, order, step, "SUCCEEDED", 2, None).await;
    assert_eq!(fx.order(order).await.1, v0 + 1);
    // A move the lifecycle forbids is refused and changes nothing.
    let (completed, compensating) = (OrderStatus::Completed, OrderStatus::Compensating);
    assert_forbidden(&store, order, Step::MarkCompleted, reserved, completed).await;
    let begin = Step::BeginCompensation;
    let declined = Some("PaymentDeclined: card declined");
    let begun = set_status(&store, order, begin, compensating, declined).await;
    assert_eq!(begun, Ok(StatusChange::Changed { version: v0 + 2 }));
    // A forward step arriving late (a stale writer) cannot pull the order out of compensation.
    let awaiting = OrderStatus::AwaitingPayment;
    assert_forbidden(&store, order, Step::RequestPayment, compensating, awaiting).await;
    assert_eq!(
        fx.order(order).await,
        (
            OrderStatus::Compensating,
            v0 + 2,
            Some("PaymentDeclined: card declined".into())
        )
    );
    let missing = OrderId::new();
    assert_eq!(
        set_status(&store, missing, Step::MarkFailed, OrderStatus::Failed, None).await,
        Err(StepStoreError::OrderNotFound(missing))
    );
}

pub async fn concurrent_status_changes_apply_once(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-race").await;
    let v0 = fx.order(order).await.1;
    let runs = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let (step, to) = (Step::ReserveInventory, OrderStatus::InventoryReserved);
            set_status(&store, order, step, to, None).await
        })
    });
    let mut changed = 0;
    for run in runs.collect::<Vec<_>>() {
        match run.await.unwrap().unwrap() {
            StatusChange::Changed { version } => {
                assert_eq!(version, v0 + 1);
                changed += 1;
            }
            StatusChange::Unchanged => {}
        }
    }
    assert_eq!(changed, 1, "exactly one writer moves the order");
    assert_eq!(
        fx.order(order).await,
        (OrderStatus::InventoryReserved, v0 + 1, None)
    );
}

pub async fn step_history_counts_attempts(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-history").await;
    let step = Step::RequestPayment;
    assert_eq!(fx.step(order, step).await, None);
    attempt(&store, order, step).await;
    assert_step(fx, order, step, "RUNNING", 1, None).await;
    let busy = "Transient: provider busy";
    step!(store, s => s.step_result(at(order, Utc::now()), step, Some(busy))).unwrap();
    assert_step(fx, order, step, "FAILED", 1, Some(busy)).await;
    attempt(&store, order, step).await;
    assert_eq!(fx.step(order, step).await.map(|s| s.attempts), Some(2));
    step!(store, s => s.step_result(at(order, Utc::now()), step, None)).unwrap();
    assert_step(fx, order, step, "SUCCEEDED", 2, None).await;
    // Steps are counted apart.
    attempt(&store, order, Step::SendNotification).await;
    assert_eq!(
        fx.step(order, Step::SendNotification)
            .await
            .map(|s| s.attempts),
        Some(1)
    );
    assert_eq!(fx.step(order, step).await.map(|s| s.attempts), Some(2));
}
