//! `statemachine.asl.json`, with its function ARNs substituted as the deployment does, on
//! moto's Step Functions: CreateStateMachine accepts it, and executions run through it.
//!
//! moto runs Lambda tasks without Docker by echoing the Task's input (it does not even look
//! the function up, so none has to be created), so every task succeeds: what this checks is
//! the definition itself (it parses, its Parameters build the `{"step", "input"}` payload the
//! step Lambda expects, its paths and Choice route an order over and under the voucher
//! threshold), executed by an interpreter other than ours.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use orders_workflow::asl::{substitute, substitution_names};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const STEPS_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-steps";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/orders-saga";

fn definition() -> String {
    let text = include_str!("../../workflow/statemachine.asl.json");
    // One function serves every Task state, as deployed.
    let values: BTreeMap<String, String> = substitution_names(text)
        .into_iter()
        .map(|name| (name, STEPS_ARN.to_owned()))
        .collect();
    assert!(!values.is_empty(), "the definition names its functions");
    let out = substitute(text, &values).expect("every placeholder has a value");
    assert!(!out.contains("${"), "no placeholder left");
    out
}

fn saga_input(total_cents: i64) -> Value {
    json!({
        "orderId": uuid::Uuid::new_v4(),
        "customerId": "c-asl",
        "items": [{"productId": "laptop", "quantity": 1}],
        "totalCents": total_cents,
        "paymentMethod": "pm_card_visa",
    })
}

/// Runs one execution to its end; returns its status, output, the Task states entered and
/// the Lambda payloads, both in history order.
async fn run(
    sfn: &Client,
    machine: &str,
    name: &str,
    input: &Value,
) -> (ExecutionStatus, Value, Vec<String>, Vec<Value>) {
    let started = sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .expect("start execution");
    let arn = started.execution_arn();
    // Waiting for an asynchronous interpreter to finish, bounded; not a retry of a failure.
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe execution");
        if d.status() != &ExecutionStatus::Running {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "execution {name} still running after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let history = sfn
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .send()
        .await
        .expect("execution history");
    let mut tasks = Vec::new();
    let mut payloads = Vec::new();
    for e in history.events() {
        match e.r#type() {
            HistoryEventType::TaskStateEntered => {
                let d = e.state_entered_event_details().expect("state details");
                tasks.push(d.name().to_owned());
            }
            HistoryEventType::LambdaFunctionScheduled => {
                let d = e
                    .lambda_function_scheduled_event_details()
                    .expect("lambda details");
                assert_eq!(d.resource(), STEPS_ARN);
                let payload = d.input().expect("lambda input");
                payloads.push(serde_json::from_str(payload).expect("payload JSON"));
            }
            _ => {}
        }
    }
    let output = done
        .output()
        .map(|o| serde_json::from_str(o).expect("output JSON"))
        .unwrap_or(Value::Null);
    (done.status().clone(), output, tasks, payloads)
}

#[tokio::test]
async fn the_saga_definition_is_accepted_and_runs_on_moto() {
    let moto = orders_aws::moto::session().await;
    let sfn = Client::new(&moto.sdk_config().await);
    let created = sfn
        .create_state_machine()
        .name("orders-saga")
        .definition(definition())
        .role_arn(ROLE_ARN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStateMachine: {}", orders_aws::sdk::describe(&e)));
    let machine = created.state_machine_arn();

    let big = saga_input(26_000);
    let (status, output, tasks, payloads) = run(&sfn, machine, "big-order", &big).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "output: {output}");
    let steps: Vec<&str> = payloads
        .iter()
        .map(|p| p["step"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, steps, "each Task state names itself in its payload");
    assert_eq!(
        steps,
        [
            "ReserveInventory",
            "ProcessPayment",
            "SendNotification",
            "IssueVoucher",
            "MarkCompleted"
        ]
    );
    // Each step receives the saga state: the order, plus what earlier steps added.
    for p in &payloads {
        assert_eq!(p["input"]["orderId"], big["orderId"], "{p}");
        assert_eq!(p["input"]["totalCents"], json!(26_000));
    }
    assert!(payloads[0]["input"].get("reservation").is_none());
    assert!(
        payloads[1]["input"].get("reservation").is_some(),
        "ResultPath $.reservation"
    );
    assert_eq!(output["orderId"], big["orderId"]);

    // At 100.00 EUR exactly no voucher is earned: the Choice skips IssueVoucher.
    let (status, _, tasks, payloads) = run(&sfn, machine, "small-order", &saga_input(10_000)).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    let steps: Vec<&str> = payloads
        .iter()
        .map(|p| p["step"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, steps);
    assert_eq!(
        steps,
        [
            "ReserveInventory",
            "ProcessPayment",
            "SendNotification",
            "MarkCompleted"
        ]
    );
}
