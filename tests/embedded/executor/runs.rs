//! The executor against the real saga definition with scripted handlers: retry delays and
//! jitter bounds, Retry then success, Catch routing into compensation, the Choice on the
//! order total, and idempotent starts. Retry delays are scaled down with `delay_scale`, so a
//! test that waits through four backoffs still takes milliseconds.

use super::helpers::*;

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
    let saga = Saga::default().script("RequestPayment", transient);
    let (snapshot, history) = run_saga(&saga, order(5_000)).await;
    assert_eq!(
        saga.calls("RequestPayment").len(),
        5,
        "1 attempt + MaxAttempts 4"
    );
    let delays: Vec<u64> = events(&history, Kind::RetryScheduled, "RequestPayment")
        .iter()
        .map(|e| e.delay_ms.unwrap())
        .collect();
    assert_eq!(delays.len(), 4);
    assert!(
        delays.iter().zip([1, 2, 4, 8]).all(|(d, cap)| *d <= cap),
        "{delays:?} exceed 1,2,4,8 s scaled by 0.001"
    );
    assert_eq!(
        events(&history, Kind::CaughtError, "RequestPayment").len(),
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
    // A compensated order is a business outcome: the execution succeeds (the order is FAILED).
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
    assert_eq!(snapshot.state, "Compensated");
    assert_eq!((snapshot.error, snapshot.cause), (None, None));
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
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
    assert_eq!(snapshot.state, "Compensated");
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
    let (store, _dir) = temp_store();
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
    let saga = Saga::default();
    let mut handlers = saga.handlers();
    handlers.remove("MarkFailedFunctionArn");
    let (store, _dir) = temp_store();
    let machine = StateMachine::saga().unwrap();
    let err = Executor::with_queue(machine, handlers, store, saga.queue(), fast()).unwrap_err();
    assert!(
        matches!(err, ExecError::MissingHandler(ref n) if n == "MarkFailedFunctionArn"),
        "{err}"
    );
}

#[tokio::test]
async fn states_without_effects_are_recorded_with_the_task_before_them() {
    let saga = Saga::default();
    let store = Arc::new(ObservedStore::new());
    let executor = saga_executor(&saga, store.clone());
    executor.start("e", order(10_001)).await.unwrap();
    finished(&executor, store.as_ref(), "e").await;
    let records = store.records.lock().unwrap().clone();
    let history = store.history("e").await.unwrap();
    // Records are written in history order, after the two events `create` writes (the start
    // and the first state's entry): which record each later event was written in.
    let record_of: Vec<usize> = records
        .iter()
        .enumerate()
        .flat_map(|(i, r)| std::iter::repeat_n(i, r.len()))
        .collect();
    let created = history.len() - record_of.len();
    assert_eq!(created, 2);
    let written_with = |kind: Kind, state: &str| -> usize {
        let i = history[created..]
            .iter()
            .position(|e| e.kind == kind && e.state.as_deref() == Some(state))
            .unwrap_or_else(|| panic!("no {kind:?} of {state}"));
        record_of[i]
    };
    use Kind::*;
    // The Choice runs with MarkShipped's exit; the Succeed state with MarkCompleted's.
    let shipped = written_with(TaskSucceeded, "MarkShipped");
    assert_eq!(written_with(StateEntered, "VoucherEligible"), shipped);
    assert_eq!(written_with(StateExited, "VoucherEligible"), shipped);
    assert_eq!(written_with(StateEntered, "IssueVoucher"), shipped);
    let completed = written_with(TaskSucceeded, "MarkCompleted");
    assert_eq!(written_with(StateExited, "Completed"), completed);
    assert_eq!(completed, records.len() - 1);
    assert_eq!(*records[completed].last().unwrap(), ExecutionSucceeded);
    // One record per Task's end, and two more per callback Task: its wait opened, then its
    // request submitted (the answer then ends the Task in a record of its own).
    for callback in ["RequestPayment", "PrepareShipment"] {
        let opened = written_with(TaskScheduled, callback);
        assert_eq!(records[opened], [TaskScheduled], "{callback}");
        assert_eq!(records[opened + 1], [TaskSubmitted], "{callback}");
        assert_eq!(
            written_with(TaskSucceeded, callback),
            opened + 2,
            "{callback}"
        );
    }
    let tasks = [
        "ReserveInventory",
        "RequestPayment",
        "SendNotification",
        "PrepareShipment",
        "MarkShipped",
        "IssueVoucher",
        "MarkCompleted",
    ];
    assert_eq!(records.len(), tasks.len() + 2 * 2, "{records:?}");
    let history = store.history("e").await.unwrap();
    assert_eq!(events(&history, StateEntered, "VoucherEligible").len(), 1);
    assert_eq!(events(&history, StateExited, "Completed").len(), 1);
    assert_eq!(
        store.get("e").await.unwrap().unwrap().status,
        ExecutionStatus::Succeeded
    );
}
