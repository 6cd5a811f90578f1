//! Failing a wait by execution name (`fail_waiting`, what a cancellation uses): it fails the
//! open wait as SendTaskFailure with its token would, through Retry and Catch; it finds the
//! wait from the moment it is recorded, while the handler still holds the token; it leaves an
//! execution that waits in nothing alone and says so; and against a concurrent answer to the
//! same wait exactly one of the two wins.

use super::*;
use orders_workflow::executor::WaitFailed;
use tokio::sync::Semaphore;

const CANCELLED: &str = "OrderCancelled";

/// `W` catching `OrderCancelled` into `Caught`.
fn cancellable(extra: Value) -> Value {
    let mut task = lambda_task(json!({
        "Catch": [{"ErrorEquals": [CANCELLED], "ResultPath": "$.error", "Next": "Caught"}]
    }));
    merge(&mut task, extra);
    task
}

/// A handler that reports each call, then holds it until the test adds a permit.
struct Gate {
    sent: mpsc::UnboundedSender<Received>,
    open: Arc<Semaphore>,
}

#[async_trait]
impl TaskHandler for Gate {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let _ = self.sent.send(Received {
            execution: ctx.execution.clone(),
            token: input["token"].as_str().unwrap_or_default().to_owned(),
            body: input.clone(),
        });
        self.open.acquire().await.expect("never closed").forget();
        Ok(json!("done"))
    }
}

/// An executor of `task` whose `step` handler (`Notify` or `Plain`) is a [`Gate`].
fn gated(
    store: &Arc<SqliteStore>,
    task: Value,
    step: &str,
) -> (
    Arc<Executor>,
    mpsc::UnboundedReceiver<Received>,
    Arc<Semaphore>,
) {
    let (mut all, received) = handlers(Mode::Return);
    let (sent, gated) = mpsc::unbounded_channel();
    let open = Arc::new(Semaphore::new(0));
    let gate: Arc<dyn TaskHandler> = Arc::new(Gate {
        sent,
        open: open.clone(),
    });
    all.insert(step.to_owned(), gate);
    let executor = Executor::new(machine(task), all, store.clone(), opts(1.0)).unwrap();
    // The ungated handler's channel is unused; the gate's is the one the test reads.
    drop(received);
    (executor, gated, open)
}

#[tokio::test]
async fn a_waiting_execution_is_failed_through_catch() {
    let (store, _dir) = temp_store();
    let (executor, mut received) =
        executor_on(&store, cancellable(json!({})), opts(1.0), Mode::Return);
    executor.start("c1", input("o-1")).await.unwrap();
    let got = next(&mut received).await;
    until("it is parked", || executor.waiting() == 1).await;

    let failed = executor
        .fail_waiting("c1", CANCELLED, "changed my mind")
        .await
        .unwrap();
    assert_eq!(failed, WaitFailed::Failed);
    let done = finished(&store, "c1").await;
    assert_eq!(
        (done.status, done.state.as_str()),
        (ExecutionStatus::Succeeded, "Caught")
    );
    assert_eq!(
        done.output.unwrap()["error"],
        json!({"Error": CANCELLED, "Cause": "changed my mind"})
    );
    let history = store.history("c1").await.unwrap();
    assert_eq!(
        events(&history, Kind::TaskFailed, "W")[0].error.as_deref(),
        Some(CANCELLED)
    );
    assert_eq!(events(&history, Kind::CaughtError, "W").len(), 1);
    assert_eq!(executor.waiting(), 0);
    let late = executor.send_task_success(&got.token, json!(1)).await;
    assert!(
        matches!(late, Err(TaskTokenError::TaskTimedOut)),
        "{late:?}"
    );
}

#[tokio::test]
async fn retry_applies_and_the_retried_wait_is_found_again() {
    let (store, _dir) = temp_store();
    let task = cancellable(json!({
        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    }));
    let (executor, mut received) = executor_on(&store, task, opts(1.0), Mode::Return);
    executor.start("c2", input("o-2")).await.unwrap();
    let first = next(&mut received).await;
    until("it is parked", || executor.waiting() == 1).await;
    let failed = executor.fail_waiting("c2", "Flaky", "once").await.unwrap();
    assert_eq!(failed, WaitFailed::Failed);

    let second = next(&mut received).await;
    assert_ne!(second.token, first.token, "a retry opens a new wait");
    until("it is parked again", || executor.waiting() == 1).await;
    let failed = executor.fail_waiting("c2", "Flaky", "twice").await.unwrap();
    assert_eq!(failed, WaitFailed::Failed);
    let done = finished(&store, "c2").await;
    assert_eq!(
        (done.status, done.error.as_deref()),
        (ExecutionStatus::Failed, Some("Flaky")),
        "retries exhausted and no Catch matches"
    );
}

#[tokio::test]
async fn a_wait_whose_handler_still_runs_is_failed_first() {
    let (store, _dir) = temp_store();
    let (executor, mut received, open) = gated(&store, cancellable(json!({})), "Notify");
    executor.start("c3", input("o-3")).await.unwrap();
    let got = next(&mut received).await;
    let stored = store.get("c3").await.unwrap().unwrap();
    let waiting = stored
        .waiting
        .expect("the wait is recorded before the handler runs");
    assert!(!waiting.submitted, "the handler has not returned");
    assert_eq!(waiting.token, got.token);

    let failed = executor.fail_waiting("c3", CANCELLED, "").await.unwrap();
    assert_eq!(failed, WaitFailed::Failed);
    open.add_permits(1);
    let done = finished(&store, "c3").await;
    assert_eq!(done.state, "Caught");
    idle(&executor).await;
    let history = store.history("c3").await.unwrap();
    assert!(
        events(&history, Kind::TaskSubmitted, "W").is_empty(),
        "the failure closed the wait before the submission was recorded"
    );
    assert_eq!(events(&history, Kind::TaskFailed, "W").len(), 1);
    assert!(events(&history, Kind::TaskSucceeded, "W").is_empty());
}

#[tokio::test]
async fn an_execution_waiting_in_nothing_is_left_alone() {
    let (store, _dir) = temp_store();
    let (executor, mut received, open) = gated(&store, cancellable(json!({})), "Plain");
    assert_eq!(
        executor
            .fail_waiting("nobody", CANCELLED, "")
            .await
            .unwrap(),
        WaitFailed::Unknown
    );

    executor.start("busy", json!({"plain": 1})).await.unwrap();
    next(&mut received).await;
    let before = store.history("busy").await.unwrap();
    assert_eq!(
        executor.fail_waiting("busy", CANCELLED, "").await.unwrap(),
        WaitFailed::NotWaiting,
        "a plain handler runs: no wait to fail"
    );
    assert_eq!(store.history("busy").await.unwrap(), before, "no effect");
    open.add_permits(1);
    let done = finished(&store, "busy").await;
    assert_eq!(
        (done.status, done.state.as_str()),
        (ExecutionStatus::Succeeded, "Done")
    );
    idle(&executor).await;
    let history = store.history("busy").await.unwrap();
    assert_eq!(
        executor.fail_waiting("busy", CANCELLED, "").await.unwrap(),
        WaitFailed::Finished
    );
    assert_eq!(store.history("busy").await.unwrap(), history, "no effect");

    executor.shutdown().await;
    let refused = executor.fail_waiting("busy", CANCELLED, "").await;
    assert!(
        matches!(refused, Err(TaskTokenError::ShuttingDown)),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_answer_and_failure_have_one_winner() {
    const RUNS: usize = 24;
    let (store, _dir) = temp_store();
    let (executor, mut received) =
        executor_on(&store, cancellable(json!({})), opts(1.0), Mode::Return);
    let mut tokens = HashMap::new();
    for i in 0..RUNS {
        executor
            .start(&format!("race-{i}"), input("o"))
            .await
            .unwrap();
    }
    for _ in 0..RUNS {
        let got = next(&mut received).await;
        tokens.insert(got.execution, got.token);
    }
    until("all are parked", || executor.waiting() == RUNS).await;

    let races = tokens.into_iter().map(|(name, token)| {
        let executor = executor.clone();
        tokio::spawn(async move {
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let answer = {
                let (executor, barrier, token) = (executor.clone(), barrier.clone(), token);
                tokio::spawn(async move {
                    barrier.wait().await;
                    executor.send_task_success(&token, json!("paid")).await
                })
            };
            barrier.wait().await;
            let failed = executor.fail_waiting(&name, CANCELLED, "").await;
            (name, answer.await.unwrap(), failed.unwrap())
        })
    });
    let (mut answered, mut cancelled) = (0, 0);
    for race in races.collect::<Vec<_>>() {
        let (name, answer, failed) = race.await.unwrap();
        let done = finished(&store, &name).await;
        let history = store.history(&name).await.unwrap();
        let closes = events(&history, Kind::TaskSucceeded, "W").len()
            + events(&history, Kind::TaskFailed, "W").len();
        assert_eq!(closes, 1, "{name}: the wait closed once");
        match (answer, failed) {
            (Ok(()), WaitFailed::NotWaiting | WaitFailed::Finished) => {
                assert_eq!(done.state, "Done", "{name}");
                answered += 1;
            }
            (Err(TaskTokenError::TaskTimedOut), WaitFailed::Failed) => {
                assert_eq!(done.state, "Caught", "{name}");
                cancelled += 1;
            }
            other => panic!("{name}: not exactly one winner: {other:?}"),
        }
    }
    assert_eq!(answered + cancelled, RUNS);
    idle(&executor).await;
}
