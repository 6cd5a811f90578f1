//! Tasks whose handler writes the transition itself (`TaskHandler::invoke_and_record`): the
//! history is the one the runner would have written, the runner writes no second record, and
//! a transition the store refuses (another writer moved the execution on) is not an error:
//! the runner carries on from what the store holds.

use super::helpers::*;
use orders_sqlite::StepInOneJob;
use orders_test_support::stack::Stack;
use orders_workflow::executor::{Finish, Finished};
use orders_workflow::steps::{Step, StepSettings};

/// The saga's Tasks that call a handler and wait for nothing.
const PLAIN: [&str; 5] = [
    "ReserveInventory",
    "SendNotification",
    "MarkShipped",
    "IssueVoucher",
    "MarkCompleted",
];

/// Runs `inner`, then writes the transition its result leads to straight into `store` (not
/// through the executor's observed store). With `steal`, another writer first records that
/// the Task failed `Stolen`, so the handler's own transition no longer continues the history.
struct SelfRecording {
    inner: Arc<dyn TaskHandler>,
    store: Arc<SqliteStore>,
    steal: bool,
}

#[async_trait]
impl TaskHandler for SelfRecording {
    async fn invoke(&self, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
        unreachable!("the executor offers the transition to every Task that calls a handler")
    }

    async fn invoke_and_record(
        &self,
        input: Value,
        ctx: &TaskContext,
        finish: &Finish,
    ) -> Finished {
        let result = self.inner.invoke(input, ctx).await;
        if self.steal {
            let won = finish.record(Err(TaskError::new("Stolen", "another writer")));
            self.store.record(&won.snapshot, &won.events).await.unwrap();
        }
        let record = finish.record(result);
        match self.store.record(&record.snapshot, &record.events).await {
            Ok(()) => Finished::Recorded(Box::new(record.snapshot)),
            Err(_) => Finished::Refused,
        }
    }
}

/// Runs one execution of `saga` with `wrap` applied to its plain Tasks' handlers, over an
/// observed store: the final snapshot, the history, and the records the runner wrote.
async fn run(
    saga: &Saga,
    wrap: impl Fn(&str, Arc<dyn TaskHandler>, &Arc<SqliteStore>) -> Arc<dyn TaskHandler>,
) -> (
    ExecutionSnapshot,
    Vec<(Kind, Option<String>)>,
    Vec<Vec<Kind>>,
) {
    let store = Arc::new(ObservedStore::new());
    let mut handlers = saga.handlers();
    for step in PLAIN {
        let key = format!("{step}FunctionArn");
        let handler = handlers.remove(&key).unwrap();
        handlers.insert(key, wrap(step, handler, &store.inner));
    }
    let executor = Executor::with_queue(
        StateMachine::saga().unwrap(),
        handlers,
        store.clone(),
        saga.queue(),
        fast(),
    )
    .unwrap();
    *saga.executor.lock().unwrap() = Arc::downgrade(&executor);
    executor.start("e", order(10_001)).await.unwrap();
    finished(&executor, store.as_ref(), "e").await;
    let history = store.history("e").await.unwrap();
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=history.len() as u64).collect::<Vec<_>>());
    let kinds = history.into_iter().map(|e| (e.kind, e.state)).collect();
    let records = store.records.lock().unwrap().clone();
    (store.get("e").await.unwrap().unwrap(), kinds, records)
}

fn plain(_: &str, handler: Arc<dyn TaskHandler>, _: &Arc<SqliteStore>) -> Arc<dyn TaskHandler> {
    handler
}

#[tokio::test]
async fn a_handler_that_records_its_transition_leaves_the_same_history_in_fewer_records() {
    let (by_runner, runner_history, runner_records) = run(&Saga::default(), plain).await;
    let (by_handler, handler_history, handler_records) =
        run(&Saga::default(), |_, inner, store| {
            Arc::new(SelfRecording {
                inner,
                store: store.clone(),
                steal: false,
            })
        })
        .await;
    assert_eq!(by_handler.status, ExecutionStatus::Succeeded);
    assert_eq!(by_handler.output, by_runner.output);
    assert_eq!(handler_history, runner_history);
    // The runner still records the callback Tasks (wait opened, submitted, answered).
    assert_eq!(
        handler_records.len(),
        runner_records.len() - PLAIN.len(),
        "{handler_records:?}"
    );
    let ended_by_runner = handler_records
        .iter()
        .filter(|r| r.contains(&Kind::TaskSucceeded))
        .count();
    assert_eq!(ended_by_runner, 2, "{handler_records:?}");
}

#[tokio::test]
async fn a_transition_the_store_refuses_is_not_an_error_the_runner_carries_on_from_the_winner() {
    let stolen = |s: &str, inner: Arc<dyn TaskHandler>, store: &Arc<SqliteStore>| {
        Arc::new(SelfRecording {
            inner,
            store: store.clone(),
            steal: s == "ReserveInventory",
        }) as Arc<dyn TaskHandler>
    };
    let (after_loss, history, _) = run(&Saga::default(), stolen).await;
    // What the same failure gives when the handler itself returns it.
    let failing = Saga::default().script("ReserveInventory", |_, _| {
        Err(TaskError::new("Stolen", "another writer"))
    });
    let (expected, expected_history, _) = run(&failing, plain).await;
    assert_eq!(
        (after_loss.status, &after_loss.state),
        (expected.status, &expected.state)
    );
    assert_eq!(history, expected_history);
    let reserved = (Kind::TaskSucceeded, Some("ReserveInventory".to_owned()));
    assert!(!history.contains(&reserved), "{history:?}");
}

/// The real steps on SQLite: every Task that calls a step is ended in the step's own job.
#[tokio::test]
async fn each_step_writes_its_transition_in_its_own_job() {
    let s = Stack::without_relay().await;
    let event = s.declined_order_event("cust-r1").await;
    let mut handlers = Step::handlers(Arc::new(StepInOneJob {
        store: s.store.clone(),
        settings: StepSettings::default(),
    }));
    // Declined at once, as its webhook would: the compensation steps run.
    let declines: Script = Arc::new(|_, _| Err(TaskError::new("PaymentDeclined", "declined")));
    handlers.insert(
        Step::RequestPayment.substitution(),
        Arc::new(Scripted {
            script: declines,
            calls: Arc::default(),
            sleep: Duration::ZERO,
            hang: Arc::default(),
        }),
    );
    let store = Arc::new(ObservedStore::over(s.store.clone()));
    let executor = Executor::with_queue(
        StateMachine::saga().unwrap(),
        handlers,
        store.clone(),
        s.store.clone(),
        fast(),
    )
    .unwrap();
    let name = event.id.to_string();
    let input = serde_json::to_value(&event.data).unwrap();
    executor.start(&name, input).await.unwrap();
    finished(&executor, store.as_ref(), &name).await;

    let snapshot = store.get(&name).await.unwrap().unwrap();
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded, "{snapshot:?}");
    let history = store.history(&name).await.unwrap();
    let ended: Vec<&str> = history
        .iter()
        .filter(|e| e.kind == Kind::TaskSucceeded)
        .filter_map(|e| e.state.as_deref())
        .collect();
    assert_eq!(
        ended,
        [
            "ReserveInventory",
            "BeginCompensation",
            "RefundPayment",
            "ReleaseInventory",
            "RestoreVoucher",
            "MarkFailed"
        ]
    );
    // The runner wrote RequestPayment's wait and its failure; every step ended in its job.
    let records = store.records.lock().unwrap().clone();
    assert!(
        records.iter().all(|r| !r.contains(&Kind::TaskSucceeded)),
        "{records:?}"
    );
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(s.stock("gizmo").await, 10, "the reservation was released");
}

/// The SQLite queue: an sqs callback Task's wait, its message and the mark that it was
/// submitted are one write, and the runner writes none of them.
#[tokio::test]
async fn the_queue_writes_the_wait_with_its_message() {
    let (queue, _dir) = temp_store();
    let saga = Saga::default();
    let store = Arc::new(ObservedStore::over(queue.clone()));
    let executor = Executor::with_queue(
        StateMachine::saga().unwrap(),
        saga.handlers(),
        store.clone(),
        queue.clone(),
        fast(),
    )
    .unwrap();
    *saga.executor.lock().unwrap() = Arc::downgrade(&executor);
    executor.start("e", order(10_001)).await.unwrap();
    let parked = wait_for(store.as_ref(), "e", |s| s.state == SHIPMENT).await;
    let waiting = parked
        .waiting
        .clone()
        .expect("PrepareShipment waits for its token");
    assert!(waiting.submitted, "{parked:?}");
    let history = store.history("e").await.unwrap();
    let scheduled = events(&history, Kind::TaskScheduled, SHIPMENT);
    let submitted = events(&history, Kind::TaskSubmitted, SHIPMENT);
    assert_eq!((scheduled.len(), submitted.len()), (1, 1), "{history:?}");
    assert_eq!(
        scheduled[0].task_token.as_deref(),
        Some(waiting.token.as_str())
    );
    // The runner recorded RequestPayment's wait and its submission, and nothing of this one.
    let records = store.records.lock().unwrap().clone();
    let waits = records.iter().filter(|r| r.contains(&Kind::TaskScheduled));
    assert_eq!(waits.count(), 1, "{records:?}");

    let messages = queue
        .receive(
            "WarehouseQueueUrl",
            10,
            Duration::from_secs(30),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body["taskToken"], waiting.token.as_str());
    executor
        .send_task_success(
            &waiting.token,
            json!({"trackingNumber": "TRK-1", "shippedAt": "2026-12-01T00:00:00.000Z"}),
        )
        .await
        .unwrap();
    finished(&executor, store.as_ref(), "e").await;
    let done = store.get("e").await.unwrap().unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
}
