//! The saga with the real step handlers on SQLite when a compensation step cannot run: as if
//! the Lambda service refused every invocation of ReleaseInventory. Compensation retries it
//! (delays scaled by 1e-5 here), then the execution ends in `CompensationFailed.<step>` while the
//! order stays `COMPENSATING` holding its stock, for an operator to see and redrive, instead
//! of being marked FAILED with stock it never gave back.

use orders_test_support as common;

use async_trait::async_trait;
use common::stack::Stack;
use orders_sqlite::StepInOneJob;
use orders_workflow::asl::StateMachine;
use orders_workflow::executor::{
    ExecutionStatus, ExecutionStore, Executor, ExecutorOptions, HistoryEventKind, TaskContext,
    TaskError, TaskHandler,
};
use orders_workflow::steps::{Step, StepSettings};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What Step Functions reports when the Lambda service refuses an invocation.
struct Throttled;

/// A provider that declines at once, as its webhook would (the task fails PaymentDeclined).
struct Declines;

#[async_trait]
impl TaskHandler for Declines {
    async fn invoke(&self, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
        Err(TaskError::new("PaymentDeclined", "card_declined"))
    }
}

#[async_trait]
impl TaskHandler for Throttled {
    async fn invoke(&self, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
        Err(TaskError::new(
            "Lambda.TooManyRequestsException",
            "Rate exceeded",
        ))
    }
}

#[tokio::test]
async fn a_release_that_never_runs_leaves_the_order_compensating_and_fails_the_execution() {
    let s = Stack::without_relay().await;
    let event = s.declined_order_event("cust-f1").await;
    let id = event.data.order_id.to_string();

    let mut handlers = Step::handlers(Arc::new(StepInOneJob {
        store: s.store.clone(),
        settings: StepSettings::default(),
    }));
    handlers.insert(Step::ReleaseInventory.substitution(), Arc::new(Throttled));
    handlers.insert(Step::RequestPayment.substitution(), Arc::new(Declines));
    let options = ExecutorOptions {
        delay_scale: 0.000_01,
        ..ExecutorOptions::default()
    };
    let executor = Executor::with_queue(
        StateMachine::saga().unwrap(),
        handlers,
        s.store.clone(),
        s.store.clone(),
        options,
    )
    .unwrap();
    let name = event.id.to_string();
    let input = serde_json::to_value(&event.data).unwrap();
    executor.start(&name, input).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), executor.idle())
        .await
        .expect("the execution did not finish");

    let snapshot = ExecutionStore::get(&*s.store, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.status, ExecutionStatus::Failed);
    assert_eq!(snapshot.state, "CompensationFailedAtReleaseInventory");
    assert_eq!(
        snapshot.error.as_deref(),
        Some("CompensationFailed.ReleaseInventory")
    );
    let history = ExecutionStore::history(&*s.store, &name).await.unwrap();
    let retries = history
        .iter()
        .filter(|e| {
            e.kind == HistoryEventKind::RetryScheduled
                && e.state.as_deref() == Some("ReleaseInventory")
        })
        .count();
    assert_eq!(retries, 60);

    let order = s.get_json(&format!("/orders/{id}")).await;
    assert_eq!(order["status"], "COMPENSATING", "{order}");
    assert_eq!(s.stock("gizmo").await, 7, "the reservation is still held");
    assert_eq!(s.execution_status(&id).await, "FAILED");
}
