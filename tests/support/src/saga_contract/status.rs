//! The contract's status and step-history cases: a status change is conditional on the
//! order's version and marks its step, and the step history counts every attempt.

use super::{SagaFixture, StepView, step};
use chrono::Utc;
use orders_domain::{OrderId, OrderStatus};
use orders_workflow::steps::store::StatusChange;
use orders_workflow::steps::{Step, StepStoreError};

pub async fn status_changes_are_conditional_and_mark_the_step(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-status").await;
    let (status, v0, _) = fx.order(order).await;
    assert_eq!(status, OrderStatus::Pending);
    let step = Step::ReserveInventory;
    step!(store, s => s.step_attempt(order, step, Utc::now())).unwrap();
    let changed = step!(store, s => s.set_status(
        order,
        step,
        OrderStatus::InventoryReserved,
        None,
        Utc::now(),
    ))
    .unwrap();
    assert_eq!(changed, StatusChange::Changed { version: v0 + 1 });
    assert_eq!(
        fx.step(order, step).await.map(|s| s.status).as_deref(),
        Some("SUCCEEDED"),
        "the status change marks its step"
    );
    // A re-run of the step (attempt, then the same move) changes nothing but the history.
    step!(store, s => s.step_attempt(order, step, Utc::now())).unwrap();
    assert_eq!(
        step!(store, s => s.set_status(
            order,
            step,
            OrderStatus::InventoryReserved,
            None,
            Utc::now()
        ))
        .unwrap(),
        StatusChange::Unchanged
    );
    assert_eq!(
        fx.step(order, step).await,
        Some(StepView {
            status: "SUCCEEDED".into(),
            attempts: 2,
            error: None
        })
    );
    assert_eq!(fx.order(order).await.1, v0 + 1);
    // A move the lifecycle forbids is refused and changes nothing.
    assert_eq!(
        step!(store, s => s.set_status(
            order,
            Step::MarkCompleted,
            OrderStatus::Completed,
            None,
            Utc::now()
        )),
        Err(StepStoreError::InvalidTransition {
            from: OrderStatus::InventoryReserved,
            to: OrderStatus::Completed
        })
    );
    assert_eq!(
        step!(store, s => s.set_status(
            order,
            Step::BeginCompensation,
            OrderStatus::Compensating,
            Some("PaymentDeclined: card declined"),
            Utc::now()
        ))
        .unwrap(),
        StatusChange::Changed { version: v0 + 2 }
    );
    // A forward step arriving late (a stale writer) cannot pull the order out of compensation.
    assert_eq!(
        step!(store, s => s.set_status(
            order,
            Step::ProcessPayment,
            OrderStatus::PaymentProcessed,
            None,
            Utc::now()
        )),
        Err(StepStoreError::InvalidTransition {
            from: OrderStatus::Compensating,
            to: OrderStatus::PaymentProcessed
        })
    );
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
        step!(store, s => s.set_status(
            missing,
            Step::MarkFailed,
            OrderStatus::Failed,
            None,
            Utc::now()
        )),
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
            step!(store, s => s.set_status(
                order,
                Step::ReserveInventory,
                OrderStatus::InventoryReserved,
                None,
                Utc::now(),
            ))
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
    let step = Step::ProcessPayment;
    assert_eq!(fx.step(order, step).await, None);
    step!(store, s => s.step_attempt(order, step, Utc::now())).unwrap();
    assert_eq!(
        fx.step(order, step).await,
        Some(StepView {
            status: "RUNNING".into(),
            attempts: 1,
            error: None
        })
    );
    step!(store, s => s.step_result(order, step, Some("Transient: provider busy"), Utc::now()))
        .unwrap();
    assert_eq!(
        fx.step(order, step).await,
        Some(StepView {
            status: "FAILED".into(),
            attempts: 1,
            error: Some("Transient: provider busy".into())
        })
    );
    step!(store, s => s.step_attempt(order, step, Utc::now())).unwrap();
    assert_eq!(fx.step(order, step).await.map(|s| s.attempts), Some(2));
    step!(store, s => s.step_result(order, step, None, Utc::now())).unwrap();
    assert_eq!(
        fx.step(order, step).await,
        Some(StepView {
            status: "SUCCEEDED".into(),
            attempts: 2,
            error: None
        })
    );
    // Steps are counted apart.
    step!(store, s => s.step_attempt(order, Step::SendNotification, Utc::now())).unwrap();
    assert_eq!(
        fx.step(order, Step::SendNotification)
            .await
            .map(|s| s.attempts),
        Some(1)
    );
    assert_eq!(fx.step(order, step).await.map(|s| s.attempts), Some(2));
}
