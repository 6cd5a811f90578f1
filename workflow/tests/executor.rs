//! The executor against the real saga definition (with scripted handlers) and against small
//! inline machines for the data-flow rules. Retry delays are scaled down with `delay_scale`,
//! so a test that waits through four backoffs still takes milliseconds.

use async_trait::async_trait;
use orders_workflow::asl::{JitterStrategy, Retrier, StateMachine};
use orders_workflow::executor::{
    ExecError, ExecutionSnapshot, ExecutionStatus, ExecutionStore, ExecutionStoreError, Executor,
    ExecutorOptions, HistoryEvent, HistoryEventKind as Kind, MemoryExecutionStore, StartOutcome,
    TaskContext, TaskError, TaskHandler, retry_delay,
};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STEPS: [&str; 10] = [
    "ReserveInventory",
    "ProcessPayment",
    "SendNotification",
    "IssueVoucher",
    "MarkCompleted",
    "BeginCompensation",
    "RefundPayment",
    "ReleaseInventory",
    "RestoreVoucher",
    "MarkFailed",
];
const COMPENSATION: [&str; 5] = [
    "BeginCompensation",
    "RefundPayment",
    "ReleaseInventory",
    "RestoreVoucher",
    "MarkFailed",
];

type Script = Arc<dyn Fn(&Value, &TaskContext) -> Result<Value, TaskError> + Send + Sync>;

/// One call a handler received.
#[derive(Debug, Clone)]
struct Call {
    execution: String,
    state: String,
    attempt: u32,
    input: Value,
}

/// A handler driven by a script; records every call, optionally sleeps or hangs first.
struct Scripted {
    script: Script,
    calls: Arc<Mutex<Vec<Call>>>,
    sleep: Duration,
    hang: Arc<AtomicBool>,
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

/// Handlers for every saga step: `{"done": step}` unless a script overrides the step.
#[derive(Default)]
struct Saga {
    scripts: HashMap<&'static str, Script>,
    calls: Arc<Mutex<Vec<Call>>>,
    sleep: Duration,
    hang: HashMap<&'static str, Arc<AtomicBool>>,
}

impl Saga {
    fn script(
        mut self,
        step: &'static str,
        f: impl Fn(&Value, &TaskContext) -> Result<Value, TaskError> + Send + Sync + 'static,
    ) -> Self {
        self.scripts.insert(step, Arc::new(f));
        self
    }

    fn handlers(&self) -> HashMap<String, Arc<dyn TaskHandler>> {
        STEPS
            .iter()
            .map(|step| {
                let script = self.scripts.get(step).cloned().unwrap_or_else(|| {
                    Arc::new(|_: &Value, c: &TaskContext| -> Result<Value, TaskError> {
                        Ok(json!({"done": c.state}))
                    })
                });
                let handler: Arc<dyn TaskHandler> = Arc::new(Scripted {
                    script,
                    calls: Arc::clone(&self.calls),
                    sleep: self.sleep,
                    hang: self.hang.get(step).cloned().unwrap_or_default(),
                });
                (format!("{step}FunctionArn"), handler)
            })
            .collect()
    }

    fn calls(&self, state: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.state == state)
            .cloned()
            .collect()
    }

    fn states_called(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.state.clone())
            .collect()
    }
}

fn fast() -> ExecutorOptions {
    ExecutorOptions {
        delay_scale: 0.001,
        ..ExecutorOptions::default()
    }
}

fn saga_executor(saga: &Saga, store: Arc<MemoryExecutionStore>) -> Arc<Executor> {
    Executor::new(
        StateMachine::saga().unwrap(),
        saga.handlers(),
        store,
        fast(),
    )
    .unwrap()
}

fn order(total_cents: u64) -> Value {
    json!({"orderId": "o-1", "customerId": "c-1", "items": [{"productId": "p", "quantity": 1}], "totalCents": total_cents, "paymentMethod": "pm_card_visa"})
}

async fn idle(executor: &Executor) {
    tokio::time::timeout(Duration::from_secs(5), executor.idle())
        .await
        .expect("executions did not finish");
}

/// Starts one execution, waits for it, returns its final snapshot and history.
async fn run_saga(saga: &Saga, input: Value) -> (ExecutionSnapshot, Vec<HistoryEvent>) {
    let store = Arc::new(MemoryExecutionStore::new());
    let executor = saga_executor(saga, Arc::clone(&store));
    assert_eq!(
        executor.start("exec-1", input).await.unwrap(),
        StartOutcome::Started
    );
    idle(&executor).await;
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

fn events<'a>(history: &'a [HistoryEvent], kind: Kind, state: &str) -> Vec<&'a HistoryEvent> {
    history
        .iter()
        .filter(|e| e.kind == kind && e.state.as_deref() == Some(state))
        .collect()
}

fn transient(_: &Value, _: &TaskContext) -> Result<Value, TaskError> {
    Err(TaskError::new("Transient", "try again"))
}

fn retrier(max_delay: Option<u32>, jitter: JitterStrategy) -> Retrier {
    serde_json::from_value(json!({"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 10, "MaxDelaySeconds": max_delay, "JitterStrategy": jitter})).unwrap()
}

#[test]
fn retry_delays_without_jitter_are_exact_and_capped() {
    let secs = |r: &Retrier| {
        (1..=7)
            .map(|n| retry_delay(r, n, 0.5).as_secs_f64())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        secs(&retrier(Some(8), JitterStrategy::None)),
        [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    );
    assert_eq!(
        secs(&retrier(Some(30), JitterStrategy::None)),
        [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    );
    assert_eq!(secs(&retrier(None, JitterStrategy::None))[6], 64.0);
    assert!(
        retry_delay(&retrier(None, JitterStrategy::None), 10_000, 0.5)
            <= Duration::from_secs(366 * 24 * 3600)
    );
}

#[test]
fn full_jitter_stays_within_zero_and_the_cap() {
    let r = retrier(Some(8), JitterStrategy::Full);
    for n in 1..=6u32 {
        let cap = Duration::from_secs(u64::from((1u32 << (n - 1)).min(8)));
        let samples: Vec<Duration> = (0..2_000)
            .map(|_| retry_delay(&r, n, fastrand::f64()))
            .collect();
        assert!(
            samples.iter().all(|d| *d <= cap),
            "retry {n} exceeded {cap:?}"
        );
        assert!(
            samples.iter().any(|d| *d != samples[0]),
            "retry {n}: no jitter"
        );
        assert!(samples.iter().any(|d| *d < cap / 2) && samples.iter().any(|d| *d > cap / 2));
    }
    assert_eq!(retry_delay(&r, 3, 0.0), Duration::ZERO);
    assert_eq!(retry_delay(&r, 3, 0.5), Duration::from_secs(2));
}

#[tokio::test]
async fn a_transient_failure_is_retried_then_succeeds() {
    let saga = Saga::default().script("ReserveInventory", |_, c| {
        if c.attempt < 3 {
            Err(TaskError::new("Transient", "db busy"))
        } else {
            Ok(json!({"reserved": true}))
        }
    });
    let (snapshot, history) = run_saga(&saga, order(5_000)).await;
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
    let attempts: Vec<u32> = saga
        .calls("ReserveInventory")
        .iter()
        .map(|c| c.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let failed: Vec<_> = events(&history, Kind::TaskFailed, "ReserveInventory")
        .iter()
        .map(|e| (e.attempt, e.error.clone()))
        .collect();
    assert_eq!(
        failed,
        [
            (Some(1), Some("Transient".into())),
            (Some(2), Some("Transient".into()))
        ]
    );
    let scheduled = events(&history, Kind::RetryScheduled, "ReserveInventory");
    assert_eq!(
        scheduled.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [Some(2), Some(3)]
    );
    assert!(scheduled[1].delay_ms.unwrap() <= 2, "2 s scaled by 0.001");
    assert_eq!(
        events(&history, Kind::TaskSucceeded, "ReserveInventory")[0].attempt,
        Some(3)
    );
    let output = snapshot.output.unwrap();
    assert_eq!(output["reservation"], json!({"reserved": true}));
    assert_eq!(output["completion"], json!({"done": "MarkCompleted"}));
    assert!(output.get("voucher").is_none());
}

#[tokio::test]
async fn exhausted_retries_are_caught_and_compensated() {
    let saga = Saga::default().script("ProcessPayment", transient);
    let (snapshot, history) = run_saga(&saga, order(5_000)).await;
    assert_eq!(
        saga.calls("ProcessPayment").len(),
        5,
        "1 attempt + MaxAttempts 4"
    );
    let delays: Vec<u64> = events(&history, Kind::RetryScheduled, "ProcessPayment")
        .iter()
        .map(|e| e.delay_ms.unwrap())
        .collect();
    assert_eq!(delays.len(), 4);
    assert!(
        delays.iter().zip([1, 2, 4, 8]).all(|(d, cap)| *d <= cap),
        "{delays:?} exceed 1,2,4,8 s scaled by 0.001"
    );
    assert_eq!(
        events(&history, Kind::CaughtError, "ProcessPayment").len(),
        1
    );
    assert_eq!(saga.states_called()[6..], COMPENSATION);
    let begin = &saga.calls("BeginCompensation")[0];
    assert_eq!(begin.input["step"], "BeginCompensation");
    assert_eq!(
        begin.input["input"]["error"],
        json!({"Error": "Transient", "Cause": "try again"})
    );
    assert_eq!(
        begin.input["input"]["reservation"],
        json!({"done": "ReserveInventory"})
    );
    assert!(saga.calls("MarkCompleted").is_empty());
    assert_eq!(snapshot.status, ExecutionStatus::Failed);
    assert_eq!(snapshot.state, "OrderFailed");
    assert_eq!(snapshot.error.as_deref(), Some("OrderFailed"));
    assert_eq!(
        snapshot.cause.as_deref(),
        Some("the order was compensated and marked FAILED")
    );
}

#[tokio::test]
async fn out_of_stock_is_not_retried_and_goes_to_compensation() {
    let saga = Saga::default().script("ReserveInventory", |_, _| {
        Err(TaskError::new("OutOfStock", "laptop: 0 left"))
    });
    let (snapshot, history) = run_saga(&saga, order(5_000)).await;
    assert_eq!(
        saga.calls("ReserveInventory")
            .iter()
            .map(|c| c.attempt)
            .collect::<Vec<_>>(),
        [1]
    );
    assert!(history.iter().all(|e| e.kind != Kind::RetryScheduled));
    let caught = events(&history, Kind::CaughtError, "ReserveInventory");
    assert_eq!(caught[0].error.as_deref(), Some("OutOfStock"));
    assert_eq!(
        saga.states_called(),
        [&["ReserveInventory"][..], &COMPENSATION].concat()
    );
    assert_eq!(
        saga.calls("BeginCompensation")[0].input["input"]["error"]["Error"],
        "OutOfStock"
    );
    assert_eq!(snapshot.status, ExecutionStatus::Failed);
}

#[tokio::test]
async fn a_failed_notification_does_not_fail_the_order() {
    let saga = Saga::default().script("SendNotification", |_, _| {
        Err(TaskError::new("SmtpDown", "no route"))
    });
    let (snapshot, _) = run_saga(&saga, order(5_000)).await;
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
    let output = snapshot.output.unwrap();
    assert_eq!(
        output["notificationError"],
        json!({"Error": "SmtpDown", "Cause": "no route"})
    );
    assert!(saga.calls("BeginCompensation").is_empty());
}

#[tokio::test]
async fn choice_routes_on_total_cents() {
    let saga = Saga::default();
    run_saga(&saga, order(10_000)).await;
    assert!(
        saga.calls("IssueVoucher").is_empty(),
        "10000 is not strictly over the threshold"
    );
    let (snapshot, _) = run_saga(&saga, order(10_001)).await;
    assert_eq!(saga.calls("IssueVoucher").len(), 1);
    assert_eq!(
        snapshot.output.unwrap()["voucher"],
        json!({"done": "IssueVoucher"})
    );
}

#[tokio::test]
async fn starting_a_name_twice_runs_it_once() {
    let saga = Saga::default();
    let store = Arc::new(MemoryExecutionStore::new());
    let executor = saga_executor(&saga, Arc::clone(&store));
    assert_eq!(
        executor.start("dup", order(1)).await.unwrap(),
        StartOutcome::Started
    );
    assert_eq!(
        executor.start("dup", order(2)).await.unwrap(),
        StartOutcome::AlreadyExists
    );
    idle(&executor).await;
    assert_eq!(
        executor.start("dup", order(3)).await.unwrap(),
        StartOutcome::AlreadyExists
    );
    idle(&executor).await;
    assert_eq!(saga.calls("ReserveInventory").len(), 1);
    assert_eq!(store.get("dup").await.unwrap().unwrap().input, order(1));
}

#[tokio::test]
async fn a_missing_handler_is_refused() {
    let mut handlers = Saga::default().handlers();
    handlers.remove("MarkFailedFunctionArn");
    let store = Arc::new(MemoryExecutionStore::new());
    let err = Executor::new(StateMachine::saga().unwrap(), handlers, store, fast()).unwrap_err();
    assert!(
        matches!(err, ExecError::MissingHandler(ref n) if n == "MarkFailedFunctionArn"),
        "{err}"
    );
}

/// Polls the store until `f` holds for the execution.
async fn wait_for(
    store: &MemoryExecutionStore,
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

#[tokio::test]
async fn a_restarted_executor_resumes_from_the_last_completed_state() {
    let mut first = Saga::default();
    first
        .hang
        .insert("ProcessPayment", Arc::new(AtomicBool::new(true)));
    let store = Arc::new(MemoryExecutionStore::new());
    let executor = saga_executor(&first, Arc::clone(&store));
    executor.start("crash", order(20_000)).await.unwrap();
    let mid = wait_for(&store, "crash", |s| s.state == "ProcessPayment").await;
    while first.calls("ProcessPayment").is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    executor.shutdown().await; // the "crash": the handler never returns
    drop(executor);
    assert_eq!(mid.status, ExecutionStatus::Running);
    assert_eq!(
        mid.state_input["reservation"],
        json!({"done": "ReserveInventory"})
    );
    assert_eq!(
        store.get("crash").await.unwrap().unwrap(),
        mid,
        "nothing recorded after the crash"
    );

    let second = Saga::default();
    let executor = saga_executor(&second, Arc::clone(&store));
    assert_eq!(executor.resume_unfinished().await.unwrap(), 1);
    idle(&executor).await;
    let done = store.get("crash").await.unwrap().unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert!(
        second.calls("ReserveInventory").is_empty(),
        "a completed state is not re-run"
    );
    assert_eq!(
        second.states_called()[..2],
        ["ProcessPayment", "SendNotification"]
    );
    assert_eq!(
        done.output.unwrap()["voucher"],
        json!({"done": "IssueVoucher"})
    );
    assert_eq!(executor.resume_unfinished().await.unwrap(), 0);
}

#[tokio::test]
async fn a_resumed_retry_waits_for_its_remaining_delay() {
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${T}", "End": true,
        "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 1}]}}});
    let machine =
        || StateMachine::load(&def.to_string(), &BTreeSet::from(["T".to_owned()])).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let handler = |script: Script| -> HashMap<String, Arc<dyn TaskHandler>> {
        let h = Scripted {
            script,
            calls: Arc::clone(&calls),
            sleep: Duration::ZERO,
            hang: Arc::default(),
        };
        HashMap::from([("T".to_owned(), Arc::new(h) as Arc<dyn TaskHandler>)])
    };
    let opts = ExecutorOptions {
        delay_scale: 0.3,
        ..ExecutorOptions::default()
    };
    let store = Arc::new(MemoryExecutionStore::new());
    let executor =
        Executor::new(machine(), handler(Arc::new(transient)), store.clone(), opts).unwrap();
    executor.start("later", json!({})).await.unwrap();
    let scheduled = wait_for(&store, "later", |s| s.next_attempt_at.is_some()).await;
    executor.shutdown().await;
    let due = scheduled.next_attempt_at.unwrap();

    let executor = Executor::new(
        machine(),
        handler(Arc::new(
            |_: &Value, _: &TaskContext| -> Result<Value, TaskError> { Ok(json!(1)) },
        )),
        store.clone(),
        opts,
    )
    .unwrap();
    executor.resume_unfinished().await.unwrap();
    idle(&executor).await;
    let done = store.get("later").await.unwrap().unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output, Some(json!(1)));
    let second = &store.history("later").await.unwrap();
    let succeeded = events(second, Kind::TaskSucceeded, "T");
    assert_eq!(succeeded[0].attempt, Some(2));
    assert!(
        succeeded[0].timestamp >= due,
        "the retry ran before it was due"
    );
    assert_eq!(calls.lock().unwrap().len(), 2);
}

/// A store whose `record` fails while `broken` is set.
struct FlakyStore {
    inner: MemoryExecutionStore,
    broken: AtomicBool,
}

#[async_trait]
impl ExecutionStore for FlakyStore {
    async fn create(
        &self,
        s: &ExecutionSnapshot,
        e: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError> {
        self.inner.create(s, e).await
    }
    async fn record(
        &self,
        s: &ExecutionSnapshot,
        e: &[HistoryEvent],
    ) -> Result<(), ExecutionStoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(ExecutionStoreError::new("disk full"));
        }
        self.inner.record(s, e).await
    }
    async fn unfinished(&self) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError> {
        self.inner.unfinished().await
    }
    async fn get(&self, name: &str) -> Result<Option<ExecutionSnapshot>, ExecutionStoreError> {
        self.inner.get(name).await
    }
    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, ExecutionStoreError> {
        self.inner.history(name).await
    }
}

#[tokio::test]
async fn a_store_failure_stops_the_execution_without_finishing_it() {
    let saga = Saga::default();
    let store = Arc::new(FlakyStore {
        inner: MemoryExecutionStore::new(),
        broken: AtomicBool::new(true),
    });
    let executor = Executor::new(
        StateMachine::saga().unwrap(),
        saga.handlers(),
        store.clone(),
        fast(),
    )
    .unwrap();
    executor.start("flaky", order(1)).await.unwrap();
    idle(&executor).await;
    let stuck = store.get("flaky").await.unwrap().unwrap();
    assert_eq!(
        (stuck.status, stuck.state.as_str()),
        (ExecutionStatus::Running, "ReserveInventory")
    );
    assert_eq!(saga.calls("ReserveInventory").len(), 1);

    store.broken.store(false, Ordering::SeqCst);
    assert_eq!(executor.resume_unfinished().await.unwrap(), 1);
    idle(&executor).await;
    assert_eq!(
        store.get("flaky").await.unwrap().unwrap().status,
        ExecutionStatus::Succeeded
    );
    assert_eq!(
        saga.calls("ReserveInventory").len(),
        2,
        "the unrecorded task ran again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_executions_sleep_and_retry_concurrently() {
    let mut saga = Saga::default().script("ReserveInventory", |_, c| {
        if c.attempt == 1 {
            Err(TaskError::new("Transient", "warming up"))
        } else {
            Ok(json!(true))
        }
    });
    saga.sleep = Duration::from_millis(50);
    let store = Arc::new(MemoryExecutionStore::new());
    let opts = ExecutorOptions {
        delay_scale: 0.1,
        ..ExecutorOptions::default()
    };
    let executor = Executor::new(
        StateMachine::saga().unwrap(),
        saga.handlers(),
        store.clone(),
        opts,
    )
    .unwrap();
    let started = Instant::now();
    for i in 0..200 {
        executor
            .start(&format!("bulk-{i}"), order(20_000))
            .await
            .unwrap();
    }
    idle(&executor).await;
    // Each saga alone needs 6 handler calls of 50 ms plus a retry of up to 100 ms: ~0.4 s.
    // Run one after the other, 200 of them would take over a minute.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let all = store.all();
    assert_eq!(all.len(), 200);
    assert!(all.iter().all(|s| s.status == ExecutionStatus::Succeeded));
    let calls = saga.calls.lock().unwrap();
    assert_eq!(calls.len(), 200 * 6);
    assert!(
        calls
            .iter()
            .filter(|c| c.state == "IssueVoucher")
            .all(|c| c.execution.starts_with("bulk-"))
    );
}

/// Runs a one-Task machine whose handler returns `result` and records its input.
async fn one_task(task: Value, input: Value, result: Value) -> (ExecutionSnapshot, Vec<Call>) {
    let mut state = json!({"Type": "Task", "Resource": "${Echo}", "End": true});
    state
        .as_object_mut()
        .unwrap()
        .extend(task.as_object().unwrap().clone());
    let def = json!({"StartAt": "Only", "States": {"Only": state}});
    let machine =
        StateMachine::load(&def.to_string(), &BTreeSet::from(["Echo".to_owned()])).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let script: Script = Arc::new(move |_: &Value, c: &TaskContext| {
        if c.attempt == 1 && result == "fail-once" {
            transient(&json!(0), c)
        } else {
            Ok(result.clone())
        }
    });
    let handler = Scripted {
        script,
        calls: Arc::clone(&calls),
        sleep: Duration::ZERO,
        hang: Arc::default(),
    };
    let handlers = HashMap::from([("Echo".to_owned(), Arc::new(handler) as Arc<dyn TaskHandler>)]);
    let store = Arc::new(MemoryExecutionStore::new());
    let executor = Executor::new(machine, handlers, store.clone(), fast()).unwrap();
    executor.start("flow", input).await.unwrap();
    idle(&executor).await;
    let calls = calls.lock().unwrap().clone();
    (store.get("flow").await.unwrap().unwrap(), calls)
}

#[tokio::test]
async fn result_path_merges_replaces_or_discards() {
    let input = json!({"a": 1, "x": {"keep": true}});
    let result = json!({"r": 2});
    let cases = [
        (
            json!({"ResultPath": "$.x.y"}),
            json!({"a": 1, "x": {"keep": true, "y": {"r": 2}}}),
        ),
        (
            json!({"ResultPath": "$.new.deep"}),
            json!({"a": 1, "x": {"keep": true}, "new": {"deep": {"r": 2}}}),
        ),
        (json!({"ResultPath": "$"}), json!({"r": 2})),
        (json!({}), json!({"r": 2})),
        (json!({"ResultPath": null}), input.clone()),
    ];
    for (task, expected) in cases {
        let (snapshot, _) = one_task(task.clone(), input.clone(), result.clone()).await;
        assert_eq!(snapshot.output, Some(expected), "{task}");
    }
}

#[tokio::test]
async fn input_parameters_selector_and_output_paths_apply_in_order() {
    let task = json!({
        "InputPath": "$.order",
        "Parameters": {"id.$": "$.id", "fixed": "k", "nested": {"first.$": "$.items[0]"}, "list": [{"v.$": "$.id"}],
                       "exec.$": "$$.Execution.Name", "retries.$": "$$.State.RetryCount"},
        "ResultSelector": {"charged.$": "$.amount", "static": 1},
        "ResultPath": "$.payment",
        "OutputPath": "$.payment",
        "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1}]
    });
    let input = json!({"order": {"id": "o-9", "items": ["p1", "p2"]}, "other": true});
    let result = json!({"amount": 42, "noise": "dropped"});
    let (snapshot, calls) = one_task(task, input, result).await;
    assert_eq!(
        calls[0].input,
        json!({"id": "o-9", "fixed": "k", "nested": {"first": "p1"}, "list": [{"v": "o-9"}], "exec": "flow", "retries": 0})
    );
    assert_eq!(snapshot.output, Some(json!({"charged": 42, "static": 1})));
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn the_context_retry_count_follows_the_attempts() {
    let task = json!({"Parameters": {"retries.$": "$$.State.RetryCount", "name.$": "$$.State.Name"}, "Retry": [{"ErrorEquals": ["Transient"]}]});
    let (snapshot, calls) = one_task(task, json!({}), json!("fail-once")).await;
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
    let seen: Vec<Value> = calls.iter().map(|c| c.input.clone()).collect();
    assert_eq!(
        seen,
        [
            json!({"retries": 0, "name": "Only"}),
            json!({"retries": 1, "name": "Only"})
        ]
    );
}

#[tokio::test]
async fn a_path_that_does_not_match_is_a_runtime_error_not_caught() {
    let catch_all = json!([{"ErrorEquals": ["States.ALL"], "Next": "Only"}]);
    let (snapshot, calls) = one_task(
        json!({"InputPath": "$.missing", "Catch": catch_all}),
        json!({"a": 1}),
        json!(0),
    )
    .await;
    assert!(calls.is_empty(), "the handler must not run");
    assert_eq!(
        (snapshot.status, snapshot.error.as_deref()),
        (ExecutionStatus::Failed, Some("States.Runtime"))
    );
    assert!(snapshot.cause.unwrap().contains("$.missing"));

    let (snapshot, calls) =
        one_task(json!({"ResultPath": "$.a.b"}), json!({"a": 1}), json!(0)).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(snapshot.error.as_deref(), Some("States.Runtime"));

    let (snapshot, _) = one_task(json!({"OutputPath": "$.nope"}), json!({}), json!({"r": 1})).await;
    assert_eq!(snapshot.error.as_deref(), Some("States.Runtime"));
}
