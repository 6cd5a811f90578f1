//! Answering a token: success and failure flow through ResultPath and Catch, the token the
//! handler or the queue got is the one accepted (even before the handler returns), and
//! malformed, unknown and closed tokens get InvalidToken, TaskDoesNotExist and TaskTimedOut.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[tokio::test]
async fn a_success_flows_through_result_path() {
    let (store, _dir) = temp_store();
    let (executor, mut received) =
        executor_on(&store, lambda_task(json!({})), opts(1.0), Mode::Return);
    executor.start("ok", input("o-1")).await.unwrap();
    let got = next(&mut received).await;
    assert_eq!(
        (got.execution.as_str(), &got.body["order"]),
        ("ok", &json!({"id": "o-1"}))
    );
    until("it is parked", || executor.waiting() == 1).await;
    let parked = store.get("ok").await.unwrap().unwrap();
    let waiting = parked.waiting.clone().expect("a recorded wait");
    assert_eq!(
        waiting.token, got.token,
        "the payload carries the recorded token"
    );
    assert!(waiting.submitted);

    executor
        .send_task_success(&got.token, json!({"shipped": 2}))
        .await
        .unwrap();
    let done = finished(&store, "ok").await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(
        done.output,
        Some(json!({"order": {"id": "o-1"}, "answer": {"shipped": 2}}))
    );
    let history = store.history("ok").await.unwrap();
    let w: Vec<Kind> = history
        .iter()
        .filter(|e| e.state.as_deref() == Some("W"))
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        w,
        [
            Kind::StateEntered,
            Kind::TaskScheduled,
            Kind::TaskSubmitted,
            Kind::TaskSucceeded,
            Kind::StateExited
        ]
    );
    assert_eq!(
        events(&history, Kind::TaskScheduled, "W")[0]
            .task_token
            .as_deref(),
        Some(got.token.as_str())
    );
    assert_eq!(executor.waiting(), 0);
}

#[tokio::test]
async fn a_failure_goes_to_catch_with_its_error_and_cause() {
    let (store, _dir) = temp_store();
    let (executor, mut received) =
        executor_on(&store, lambda_task(json!({})), opts(1.0), Mode::Return);
    executor.start("no", input("o-2")).await.unwrap();
    let got = next(&mut received).await;
    executor
        .send_task_failure(&got.token, "Rejected", "out of stock")
        .await
        .unwrap();
    let done = finished(&store, "no").await;
    assert_eq!(
        (done.status, done.state.as_str()),
        (ExecutionStatus::Succeeded, "Caught")
    );
    assert_eq!(
        done.output.unwrap()["error"],
        json!({"Error": "Rejected", "Cause": "out of stock"})
    );
    let history = store.history("no").await.unwrap();
    let failed = events(&history, Kind::TaskFailed, "W");
    assert_eq!(failed[0].error.as_deref(), Some("Rejected"));
    assert_eq!(events(&history, Kind::CaughtError, "W").len(), 1);
}

#[tokio::test]
async fn an_sqs_task_sends_its_message_body_with_the_token_as_dedup_id() {
    let task = json!({"Type": "Task", "Resource": SQS,
        "Parameters": {"QueueUrl": "${Warehouse}", "MessageBody": {"order.$": "$.order", "taskToken.$": "$$.Task.Token"}},
        "ResultPath": "$.answer", "End": true,
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]});
    let (store, _dir) = temp_store();
    let (handlers, _) = handlers(Mode::Return);
    let refused = Executor::new(
        machine(task.clone()),
        handlers.clone(),
        store.clone(),
        opts(1.0),
    );
    assert!(matches!(refused, Err(ExecError::MissingQueue(q)) if q == "Warehouse"));
    let queue = Arc::new(Outbox::default());
    let executor = Executor::with_queue(
        machine(task),
        handlers,
        store.clone(),
        queue.clone(),
        opts(1.0),
    )
    .unwrap();
    executor.start("sqs", input("o-3")).await.unwrap();
    until("it is parked", || executor.waiting() == 1).await;
    let (name, message) = queue.messages.lock().unwrap()[0].clone();
    assert_eq!(name, "Warehouse");
    let token = message.body["taskToken"].as_str().unwrap().to_owned();
    assert_eq!(message.dedup_id, token);
    assert_eq!(message.body["order"], json!({"id": "o-3"}));
    executor
        .send_task_success(&token, json!("shipped"))
        .await
        .unwrap();
    let done = finished(&store, "sqs").await;
    assert_eq!(done.output.unwrap()["answer"], "shipped");
    assert_eq!(queue.messages.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_handler_for_a_lambda_callback_is_refused() {
    let (store, _dir) = temp_store();
    let (mut handlers, _) = handlers(Mode::Return);
    handlers.remove("Notify");
    let refused = Executor::new(machine(lambda_task(json!({}))), handlers, store, opts(1.0));
    assert!(matches!(refused, Err(ExecError::MissingHandler(h)) if h == "Notify"));
}

#[tokio::test]
async fn an_answer_before_the_handler_returns_is_taken() {
    let (store, _dir) = temp_store();
    let mode = Mode::AnswerFirst(Arc::default());
    let (executor, mut received) = executor_on(&store, lambda_task(json!({})), opts(1.0), mode);
    executor.start("early", input("o-4")).await.unwrap();
    let done = finished(&store, "early").await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.unwrap()["answer"], json!({"early": true}));
    next(&mut received).await;
    idle(&executor).await;
    assert!(received.try_recv().is_err(), "submitted once");
    let history = store.history("early").await.unwrap();
    assert!(
        events(&history, Kind::TaskSubmitted, "W").is_empty(),
        "the answer closed the wait first"
    );
}

/// `token` with its execution name replaced, or its random part changed: well-formed, never issued.
fn forged(token: &str, name: Option<&str>) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    match name {
        Some(name) => {
            bytes.truncate(33);
            bytes.extend_from_slice(name.as_bytes());
        }
        None => bytes[5] ^= 1,
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn malformed_unknown_and_closed_tokens_are_refused() {
    let (store, _dir) = temp_store();
    let (executor, mut received) =
        executor_on(&store, lambda_task(json!({})), opts(1.0), Mode::Return);
    executor.start("t", input("o-5")).await.unwrap();
    let got = next(&mut received).await;
    until("it is parked", || executor.waiting() == 1).await;

    for bad in [
        "",
        "not a token",
        &got.token[1..],
        &format!("{}==", got.token),
    ] {
        let err = executor.send_task_success(bad, json!(1)).await.unwrap_err();
        assert!(matches!(err, TaskTokenError::InvalidToken), "{bad}: {err}");
    }
    for unknown in [forged(&got.token, Some("nobody")), forged(&got.token, None)] {
        let err = executor.send_task_heartbeat(&unknown).await.unwrap_err();
        assert!(matches!(err, TaskTokenError::TaskDoesNotExist), "{err}");
        let err = executor
            .send_task_success(&unknown, json!(1))
            .await
            .unwrap_err();
        assert!(matches!(err, TaskTokenError::TaskDoesNotExist), "{err}");
    }
    executor.send_task_heartbeat(&got.token).await.unwrap();
    executor
        .send_task_success(&got.token, json!("first"))
        .await
        .unwrap();
    let done = finished(&store, "t").await;
    let history = store.history("t").await.unwrap();
    for err in [
        executor
            .send_task_success(&got.token, json!("second"))
            .await
            .unwrap_err(),
        executor
            .send_task_failure(&got.token, "Rejected", "late")
            .await
            .unwrap_err(),
        executor.send_task_heartbeat(&got.token).await.unwrap_err(),
    ] {
        assert!(matches!(err, TaskTokenError::TaskTimedOut), "{err}");
    }
    assert_eq!(store.get("t").await.unwrap().unwrap(), done, "no effect");
    assert_eq!(store.history("t").await.unwrap(), history);
    assert_eq!(done.output.unwrap()["answer"], "first");
    assert_eq!(events(&history, Kind::TaskHeartbeat, "W").len(), 1);
}

#[tokio::test]
async fn timeout_scale_must_be_finite_and_positive() {
    let (store, _dir) = temp_store();
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let (handlers, _) = handlers(Mode::Return);
        let refused = Executor::new(
            machine(lambda_task(json!({}))),
            handlers,
            store.clone(),
            opts(scale),
        );
        assert!(
            matches!(refused, Err(ExecError::InvalidOptions(_))),
            "{scale}"
        );
    }
}
