//! Deadlines: TimeoutSeconds (a callback wait and a plain handler call) and HeartbeatSeconds
//! raise `States.Timeout` / `States.HeartbeatTimeout` through Retry and Catch, scaled by
//! `timeout_scale`, and a timeout racing an answer has exactly one outcome.

use super::*;
use chrono::TimeDelta;

fn elapsed_ms(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> i64 {
    (to - from).num_milliseconds()
}

#[tokio::test]
async fn a_timeout_is_retried_with_a_new_token_then_caught() {
    let task = lambda_task(json!({"TimeoutSeconds": 10,
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}]}));
    let (store, _dir) = temp_store();
    // 10 s scaled to 100 ms.
    let (executor, mut received) = executor_on(&store, task, opts(0.01), Mode::Return);
    executor.start("slow", input("o-1")).await.unwrap();
    let first = next(&mut received).await;
    let second = next(&mut received).await;
    assert_ne!(first.token, second.token, "a retry makes a new token");
    let err = executor
        .send_task_success(&first.token, json!(1))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskTokenError::TaskTimedOut), "{err}");
    let done = finished(&store, "slow").await;
    assert_eq!(done.state, "Caught");
    assert_eq!(done.output.unwrap()["error"]["Error"], "States.Timeout");
    let history = store.history("slow").await.unwrap();
    let timed_out = events(&history, Kind::TaskTimedOut, "W");
    let scheduled = events(&history, Kind::TaskScheduled, "W");
    assert_eq!(timed_out.len(), 2);
    assert_eq!(events(&history, Kind::RetryScheduled, "W").len(), 1);
    for (s, t) in scheduled.iter().zip(&timed_out) {
        let ms = elapsed_ms(s.timestamp, t.timestamp);
        assert!((100..400).contains(&ms), "timed out after {ms} ms");
    }
    let err = executor
        .send_task_success(&second.token, json!(1))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskTokenError::TaskTimedOut), "{err}");
}

#[tokio::test]
async fn timeout_scale_scales_the_recorded_deadlines() {
    let task = lambda_task(json!({"TimeoutSeconds": 100, "HeartbeatSeconds": 40}));
    let (store, _dir) = temp_store();
    let (executor, _received) = executor_on(&store, task, opts(0.002), Mode::Return);
    executor.start("scaled", input("o-2")).await.unwrap();
    let waiting = wait_for(store.as_ref(), "scaled", |s| s.waiting.is_some())
        .await
        .waiting
        .unwrap();
    assert_eq!(
        waiting.timeout_at,
        Some(waiting.started_at + TimeDelta::milliseconds(200))
    );
    assert_eq!(
        waiting.heartbeat_at,
        Some(waiting.started_at + TimeDelta::milliseconds(80))
    );
    let done = finished(&store, "scaled").await;
    assert_eq!(
        done.output.unwrap()["error"]["Error"],
        "States.HeartbeatTimeout"
    );
}

#[tokio::test]
async fn heartbeats_keep_a_wait_alive_and_their_absence_times_it_out() {
    // HeartbeatSeconds 2 and TimeoutSeconds 40 scaled to 100 ms and 2 s.
    let task = lambda_task(json!({"TimeoutSeconds": 40, "HeartbeatSeconds": 2}));
    let (store, _dir) = temp_store();
    let (executor, mut received) = executor_on(&store, task, opts(0.05), Mode::Return);
    executor.start("beat", input("o-3")).await.unwrap();
    let got = next(&mut received).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(500) {
        executor.send_task_heartbeat(&got.token).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let alive = store.get("beat").await.unwrap().unwrap();
    assert!(
        alive.waiting.is_some(),
        "kept alive past 5 heartbeat periods"
    );
    let last_beat = store
        .history("beat")
        .await
        .unwrap()
        .last()
        .unwrap()
        .timestamp;
    let done = finished(&store, "beat").await;
    assert_eq!(
        done.output.unwrap()["error"]["Error"],
        "States.HeartbeatTimeout"
    );
    let history = store.history("beat").await.unwrap();
    assert!(events(&history, Kind::TaskHeartbeat, "W").len() >= 10);
    let timed_out = events(&history, Kind::TaskTimedOut, "W")[0];
    let ms = elapsed_ms(last_beat, timed_out.timestamp);
    assert!(
        (100..400).contains(&ms),
        "timed out {ms} ms after the last heartbeat"
    );

    executor.start("silent", input("o-4")).await.unwrap();
    next(&mut received).await;
    let done = finished(&store, "silent").await;
    assert_eq!(
        done.output.unwrap()["error"]["Error"],
        "States.HeartbeatTimeout"
    );
}

#[tokio::test]
async fn timeout_seconds_bounds_a_plain_handler_call() {
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${T}", "TimeoutSeconds": 5,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}}});
    let machine = StateMachine::load(&def.to_string(), &BTreeSet::from(["T".to_owned()])).unwrap();
    let hang = Arc::new(AtomicBool::new(true));
    let handler: Arc<dyn TaskHandler> = Arc::new(Scripted {
        script: Arc::new(|_: &Value, _: &TaskContext| Ok(json!(1))),
        calls: Arc::default(),
        sleep: Duration::ZERO,
        hang,
    });
    let (store, _dir) = temp_store();
    let handlers = HashMap::from([("T".to_owned(), handler)]);
    let executor = Executor::new(machine, handlers, store.clone(), opts(0.02)).unwrap();
    executor.start("hung", json!({})).await.unwrap();
    let done = finished(&store, "hung").await;
    assert_eq!(done.state, "Caught");
    let history = store.history("hung").await.unwrap();
    let timed_out = events(&history, Kind::TaskTimedOut, "T");
    assert_eq!(timed_out[0].error.as_deref(), Some("States.Timeout"));
    // A task event is stamped when its attempt starts; the record that ends it, when it ends.
    let ms = elapsed_ms(done.started_at, done.updated_at);
    assert!((100..400).contains(&ms), "timed out after {ms} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_racing_an_answer_has_exactly_one_outcome() {
    let task = lambda_task(json!({"TimeoutSeconds": 1}));
    let (store, _dir) = temp_store();
    let (executor, mut received) = executor_on(&store, task, opts(0.05), Mode::Return);
    let mut outcomes = (0, 0);
    for i in 0..40 {
        let name = format!("race-{i}");
        executor.start(&name, input(&name)).await.unwrap();
        let got = next(&mut received).await;
        let at = store
            .get(&name)
            .await
            .unwrap()
            .unwrap()
            .waiting
            .unwrap()
            .timeout_at
            .unwrap();
        // Aim at the deadline itself, a little before or after it.
        let offset = TimeDelta::microseconds((i % 9 - 4) * 500);
        if let Ok(wait) = (at + offset - chrono::Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let answered = executor.send_task_success(&got.token, json!("won")).await;
        let done = finished(&store, &name).await;
        let history = store.history(&name).await.unwrap();
        let closes = history
            .iter()
            .filter(|e| matches!(e.kind, Kind::TaskSucceeded | Kind::TaskTimedOut))
            .count();
        assert_eq!(closes, 1, "{name}: {:?}", kinds(&history));
        match answered {
            Ok(()) => {
                outcomes.0 += 1;
                assert_eq!(done.output.unwrap()["answer"], "won", "{name}");
            }
            Err(TaskTokenError::TaskTimedOut) => {
                outcomes.1 += 1;
                assert_eq!(done.state, "Caught", "{name}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    eprintln!("answer won {}, timeout won {}", outcomes.0, outcomes.1);
    assert_eq!(outcomes.0 + outcomes.1, 40, "{outcomes:?}");
}
