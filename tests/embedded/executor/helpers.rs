//! Shared by the executor tests: scripted step handlers for the real saga definition, fast
//! executor options, and small helpers over the SQLite execution store the local stack runs
//! on (a fresh database per test).
//!
//! The saga's two callback Tasks are answered the way their actors answer them, through the
//! executor's task-token API: RequestPayment's scripted result is sent with
//! `send_task_success` (its error fails the handler call itself), and PrepareShipment's
//! message on the scripted warehouse queue is answered with a tracking number.

pub use async_trait::async_trait;
pub use orders_sqlite::SqliteStore;
pub use orders_test_support::temp_store;
pub use orders_workflow::asl::{JitterStrategy, Retrier, StateMachine};
pub use orders_workflow::executor::{
    ExecError, ExecutionSnapshot, ExecutionStatus, ExecutionStore, ExecutionStoreError, Executor,
    ExecutorOptions, HistoryEvent, HistoryEventKind as Kind, QueueMessage, StartOutcome,
    TaskContext, TaskError, TaskHandler, TaskQueue, TaskQueueError, retry_delay,
};
pub use serde_json::{Value, json};
pub use std::collections::{BTreeSet, HashMap};
use std::sync::Weak;
pub use std::sync::atomic::{AtomicBool, Ordering};
pub use std::sync::{Arc, Mutex};
pub use std::time::{Duration, Instant};

pub use super::observed::ObservedStore;

/// The saga's Tasks that call a handler (PrepareShipment puts a message on a queue instead).
pub const STEPS: [&str; 12] = [
    "ReserveInventory",
    "RequestPayment",
    "SendNotification",
    "MarkShipped",
    "IssueVoucher",
    "MarkCompleted",
    "BeginCompensation",
    "RefundPayment",
    "ReleaseInventory",
    "RestoreVoucher",
    "MarkFailed",
    "MarkCancelled",
];
/// The state the warehouse queue's messages are recorded under in `Saga::calls`.
pub const SHIPMENT: &str = "PrepareShipment";
pub const COMPENSATION: [&str; 5] = [
    "BeginCompensation",
    "RefundPayment",
    "ReleaseInventory",
    "RestoreVoucher",
    "MarkFailed",
];

pub type Script = Arc<dyn Fn(&Value, &TaskContext) -> Result<Value, TaskError> + Send + Sync>;

/// One call a handler received.
#[derive(Debug, Clone)]
pub struct Call {
    pub execution: String,
    pub state: String,
    pub attempt: u32,
    pub input: Value,
}

/// A handler driven by a script; records every call, optionally sleeps or hangs first.
pub struct Scripted {
    pub script: Script,
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub sleep: Duration,
    pub hang: Arc<AtomicBool>,
}

#[async_trait]
impl TaskHandler for Scripted {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        self.calls.lock().unwrap().push(Call {
            execution: ctx.execution.clone(),
            state: ctx.state.clone(),
            attempt: ctx.attempt,
            input: input.clone(),
        });
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        (self.script)(&input, ctx)
    }
}

/// Handlers for every saga step: `{"done": step}` unless a script overrides the step. A
/// RequestPayment result is sent back as the task's token answer; a shipment request on the
/// queue is answered `{"trackingNumber": "TRK-TEST", ...}` unless `SHIPMENT` is scripted.
#[derive(Default)]
pub struct Saga {
    pub scripts: HashMap<&'static str, Script>,
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub sleep: Duration,
    pub hang: HashMap<&'static str, Arc<AtomicBool>>,
    /// The executor the callback answers go to, set once it is built.
    pub executor: Arc<Mutex<Weak<Executor>>>,
}

/// Sends a callback Task's answer through the executor's token API, as its actor would, from
/// a task of its own (an answer never arrives from inside the call that sent the request).
fn answer(executor: &Mutex<Weak<Executor>>, token: Option<&str>, result: Result<Value, TaskError>) {
    let executor = executor.lock().unwrap().upgrade();
    let (Some(executor), Some(token)) = (executor, token) else {
        return;
    };
    let token = token.to_owned();
    tokio::spawn(async move {
        let _ = match result {
            Ok(output) => executor.send_task_success(&token, output).await,
            Err(e) => executor.send_task_failure(&token, &e.error, &e.cause).await,
        };
    });
}

/// RequestPayment: the scripted handler's result (success or error) is the provider's
/// answer, sent by token; the handler call itself succeeds, as a request the provider
/// accepted does. (Retry and Catch apply to a failure sent by token as to a handler's.)
struct Callback {
    inner: Scripted,
    executor: Arc<Mutex<Weak<Executor>>>,
}

#[async_trait]
impl TaskHandler for Callback {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let result = self.inner.invoke(input.clone(), ctx).await;
        answer(&self.executor, input["taskToken"].as_str(), result);
        Ok(json!({"requested": true}))
    }
}

/// The warehouse queue: records each message as a `SHIPMENT` call and answers its token with
/// the `SHIPMENT` script's result.
struct Warehouse {
    script: Script,
    calls: Arc<Mutex<Vec<Call>>>,
    executor: Arc<Mutex<Weak<Executor>>>,
}

#[async_trait]
impl TaskQueue for Warehouse {
    async fn send(&self, _queue: &str, message: QueueMessage) -> Result<(), TaskQueueError> {
        let ctx = TaskContext {
            execution: String::new(),
            state: SHIPMENT.to_owned(),
            attempt: 1,
        };
        self.calls.lock().unwrap().push(Call {
            execution: String::new(),
            state: SHIPMENT.to_owned(),
            attempt: 1,
            input: message.body.clone(),
        });
        let result = (self.script)(&message.body, &ctx);
        answer(&self.executor, message.body["taskToken"].as_str(), result);
        Ok(())
    }
}

impl Saga {
    pub fn script(
        mut self,
        step: &'static str,
        f: impl Fn(&Value, &TaskContext) -> Result<Value, TaskError> + Send + Sync + 'static,
    ) -> Self {
        self.scripts.insert(step, Arc::new(f));
        self
    }

    pub fn handlers(&self) -> HashMap<String, Arc<dyn TaskHandler>> {
        STEPS
            .iter()
            .map(|step| {
                let script = self.scripts.get(step).cloned().unwrap_or_else(|| {
                    Arc::new(|_: &Value, c: &TaskContext| -> Result<Value, TaskError> {
                        Ok(json!({"done": c.state}))
                    })
                });
                let scripted = Scripted {
                    script,
                    calls: Arc::clone(&self.calls),
                    sleep: self.sleep,
                    hang: self.hang.get(step).cloned().unwrap_or_default(),
                };
                let handler: Arc<dyn TaskHandler> = if *step == "RequestPayment" {
                    Arc::new(Callback {
                        inner: scripted,
                        executor: Arc::clone(&self.executor),
                    })
                } else {
                    Arc::new(scripted)
                };
                (format!("{step}FunctionArn"), handler)
            })
            .collect()
    }

    /// The scripted warehouse queue of this saga.
    pub fn queue(&self) -> Arc<dyn TaskQueue> {
        let script = self.scripts.get(SHIPMENT).cloned().unwrap_or_else(|| {
            Arc::new(|_: &Value, _: &TaskContext| -> Result<Value, TaskError> {
                Ok(json!({"trackingNumber": "TRK-TEST", "shippedAt": "2026-12-01T00:00:00.000Z"}))
            })
        });
        Arc::new(Warehouse {
            script,
            calls: Arc::clone(&self.calls),
            executor: Arc::clone(&self.executor),
        })
    }

    pub fn calls(&self, state: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.state == state)
            .cloned()
            .collect()
    }

    pub fn states_called(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.state.clone())
            .collect()
    }
}

pub fn fast() -> ExecutorOptions {
    ExecutorOptions {
        delay_scale: 0.001,
        ..ExecutorOptions::default()
    }
}

/// The saga's executor over `store` (any store: the tests' observing ones too), fast retries.
pub fn saga_executor<S: ExecutionStore + 'static>(saga: &Saga, store: Arc<S>) -> Arc<Executor> {
    saga_executor_with(saga, store, fast())
}

pub fn saga_executor_with<S: ExecutionStore + 'static>(
    saga: &Saga,
    store: Arc<S>,
    options: ExecutorOptions,
) -> Arc<Executor> {
    let executor = Executor::with_queue(
        StateMachine::saga().unwrap(),
        saga.handlers(),
        store,
        saga.queue(),
        options,
    )
    .unwrap();
    // The latest executor built for this saga answers its callbacks (a restart's).
    *saga.executor.lock().unwrap() = Arc::downgrade(&executor);
    executor
}

pub fn order(total_cents: u64) -> Value {
    json!({"orderId": "o-1", "customerId": "c-1", "items": [{"productId": "p", "quantity": 1}], "totalCents": total_cents, "paymentMethod": "pm_card_visa"})
}

pub async fn idle(executor: &Executor) {
    tokio::time::timeout(Duration::from_secs(5), executor.idle())
        .await
        .expect("executions did not finish");
}

/// Waits (at most 10 s) until the execution `name` is finished in `store`. The executor being
/// idle is not enough: an execution parked on a callback holds no runner while its answer is
/// on the way.
pub async fn finished<S: ExecutionStore + ?Sized>(executor: &Executor, store: &S, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        idle(executor).await;
        match store.get(name).await.unwrap() {
            Some(s) if s.is_finished() => return,
            Some(s) if Instant::now() > deadline => {
                panic!("{name} still RUNNING in {} after 10 s", s.state)
            }
            None => panic!("no execution {name}"),
            Some(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Starts one execution, waits for it, returns its final snapshot and history.
pub async fn run_saga(saga: &Saga, input: Value) -> (ExecutionSnapshot, Vec<HistoryEvent>) {
    run_saga_with(saga, input, fast()).await
}

pub async fn run_saga_with(
    saga: &Saga,
    input: Value,
    options: ExecutorOptions,
) -> (ExecutionSnapshot, Vec<HistoryEvent>) {
    let (store, _dir) = temp_store();
    let executor = saga_executor_with(saga, Arc::clone(&store), options);
    assert_eq!(
        executor.start("exec-1", input).await.unwrap(),
        StartOutcome::Started
    );
    finished(&executor, store.as_ref(), "exec-1").await;
    let snapshot = store.get("exec-1").await.unwrap().unwrap();
    let history = store.history("exec-1").await.unwrap();
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "history seq has gaps"
    );
    assert_eq!(snapshot.seq, history.len() as u64);
    (snapshot, history)
}

pub fn events<'a>(history: &'a [HistoryEvent], kind: Kind, state: &str) -> Vec<&'a HistoryEvent> {
    history
        .iter()
        .filter(|e| e.kind == kind && e.state.as_deref() == Some(state))
        .collect()
}

pub fn transient(_: &Value, _: &TaskContext) -> Result<Value, TaskError> {
    Err(TaskError::new("Transient", "try again"))
}

pub fn retrier(max_delay: Option<u32>, jitter: JitterStrategy) -> Retrier {
    serde_json::from_value(json!({"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 10, "MaxDelaySeconds": max_delay, "JitterStrategy": jitter})).unwrap()
}

/// Polls the store until `f` holds for the execution.
pub async fn wait_for(
    store: &dyn ExecutionStore,
    name: &str,
    f: impl Fn(&ExecutionSnapshot) -> bool,
) -> ExecutionSnapshot {
    for _ in 0..500 {
        if let Some(s) = store.get(name).await.unwrap().filter(|s| f(s)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("execution {name} never reached the expected point");
}
