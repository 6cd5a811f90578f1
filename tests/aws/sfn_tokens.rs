//! The callback pattern on moto's Step Functions, driven through [`TaskTokens`]: a Task on
//! `sqs:sendMessage.waitForTaskToken` (the warehouse request) and one on
//! `lambda:invoke.waitForTaskToken` (the payment request) wait for their token, and the token
//! calls resume, fail, keep alive or miss them.
//!
//! moto (5.2.5, its `parser` engine, on with `execute_state_machine`) really runs this: the SQS
//! integration puts the message, `$$.Task.Token` substituted, on a moto queue; the execution
//! waits until `SendTaskSuccess`/`SendTaskFailure`; `SendTaskHeartbeat` restarts the
//! `HeartbeatSeconds` clock; `TimeoutSeconds` and `HeartbeatSeconds` fire (`TaskTimedOut`
//! event); a token no task ever had is `InvalidToken`. What moto does not do, so is not
//! proven here (the classification of each answer is unit-tested in `orders_aws::sfn::tokens`):
//!
//! - It never answers `TaskTimedOut` or `TaskDoesNotExist`: `CallbackEndpoint.report` is never
//!   called, so `parser/models.py` never raises them. A token whose execution has ended is
//!   `InvalidToken` to `SendTaskSuccess` and `SendTaskHeartbeat` (only running executions are
//!   searched) where AWS answers `TaskTimedOut`; the tests accept either final answer there.
//!   `SendTaskFailure` searches ended executions too and accepts a used token silently, and a
//!   closed task of a still-running execution accepts success and failure silently: no test
//!   sends those.
//! - `SendTaskFailure`'s `cause` is dropped (`responses.py` reads only `error`), so the cause
//!   reaching a `Catch` is not checked; nor are the error and cause lengths validated, which is
//!   how the truncation to 256 is seen on the wire.
//! - A heartbeat timeout is reported as `States.Timeout`, not AWS's `States.HeartbeatTimeout`.
//! - A heartbeat for a Task without `HeartbeatSeconds` is `InvalidToken`; ours all set it.
//! - Lambda does not run: without Docker moto's Lambda echoes the payload (`awslambda_simple`),
//!   so the payment Task's token is read from its `TaskScheduled` event, standing in for the
//!   step Lambda that receives it.

mod rig;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use orders_aws::sfn::TokenError;
use rig::{PATIENCE, assert_final, output, rig};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const STEPS_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-steps";

/// The warehouse Task: the request (token, order) on the queue, the shipment at
/// `$.shipment`, a refusal caught into `$.failure`, any other error failing the execution.
fn prepare_shipment(queue: &str, timeouts: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": queue,
            "MessageBody": {"taskToken.$": "$$.Task.Token", "orderId.$": "$.orderId"},
        },
        "ResultPath": "$.shipment",
        "Catch": [{"ErrorEquals": ["Warehouse.Refused"], "ResultPath": "$.failure", "Next": "Refused"}],
        "End": true,
    });
    let fields = task.as_object_mut().expect("a Task is an object");
    fields.extend(timeouts.as_object().expect("timeouts object").clone());
    json!({
        "StartAt": "PrepareShipment",
        "States": {"PrepareShipment": task, "Refused": {"Type": "Pass", "End": true}},
    })
}

#[tokio::test]
async fn the_warehouse_request_carries_the_token_and_succeed_resumes_with_its_output() {
    let rig = rig().await;
    let timeouts = json!({"TimeoutSeconds": 60, "HeartbeatSeconds": 30});
    let machine = rig
        .machine("shipment", &prepare_shipment(&rig.queue, timeouts))
        .await;
    let run = rig
        .start(&machine, "ship-1", &json!({"orderId": "o-1"}))
        .await;

    let request = rig.next_request().await;
    assert_eq!(request["orderId"], "o-1");
    let token = request["taskToken"]
        .as_str()
        .expect("the token is substituted");
    assert!(!token.is_empty() && !token.contains("$$"), "{token}");
    rig.assert_waiting(&run).await;
    rig.tokens
        .heartbeat(token)
        .await
        .expect("heartbeat accepted");
    rig.assert_waiting(&run).await;

    let shipment = json!({"trackingId": "T-1", "carrier": "DHL"});
    rig.tokens.succeed(token, &shipment).await.expect("succeed");
    let done = rig.ended(&run).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
    assert_eq!(
        output(&done),
        json!({"orderId": "o-1", "shipment": shipment})
    );

    // The task is over: a redelivered result or a late heartbeat is told so, not retried.
    assert_final(rig.tokens.succeed(token, &json!({})).await);
    assert_final(rig.tokens.heartbeat(token).await);
}

#[tokio::test]
async fn fail_resumes_the_task_with_the_error_cut_to_the_api_limit() {
    let rig = rig().await;
    let timeouts = json!({"TimeoutSeconds": 60});
    let machine = rig
        .machine("shipment", &prepare_shipment(&rig.queue, timeouts))
        .await;

    let refused = rig
        .start(&machine, "refused", &json!({"orderId": "o-2"}))
        .await;
    let token = rig.next_request().await["taskToken"]
        .as_str()
        .unwrap()
        .to_owned();
    rig.tokens
        .fail(&token, "Warehouse.Refused", "out of stock")
        .await
        .expect("fail");
    let done = rig.ended(&refused).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded, "caught");
    assert_eq!(output(&done)["failure"]["Error"], "Warehouse.Refused");

    // Uncaught, the error fails the execution; sent too long, it arrives cut to 256.
    let lost = rig
        .start(&machine, "lost", &json!({"orderId": "o-3"}))
        .await;
    let token = rig.next_request().await["taskToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = format!("Warehouse.Lost{}", "!".repeat(300));
    rig.tokens
        .fail(&token, &long, &"c".repeat(40_000))
        .await
        .expect("fail");
    let done = rig.ended(&lost).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    assert_eq!(done.error(), Some(&long[..256]));
}

#[tokio::test]
async fn heartbeats_keep_a_task_alive_and_silence_times_it_out() {
    let rig = rig().await;
    let timeouts = json!({"TimeoutSeconds": 60, "HeartbeatSeconds": 2});
    let machine = rig
        .machine("shipment", &prepare_shipment(&rig.queue, timeouts))
        .await;

    let kept = rig
        .start(&machine, "kept", &json!({"orderId": "o-4"}))
        .await;
    let token = rig.next_request().await["taskToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // Time passing is the stimulus here: twice the heartbeat window, a beat every second.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rig.tokens
            .heartbeat(&token)
            .await
            .expect("heartbeat accepted");
    }
    rig.assert_waiting(&kept).await;
    rig.tokens
        .succeed(&token, &json!({"trackingId": "T-4"}))
        .await
        .expect("succeed");
    assert_eq!(rig.ended(&kept).await.status(), &ExecutionStatus::Succeeded);

    let silent = rig
        .start(&machine, "silent", &json!({"orderId": "o-5"}))
        .await;
    let token = rig.next_request().await["taskToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = rig.ended(&silent).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    // AWS names it States.HeartbeatTimeout; moto, States.Timeout (see the module docs).
    let error = done.error().expect("an error");
    assert!(
        ["States.HeartbeatTimeout", "States.Timeout"].contains(&error),
        "{error}"
    );
    let history = rig.history(&silent).await;
    assert!(
        history
            .iter()
            .any(|e| e.r#type() == &HistoryEventType::TaskTimedOut)
    );
    assert_final(rig.tokens.succeed(&token, &json!({})).await);
}

#[tokio::test]
async fn timeout_seconds_closes_a_task_nobody_answers() {
    let rig = rig().await;
    let machine = rig
        .machine(
            "shipment",
            &prepare_shipment(&rig.queue, json!({"TimeoutSeconds": 1})),
        )
        .await;
    let run = rig
        .start(&machine, "unanswered", &json!({"orderId": "o-6"}))
        .await;
    let token = rig.next_request().await["taskToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = rig.ended(&run).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    assert_eq!(done.error(), Some("States.Timeout"));
    assert_final(rig.tokens.succeed(&token, &json!({})).await);
}

#[tokio::test]
async fn a_token_no_task_ever_had_is_unknown_to_every_call() {
    let rig = rig().await;
    let garbage = "not-a-task-token";
    assert_eq!(
        rig.tokens.succeed(garbage, &json!({})).await,
        Err(TokenError::Unknown)
    );
    assert_eq!(
        rig.tokens.fail(garbage, "E", "c").await,
        Err(TokenError::Unknown)
    );
    assert_eq!(
        rig.tokens.heartbeat(garbage).await,
        Err(TokenError::Unknown)
    );
}

#[tokio::test]
async fn the_payment_lambda_is_given_the_token_and_the_task_waits_for_it() {
    let rig = rig().await;
    let definition = json!({
        "StartAt": "RequestPayment",
        "States": {"RequestPayment": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": STEPS_ARN,
                "Payload": {"step": "RequestPayment", "taskToken.$": "$$.Task.Token", "input.$": "$"},
            },
            "TimeoutSeconds": 60,
            "HeartbeatSeconds": 30,
            "ResultPath": "$.payment",
            "End": true,
        }},
    });
    let machine = rig.machine("payment", &definition).await;
    let input = json!({"orderId": "o-7", "totalCents": 1299});
    let run = rig.start(&machine, "pay-1", &input).await;

    // The invocation's parameters, as the step Lambda would receive its payload.
    let deadline = Instant::now() + PATIENCE;
    let payload = loop {
        let history = rig.history(&run).await;
        let scheduled = history
            .iter()
            .find_map(|e| e.task_scheduled_event_details())
            .map(|d| serde_json::from_str::<Value>(d.parameters()).expect("parameters JSON"));
        let submitted = history
            .iter()
            .any(|e| e.r#type() == &HistoryEventType::TaskSubmitted);
        if let (Some(parameters), true) = (scheduled, submitted) {
            assert_eq!(parameters["FunctionName"], STEPS_ARN);
            break parameters["Payload"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the payment Task was not submitted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(payload["step"], "RequestPayment");
    assert_eq!(payload["input"], input);
    let token = payload["taskToken"]
        .as_str()
        .expect("the token is substituted");
    rig.assert_waiting(&run).await;

    let payment = json!({"paymentId": "pay-7", "status": "CAPTURED"});
    rig.tokens.succeed(token, &payment).await.expect("succeed");
    let done = rig.ended(&run).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
    assert_eq!(output(&done)["payment"], payment);
}
