//! Waits survive a restart (the token still works, the deadline keeps its original time, an
//! unsubmitted wait is submitted again with its token), and a waiting execution holds no
//! runner and no permit, so very many can wait at once.

use super::*;

#[tokio::test]
async fn a_wait_survives_a_restart_with_its_token_and_its_deadline() {
    // TimeoutSeconds 100 scaled to 1 s; the deadline must not restart with the executor.
    let task = lambda_task(json!({"TimeoutSeconds": 100}));
    let (store, _dir) = temp_store();
    let (first, mut received) = executor_on(&store, task.clone(), opts(0.01), Mode::Return);
    first.start("kept", input("o-1")).await.unwrap();
    first.start("late", input("o-2")).await.unwrap();
    let a = next(&mut received).await;
    let b = next(&mut received).await;
    until("both are parked", || first.waiting() == 2).await;
    first.shutdown().await;
    assert_eq!((first.waiting(), first.running()), (0, 0));
    let err = first
        .send_task_success(&a.token, json!(1))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskTokenError::ShuttingDown), "{err}");
    drop(first);
    let late_wait = store.get("late").await.unwrap().unwrap().waiting.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the "downtime"

    let (second, mut resubmitted) = executor_on(&store, task, opts(0.01), Mode::Return);
    assert_eq!(second.resume_unfinished().await.unwrap(), 2);
    assert_eq!((second.waiting(), second.running()), (2, 0));
    assert_eq!(
        second.resume_unfinished().await.unwrap(),
        0,
        "already parked here"
    );
    let (kept_token, late_token) = if a.execution == "kept" {
        (&a.token, &b.token)
    } else {
        (&b.token, &a.token)
    };
    second
        .send_task_success(kept_token, json!("after restart"))
        .await
        .unwrap();
    let kept = finished(&store, "kept").await;
    assert_eq!(kept.output.unwrap()["answer"], "after restart");

    let late = finished(&store, "late").await;
    assert_eq!(late.state, "Caught");
    let history = store.history("late").await.unwrap();
    let fired = events(&history, Kind::TaskTimedOut, "W")[0].timestamp;
    let due = late_wait.timeout_at.unwrap();
    let late_ms = (fired - due).num_milliseconds();
    assert!(
        (0..200).contains(&late_ms),
        "fired {late_ms} ms after the original deadline"
    );
    let err = second
        .send_task_success(late_token, json!(1))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskTokenError::TaskTimedOut), "{err}");
    assert!(
        resubmitted.try_recv().is_err(),
        "submitted waits are not submitted again"
    );
}

#[tokio::test]
async fn a_recorded_but_unsubmitted_wait_is_submitted_again_with_its_token() {
    let (store, _dir) = temp_store();
    let (first, mut received) = executor_on(&store, lambda_task(json!({})), opts(1.0), Mode::Hang);
    first.start("crash", input("o-3")).await.unwrap();
    let got = next(&mut received).await;
    first.shutdown().await; // the handler never returned
    drop(first);
    let stored = store.get("crash").await.unwrap().unwrap().waiting.unwrap();
    assert!(!stored.submitted);
    assert_eq!(stored.token, got.token);

    let (second, mut again) = executor_on(&store, lambda_task(json!({})), opts(1.0), Mode::Return);
    assert_eq!(second.resume_unfinished().await.unwrap(), 1);
    let resent = next(&mut again).await;
    assert_eq!(resent.token, got.token, "the same token");
    assert_eq!(resent.body, got.body);
    until("it is parked", || second.waiting() == 1).await;
    second
        .send_task_success(&got.token, json!("done"))
        .await
        .unwrap();
    assert_eq!(
        finished(&store, "crash").await.output.unwrap()["answer"],
        "done"
    );
}

#[tokio::test]
async fn waiting_executions_hold_no_runner_and_no_permit() {
    let (store, _dir) = temp_store();
    let options = ExecutorOptions {
        max_concurrent: 1,
        ..opts(1.0)
    };
    let (executor, mut received) =
        executor_on(&store, lambda_task(json!({})), options, Mode::Return);
    for i in 0..50 {
        executor.start(&format!("w-{i}"), input("o")).await.unwrap();
    }
    until("all 50 are parked", || executor.waiting() == 50).await;
    idle(&executor).await;
    assert_eq!(executor.running(), 0);
    tokio::time::timeout(Duration::from_secs(1), executor.wait_below(1))
        .await
        .expect("not counted");
    executor
        .start("plain", json!({"plain": true}))
        .await
        .unwrap();
    let plain = finished(&store, "plain").await;
    assert_eq!(plain.output.unwrap()["plain"], "done");
    let mut tokens = Vec::new();
    while let Ok(got) = received.try_recv() {
        tokens.push(got.token);
    }
    assert_eq!(tokens.len(), 50);
    for token in &tokens {
        executor.send_task_success(token, json!(1)).await.unwrap();
    }
    idle(&executor).await;
    assert_eq!(executor.waiting(), 0);
    assert_eq!(store.unfinished().await.unwrap().len(), 0);
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// `ORDERS_MANY_WAITING` sets the count (100000 for the full measurement).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn very_many_executions_wait_at_once() {
    let count: usize = std::env::var("ORDERS_MANY_WAITING")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let (store, _dir) = temp_store();
    let task = lambda_task(json!({"TimeoutSeconds": 3600, "HeartbeatSeconds": 600}));
    let (executor, mut received) = executor_on(&store, task, opts(1.0), Mode::Return);
    let before = rss_mib();
    let started = Instant::now();
    let starts: Vec<_> = (0..16)
        .map(|worker| {
            let executor = Arc::clone(&executor);
            tokio::spawn(async move {
                for i in (worker..count).step_by(16) {
                    executor
                        .start(&format!("many-{i}"), input("o"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for start in starts {
        start.await.unwrap();
    }
    until("all are parked", || executor.waiting() == count).await;
    let elapsed = started.elapsed();
    idle(&executor).await;
    let after = rss_mib();
    eprintln!(
        "{count} executions waiting: {elapsed:?} to start and park, RSS {before:.0} -> {after:.0} MiB"
    );
    assert_eq!(executor.running(), 0);
    let first = next(&mut received).await;
    executor
        .send_task_success(&first.token, json!(1))
        .await
        .unwrap();
    assert_eq!(
        finished(&store, &first.execution).await.status,
        ExecutionStatus::Succeeded
    );
    assert_eq!(executor.waiting(), count - 1);
    executor.shutdown().await;
}
