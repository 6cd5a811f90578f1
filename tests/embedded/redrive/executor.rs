//! `Executor::redrive` with the real step handlers on SQLite, each call counted: a release
//! refused until the cause is fixed ends the execution in `CompensationFailedAtReleaseInventory`;
//! the redrive runs ReleaseInventory again (not the Fail state, not any earlier step) and the
//! compensation finishes. A crash right after the redrive was recorded is resumed like any
//! RUNNING execution.

use orders_test_support as common;

use async_trait::async_trait;
use common::stack::{Stack, order_body, with_payment};
use orders_domain::OutboxEvent;
use orders_sqlite::StepInOneJob;
use orders_workflow::asl::StateMachine;
use orders_workflow::executor::{
    ExecutionStatus, ExecutionStore, Executor, ExecutorOptions, HistoryEventKind, RedriveError,
    TaskContext, TaskError, TaskHandler,
};
use orders_workflow::steps::{Step, StepSettings};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Calls per step, across executors.
#[derive(Default)]
struct Calls(Mutex<HashMap<String, u32>>);

impl Calls {
    fn of(&self, step: &str) -> u32 {
        self.0.lock().unwrap().get(step).copied().unwrap_or(0)
    }
}

/// A step handler that counts its calls, then refuses (as a throttled Lambda service would)
/// while `refuse` is set, hangs while `hang` is set, and otherwise runs the real step.
struct Counted {
    inner: Arc<dyn TaskHandler>,
    calls: Arc<Calls>,
    refuse: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
}

#[async_trait]
impl TaskHandler for Counted {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        *self
            .calls
            .0
            .lock()
            .unwrap()
            .entry(ctx.state.clone())
            .or_default() += 1;
        if self.refuse.load(Ordering::SeqCst) {
            return Err(TaskError::new(
                "Lambda.TooManyRequestsException",
                "Rate exceeded",
            ));
        }
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.invoke(input, ctx).await
    }
}

/// The provider declines at once (the task fails PaymentDeclined), counted too.
struct Declines(Arc<Calls>);

#[async_trait]
impl TaskHandler for Declines {
    async fn invoke(&self, _: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        *self
            .0
            .0
            .lock()
            .unwrap()
            .entry(ctx.state.clone())
            .or_default() += 1;
        Err(TaskError::new("PaymentDeclined", "card_declined"))
    }
}

struct World {
    stack: Stack,
    calls: Arc<Calls>,
    /// ReleaseInventory's switches.
    refuse: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    name: String,
    order: String,
}

impl World {
    async fn new() -> World {
        let stack = Stack::without_relay().await;
        stack.put_inventory("gizmo", 10).await;
        let body = with_payment(
            order_body("cust-rd", "gizmo", 3, 4.5),
            "pm_card_chargeDeclined",
        );
        let order = stack.create(&body).await;
        let event = OutboxEvent::decode(stack.outbox_payload(&order).as_bytes()).unwrap();
        World {
            stack,
            calls: Arc::default(),
            refuse: Arc::new(AtomicBool::new(true)),
            hang: Arc::new(AtomicBool::new(false)),
            name: event.id.to_string(),
            order,
        }
    }

    /// An executor over the stack's store whose handlers are counted; only ReleaseInventory
    /// obeys the switches.
    fn executor(&self) -> Arc<Executor> {
        let real: Arc<dyn TaskHandler> = Arc::new(StepInOneJob {
            store: self.stack.store.clone(),
            settings: StepSettings::default(),
        });
        let mut handlers: HashMap<String, Arc<dyn TaskHandler>> = HashMap::new();
        for (resource, inner) in Step::handlers(real) {
            let release = resource == Step::ReleaseInventory.substitution();
            let switch = |on: &Arc<AtomicBool>| match release {
                true => on.clone(),
                false => Arc::new(AtomicBool::new(false)),
            };
            let counted = Counted {
                inner,
                calls: self.calls.clone(),
                refuse: switch(&self.refuse),
                hang: switch(&self.hang),
            };
            handlers.insert(resource, Arc::new(counted));
        }
        handlers.insert(
            Step::RequestPayment.substitution(),
            Arc::new(Declines(self.calls.clone())),
        );
        let options = ExecutorOptions {
            delay_scale: 0.000_01,
            ..ExecutorOptions::default()
        };
        let s = &self.stack;
        Executor::with_queue(
            StateMachine::saga().unwrap(),
            handlers,
            s.store.clone(),
            s.store.clone(),
            options,
        )
        .unwrap()
    }

    /// Starts the saga and lets it fail in CompensationFailedAtReleaseInventory.
    async fn failed(&self) -> Arc<Executor> {
        let executor = self.executor();
        let event = OutboxEvent::decode(self.stack.outbox_payload(&self.order).as_bytes()).unwrap();
        let input = serde_json::to_value(&event.data).unwrap();
        executor.start(&self.name, input).await.unwrap();
        settle(&executor).await;
        let failed = self.snapshot().await;
        assert_eq!(failed.status, ExecutionStatus::Failed);
        assert_eq!(failed.state, "CompensationFailedAtReleaseInventory");
        executor
    }

    async fn snapshot(&self) -> orders_workflow::executor::ExecutionSnapshot {
        let store = &*self.stack.store;
        ExecutionStore::get(store, &self.name)
            .await
            .unwrap()
            .unwrap()
    }
}

async fn settle(executor: &Executor) {
    tokio::time::timeout(Duration::from_secs(30), executor.idle())
        .await
        .expect("the execution did not settle");
}

/// The number of each kind of event of `state` in the history.
async fn count(w: &World, kind: HistoryEventKind, state: &str) -> usize {
    let history = ExecutionStore::history(&*w.stack.store, &w.name)
        .await
        .unwrap();
    history
        .iter()
        .filter(|e| e.kind == kind && e.state.as_deref() == Some(state))
        .count()
}

#[tokio::test]
async fn a_redrive_runs_the_caught_step_again_and_nothing_before_it() {
    let w = World::new().await;
    let executor = w.failed().await;
    let before = [
        "ReserveInventory",
        "RequestPayment",
        "BeginCompensation",
        "RefundPayment",
    ];
    let once: Vec<u32> = before.iter().map(|s| w.calls.of(s)).collect();
    assert_eq!(once, [1, 1, 1, 1]);
    assert_eq!(
        w.calls.of("ReleaseInventory"),
        61,
        "the first run and 60 retries"
    );
    assert_eq!(w.stack.stock("gizmo").await, 7, "still held");

    // Fixed: the release runs now.
    w.refuse.store(false, Ordering::SeqCst);
    let redriven = executor.redrive(&w.name).await.unwrap();
    assert_eq!(
        (redriven.state.as_str(), redriven.redrive_count),
        ("ReleaseInventory", 1)
    );
    assert!(
        redriven.retry_counts.is_empty(),
        "retry counters start afresh"
    );
    settle(&executor).await;

    let done = w.snapshot().await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(
        (done.state.as_str(), done.redrive_count),
        ("Compensated", 1)
    );
    let again: Vec<u32> = before.iter().map(|s| w.calls.of(s)).collect();
    assert_eq!(again, once, "no earlier step ran again");
    assert_eq!(w.calls.of("ReleaseInventory"), 62);
    assert_eq!(
        (w.calls.of("RestoreVoucher"), w.calls.of("MarkFailed")),
        (1, 1)
    );
    assert_eq!(w.stack.stock("gizmo").await, 10, "the stock is back");
    let order = w.stack.get_json(&format!("/orders/{}", w.order)).await;
    assert_eq!(order["status"], "FAILED", "{order}");

    // The history kept everything and says where it carried on.
    assert_eq!(
        count(&w, HistoryEventKind::ExecutionRedriven, "ReleaseInventory").await,
        1
    );
    assert_eq!(
        count(&w, HistoryEventKind::StateEntered, "ReleaseInventory").await,
        2
    );
    assert_eq!(
        count(&w, HistoryEventKind::RetryScheduled, "ReleaseInventory").await,
        60
    );
    assert_eq!(
        count(
            &w,
            HistoryEventKind::ExecutionFailed,
            "CompensationFailedAtReleaseInventory"
        )
        .await,
        1
    );
    let history = ExecutionStore::history(&*w.stack.store, &w.name)
        .await
        .unwrap();
    assert!(
        history.windows(2).all(|p| p[1].seq == p[0].seq + 1),
        "no gaps"
    );
    let ended = history
        .iter()
        .filter(|e| e.kind == HistoryEventKind::TaskSucceeded);
    assert!(ended.clone().count() > 0 && ended.clone().all(|e| e.duration_ms.is_some()));

    // Only a FAILED execution can be redriven.
    match executor.redrive(&w.name).await {
        Err(RedriveError::NotRedrivable { status, .. }) => {
            assert_eq!(status, ExecutionStatus::Succeeded)
        }
        other => panic!("expected NotRedrivable, got {other:?}"),
    }
    assert!(matches!(
        executor.redrive("no-such-execution").await,
        Err(RedriveError::DoesNotExist(_))
    ));
}

#[tokio::test]
async fn a_crash_right_after_the_redrive_is_resumed_from_the_redriven_step() {
    let w = World::new().await;
    let first = w.failed().await;
    w.refuse.store(false, Ordering::SeqCst);
    // The redriven release hangs: the process "crashes" with it in flight.
    w.hang.store(true, Ordering::SeqCst);
    let calls = w.calls.of("ReleaseInventory");
    first.redrive(&w.name).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.calls.of("ReleaseInventory") == calls {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the release never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.shutdown().await;
    let stored = w.snapshot().await;
    assert_eq!(
        (stored.status, stored.state.as_str()),
        (ExecutionStatus::Running, "ReleaseInventory")
    );

    w.hang.store(false, Ordering::SeqCst);
    let next = w.executor();
    assert_eq!(next.resume_unfinished().await.unwrap(), 1);
    settle(&next).await;
    let done = w.snapshot().await;
    assert_eq!(
        (done.status, done.redrive_count),
        (ExecutionStatus::Succeeded, 1)
    );
    assert_eq!(
        w.calls.of("BeginCompensation"),
        1,
        "nothing before the release ran again"
    );
    assert_eq!(w.stack.stock("gizmo").await, 10);
}
