//! Durability of the executor: resuming after a crash from the last recorded state, a resumed
//! retry waiting out its delay, a store failure leaving the execution RUNNING, and many
//! executions sleeping and retrying concurrently without blocking each other.

use super::helpers::*;

#[tokio::test]
async fn a_restarted_executor_resumes_from_the_last_completed_state() {
    let mut first = Saga::default();
    first
        .hang
        .insert("RequestPayment", Arc::new(AtomicBool::new(true)));
    let (store, _dir) = temp_store();
    let executor = saga_executor(&first, Arc::clone(&store));
    executor.start("crash", order(20_000)).await.unwrap();
    wait_for(store.as_ref(), "crash", |s| s.state == "RequestPayment").await;
    while first.calls("RequestPayment").is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Read once the handler runs: entering the state and recording its task token are two
    // writes, and which one a poll sees first is a matter of timing.
    let mid = store.get("crash").await.unwrap().unwrap();
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
    finished(&executor, store.as_ref(), "crash").await;
    let done = store.get("crash").await.unwrap().unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert!(
        second.calls("ReserveInventory").is_empty(),
        "a completed state is not re-run"
    );
    assert_eq!(
        second.states_called()[..2],
        ["RequestPayment", "SendNotification"]
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
    let (store, _dir) = temp_store();
    let executor =
        Executor::new(machine(), handler(Arc::new(transient)), store.clone(), opts).unwrap();
    executor.start("later", json!({})).await.unwrap();
    let scheduled = wait_for(store.as_ref(), "later", |s| s.next_attempt_at.is_some()).await;
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

#[tokio::test]
async fn a_store_failure_stops_the_execution_without_finishing_it() {
    let saga = Saga::default();
    let store = Arc::new(ObservedStore::new());
    store.broken.store(true, Ordering::SeqCst);
    let executor = saga_executor(&saga, store.clone());
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
    finished(&executor, store.as_ref(), "flaky").await;
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
    let (store, _dir) = temp_store();
    let opts = ExecutorOptions {
        delay_scale: 0.1,
        ..ExecutorOptions::default()
    };
    let executor = saga_executor_with(&saga, store.clone(), opts);
    let started = Instant::now();
    for i in 0..200 {
        executor
            .start(&format!("bulk-{i}"), order(20_000))
            .await
            .unwrap();
    }
    for i in 0..200 {
        finished(&executor, store.as_ref(), &format!("bulk-{i}")).await;
    }
    // Each saga alone needs 7 handler calls of 50 ms plus a retry of up to 100 ms: ~0.45 s.
    // Run one after the other, 200 of them would take over a minute.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    for i in 0..200 {
        let s = store
            .get(&format!("bulk-{i}"))
            .await
            .unwrap()
            .expect("started");
        assert_eq!(s.status, ExecutionStatus::Succeeded, "bulk-{i}");
    }
    let calls = saga.calls.lock().unwrap();
    // ReserveInventory twice, RequestPayment, SendNotification, the shipment request on the
    // queue, MarkShipped, IssueVoucher, MarkCompleted.
    assert_eq!(calls.len(), 200 * 8);
    assert!(
        calls
            .iter()
            .filter(|c| c.state == "IssueVoucher")
            .all(|c| c.execution.starts_with("bulk-"))
    );
}
