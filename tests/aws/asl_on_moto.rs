//! `statemachine.asl.json`, with its function ARNs and the warehouse queue's URL substituted as
//! the deployment does, on moto's Step Functions and SQS: CreateStateMachine accepts it, and
//! executions run through every path of the lifecycle.
//!
//! moto runs Lambda tasks without Docker by echoing the Task's input (it does not even look
//! the function up, so none has to be created), so every plain step succeeds, and nothing
//! would ever answer the two callback Tasks. The tests stand in for what answers them on AWS,
//! with the same SDK calls: RequestPayment's token is read from its `TaskScheduled` event
//! (the payload the step Lambda would receive) and answered with `SendTaskSuccess` (the
//! webhook's signal) or `SendTaskFailure` (`PaymentDeclined`, `OrderCancelled`);
//! PrepareShipment's message is taken off moto's SQS queue and answered with the warehouse's
//! `SendTaskSuccess`. What this checks is the definition itself, executed by an interpreter
//! other than ours: its Parameters build the payloads and the queue message, its ResultPaths
//! keep the payment and the shipment, its Choices route by amount and by the caught error,
//! and a payment nobody answers times out into compensation (on a copy with a 1 s
//! `TimeoutSeconds`, the only change).

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use orders_aws::moto::MotoSession;
use orders_domain::lifecycle::{ORDER_CANCELLED, PAYMENT_DECLINED};
use orders_test_support::moto_stack::{self, StepFunctions};
use serde_json::{Value, json};
use std::ops::Deref;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

fn saga_input(total_cents: i64) -> Value {
    json!({
        "orderId": uuid::Uuid::new_v4(),
        "customerId": "c-asl",
        "items": [{"productId": "laptop", "quantity": 1}],
        "totalCents": total_cents,
        "paymentMethod": "pm_card_visa",
    })
}

/// moto's Step Functions (which a `Rig` derefs to, to create, start and read executions on)
/// and the warehouse queue, with what answers the two callback Tasks.
struct Rig {
    sfn: StepFunctions,
    moto: MotoSession,
    queue: String,
}

impl Deref for Rig {
    type Target = StepFunctions;

    fn deref(&self) -> &StepFunctions {
        &self.sfn
    }
}

impl Rig {
    async fn new() -> Rig {
        let moto = orders_aws::moto::session().await;
        let sfn = StepFunctions::new(&moto, PATIENCE).await;
        let queue = moto_stack::create_warehouse_queue(&moto.endpoint).await;
        Rig { sfn, moto, queue }
    }

    /// The token RequestPayment hands the step Lambda, once the Task is submitted (bounded).
    async fn payment_token(&self, arn: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let history = self.history(arn).await;
            let submitted = history
                .iter()
                .any(|e| e.r#type() == &HistoryEventType::TaskSubmitted);
            let payload = history
                .iter()
                .filter_map(|e| e.task_scheduled_event_details())
                .map(|d| serde_json::from_str::<Value>(d.parameters()).expect("parameters"))
                .find(|p| p["Payload"]["step"] == "RequestPayment");
            if let (true, Some(p)) = (submitted, payload) {
                assert_eq!(p["FunctionName"], moto_stack::STEPS_ARN);
                assert!(p["Payload"]["input"]["orderId"].is_string(), "{p}");
                let token = p["Payload"]["taskToken"].as_str().expect("token");
                assert!(!token.is_empty() && !token.contains("$$"), "{token}");
                return token.to_owned();
            }
            assert!(Instant::now() < deadline, "RequestPayment never waited");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The warehouse request PrepareShipment put on the queue.
    async fn shipment_request(&self) -> Value {
        let message = moto_stack::take_message(&self.moto.endpoint, &self.queue, PATIENCE)
            .await
            .expect("a shipment request on the warehouse queue");
        serde_json::from_str(message["Body"].as_str().expect("body")).expect("JSON body")
    }

    async fn succeed(&self, token: &str, output: &Value) {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("SendTaskSuccess: {}", orders_aws::sdk::describe(&e)));
    }

    async fn fail(&self, token: &str, error: &str) {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause("from the test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("SendTaskFailure: {}", orders_aws::sdk::describe(&e)));
    }

    /// Status, output and the Task states entered, once the execution ended (bounded).
    async fn outcome(&self, arn: &str) -> (ExecutionStatus, Value, Vec<String>) {
        let done = self.ended(arn).await;
        let tasks = self
            .history(arn)
            .await
            .iter()
            .filter(|e| e.r#type() == &HistoryEventType::TaskStateEntered)
            .filter_map(|e| e.state_entered_event_details())
            .map(|d| d.name().to_owned())
            .collect();
        let output = done
            .output()
            .map(|o| serde_json::from_str(o).expect("output JSON"))
            .unwrap_or(Value::Null);
        (done.status().clone(), output, tasks)
    }
}

fn shipment() -> Value {
    json!({"trackingNumber": "TRK-0123456789AB", "shippedAt": "2026-12-01T10:00:00.000Z"})
}

/// Runs one order through payment and shipment, both answered with success.
async fn happy(rig: &Rig, machine: &str, name: &str, input: &Value) -> (Value, Vec<String>) {
    let run = rig.start(machine, name, input).await;
    let token = rig.payment_token(&run).await;
    let payment = json!({"paymentId": "pay_1", "status": "SUCCEEDED"});
    rig.succeed(&token, &payment).await;
    let request = rig.shipment_request().await;
    assert_eq!(request["orderId"], input["orderId"]);
    assert_eq!(request["items"], input["items"]);
    let token = request["taskToken"]
        .as_str()
        .expect("the token is in the message");
    rig.succeed(token, &shipment()).await;
    let (status, output, tasks) = rig.outcome(&run).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "output: {output}");
    assert_eq!(output["payment"], payment, "ResultPath $.payment");
    assert_eq!(output["shipment"], shipment(), "ResultPath $.shipment");
    assert!(
        output["reservation"].is_object(),
        "ResultPath $.reservation"
    );
    (output, tasks)
}

const COMPENSATION: [&str; 4] = [
    "BeginCompensation",
    "RefundPayment",
    "ReleaseInventory",
    "RestoreVoucher",
];

#[tokio::test]
async fn the_lifecycle_runs_on_moto_over_and_under_the_voucher_threshold() {
    let rig = Rig::new().await;
    let machine = rig
        .machine("orders-saga", &moto_stack::saga_definition(&rig.queue))
        .await;
    let (_, tasks) = happy(&rig, &machine, "big-order", &saga_input(26_000)).await;
    assert_eq!(
        tasks,
        [
            "ReserveInventory",
            "RequestPayment",
            "SendNotification",
            "PrepareShipment",
            "MarkShipped",
            "IssueVoucher",
            "MarkCompleted"
        ]
    );
    // At 100.00 EUR exactly no voucher is earned: the Choice skips IssueVoucher.
    let (_, tasks) = happy(&rig, &machine, "small-order", &saga_input(10_000)).await;
    assert_eq!(
        tasks,
        [
            "ReserveInventory",
            "RequestPayment",
            "SendNotification",
            "PrepareShipment",
            "MarkShipped",
            "MarkCompleted"
        ]
    );
}

#[tokio::test]
async fn a_declined_payment_compensates_and_ends_failed_and_a_cancellation_cancelled() {
    let rig = Rig::new().await;
    let machine = rig
        .machine("orders-saga", &moto_stack::saga_definition(&rig.queue))
        .await;

    let declined = rig.start(&machine, "declined", &saga_input(5_000)).await;
    let token = rig.payment_token(&declined).await;
    rig.fail(&token, PAYMENT_DECLINED).await;
    let (status, output, tasks) = rig.outcome(&declined).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "compensated: {output}");
    assert_eq!(output["error"]["Error"], PAYMENT_DECLINED);
    let mut want = vec!["ReserveInventory", "RequestPayment"];
    want.extend(COMPENSATION);
    want.push("MarkFailed");
    assert_eq!(tasks, want);

    // Cancelled while the warehouse packs: the waiting shipment Task fails with
    // OrderCancelled, and the Choice after compensation picks MarkCancelled.
    let cancelled = rig.start(&machine, "cancelled", &saga_input(5_000)).await;
    let token = rig.payment_token(&cancelled).await;
    rig.succeed(&token, &json!({"paymentId": "pay_2"})).await;
    let request = rig.shipment_request().await;
    rig.fail(request["taskToken"].as_str().unwrap(), ORDER_CANCELLED)
        .await;
    let (status, output, tasks) = rig.outcome(&cancelled).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "compensated: {output}");
    assert_eq!(output["error"]["Error"], ORDER_CANCELLED);
    let mut want = vec![
        "ReserveInventory",
        "RequestPayment",
        "SendNotification",
        "PrepareShipment",
    ];
    want.extend(COMPENSATION);
    want.push("MarkCancelled");
    assert_eq!(tasks, want);
}

#[tokio::test]
async fn a_payment_nobody_answers_times_out_into_compensation() {
    let rig = Rig::new().await;
    let mut definition: Value =
        serde_json::from_str(&moto_stack::saga_definition(&rig.queue)).expect("JSON");
    definition["States"]["RequestPayment"]["TimeoutSeconds"] = json!(1);
    let machine = rig.machine("orders-saga-1s", &definition.to_string()).await;
    let run = rig.start(&machine, "unanswered", &saga_input(5_000)).await;
    let token = rig.payment_token(&run).await;
    let (status, output, tasks) = rig.outcome(&run).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "compensated: {output}");
    assert_eq!(output["error"]["Error"], "PaymentTimeout", "{output}");
    assert_eq!(output["timeout"]["Error"], "States.Timeout", "{output}");
    let mut want = vec!["ReserveInventory", "RequestPayment"];
    want.extend(COMPENSATION);
    want.push("MarkFailed");
    assert_eq!(tasks, want);
    // A late webhook's signal finds the task closed (moto: the execution ended).
    let late = orders_aws::sfn::TaskTokens::new(rig.client.clone())
        .succeed(&token, &json!({}))
        .await;
    assert!(
        matches!(
            late,
            Err(orders_aws::sfn::TokenError::Closed | orders_aws::sfn::TokenError::Unknown)
        ),
        "{late:?}"
    );
}
