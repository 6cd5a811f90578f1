//! How many AWS requests one order costs on the AWS runtime, counted on the real SDK clients
//! (an interceptor sees every transmission, retries included) while one order goes through
//! the real code on moto: POST /orders on the DynamoDB store, the stream processor starting
//! its execution, each Task of the happy path as the step Lambda runs it, the payment
//! webhook's write and the processor delivering its signal (SendTaskSuccess), the warehouse
//! worker's heartbeat and success, and a GET. The provider's HTTP call and Step Functions'
//! own SQS SendMessage are not requests of ours; the tokens come from the execution moto runs
//! (read with an uncounted client).
//! `cargo test --release --test aws_requests_per_order -- --nocapture` prints the table that
//! docs/ARCHITECTURE.md quotes; the assertions pin it, so a change in the count is a
//! decision someone makes, not a drift.

use orders_test_support::moto_stack;
use orders_test_support::requests;
use orders_test_support::streams;

use axum::body::Body;
use axum::http::Request;
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use orders_aws::dynamodb::DynamoStepStore;
use orders_aws::lambda::stream::{Ports, handle_batch};
use orders_aws::lambda::warehouse::{MessageOutcome, Warehouse, WarehouseConfig};
use orders_aws::sfn::{StepFunctionsSignaller, StepFunctionsStarter, TaskTokens};
use orders_aws::tables::attrs;
use orders_domain::lifecycle::{PaymentResult, PaymentWebhook};
use orders_domain::store::OrderStore;
use orders_domain::{OutboxEvent, OutboxMessage};
use orders_domain::{PaymentId, Shipment};
use orders_workflow::steps::{Step, StepSettings, Steps};
use requests::Requests;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

#[tokio::test]
async fn one_order_end_to_end_costs_these_aws_requests() {
    let counted = Requests::default();
    let stack = moto_stack::stack("count-", |c| c.interceptor(counted.clone())).await;
    let sdk = stack.moto.sdk_config().await;
    let plain = aws_sdk_sfn::Client::new(&sdk);
    let saga = moto_stack::create_saga(&plain, &stack.moto.endpoint).await;
    let machine = saga.arn.clone();
    counted.take();
    let mut table: Vec<(String, Vec<String>)> = Vec::new();

    // 1. POST /orders with a key, over 100 EUR so the voucher step runs too.
    let app = router(AppState {
        store: stack.dynamodb.store.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings::default()),
    });
    let body = json!({"customerId": "count-1", "items": [{"productId": "laptop", "quantity": 1, "price": 1299.99}]});
    let post = |key: &'static str| {
        Request::post("/orders")
            .header("content-type", "application/json")
            .header("x-idempotency-key", key)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let created = app.clone().oneshot(post("count-key")).await.unwrap();
    assert_eq!(created.status(), 201);
    table.push(("POST /orders (new)".into(), counted.take()));
    let replayed = app.clone().oneshot(post("count-key")).await.unwrap();
    assert_eq!(replayed.status(), 201);
    table.push(("POST /orders (replay)".into(), counted.take()));

    // 2. The stream record of that transaction, through the processor.
    let records = streams::stream_records(&stack.moto.endpoint, &stack.stream_arn).await;
    assert_eq!(records.len(), 1);
    let text = records[0]["dynamodb"]["NewImage"][attrs::outbox::EVENT]["S"]
        .as_str()
        .unwrap();
    let event = OutboxEvent::decode(text.as_bytes()).unwrap();
    let sfn_counted = Requests::default();
    let sfn = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&sdk)
            .interceptor(SfnCounter(sfn_counted.clone()))
            .build(),
    );
    // The public events go to a bus on moto, counted with the processor's requests.
    let events = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk)
            .interceptor(SfnCounter(sfn_counted.clone()))
            .build(),
    );
    let bus = "count-events";
    events.create_event_bus().name(bus).send().await.unwrap();
    sfn_counted.take();
    let bus = orders_aws::eventbridge::EventBusName::parse(bus).unwrap();
    let ports = Ports {
        starter: Arc::new(StepFunctionsStarter::new(sfn.clone(), &machine)),
        signaller: Arc::new(StepFunctionsSignaller::new(sfn.clone(), &machine)),
        publisher: Arc::new(orders_aws::eventbridge::EventBridgePublisher::new(
            events, bus,
        )),
    };
    let response = handle_batch(
        streams::lambda_event(&records, &stack.stream_arn),
        ports.clone(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    table.push(("processor (stream record)".into(), sfn_counted.take()));

    // 3. The happy path's Tasks, each as the step Lambda runs it.
    let steps = Steps {
        store: Arc::new(DynamoStepStore::new(
            stack.dynamodb.client.clone(),
            stack.dynamodb.names.clone(),
        )),
        settings: StepSettings::default(),
    };
    let mut input = serde_json::to_value(&event.data).unwrap();
    let execution = ports_execution(&plain, &machine, &event.id.to_string()).await;
    let payment_token = payment_token(&plain, &execution).await;
    // One step as the step Lambda runs it, its requests a row of the table.
    macro_rules! run {
        ($step:expr, $extra:expr) => {{
            let step: Step = $step;
            let mut payload = json!({"step": step.name(), "input": input});
            let extra: Value = $extra;
            payload
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            steps
                .invoke(payload)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", step.name()));
            table.push((format!("step {}", step.name()), counted.take()));
        }};
    }
    run!(Step::ReserveInventory, json!({}));
    run!(Step::RequestPayment, json!({"taskToken": payment_token}));

    // 4. The provider's webhook (its write), then its signal through the processor.
    let order_id = event.data.order_id;
    let webhook = PaymentWebhook {
        webhook_id: "msg_count_1".into(),
        result: PaymentResult::Succeeded,
        payment_id: PaymentId::for_order(order_id),
        order_id,
        amount: event.data.total_cents,
        reason: None,
        received_at: chrono::Utc::now(),
    };
    let outcome = stack
        .dynamodb
        .store
        .apply_payment_webhook(&webhook)
        .await
        .unwrap();
    assert_eq!(outcome, orders_domain::lifecycle::WebhookOutcome::Applied);
    table.push(("webhook payment.succeeded".into(), counted.take()));
    let all = streams::stream_records(&stack.moto.endpoint, &stack.stream_arn).await;
    // The webhook's transaction wrote two outbox rows: the signal, and order.payment_processed.
    assert_eq!(all.len(), 3, "the signal's and the event's outbox rows");
    let signal: Vec<Value> = all[1..].iter().filter(|r| is_signal(r)).cloned().collect();
    assert_eq!(signal.len(), 1, "one signal");
    let response = handle_batch(streams::lambda_event(&signal, &stack.stream_arn), ports).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    table.push(("processor (signal record)".into(), sfn_counted.take()));

    run!(Step::SendNotification, json!({}));

    // 5. The warehouse worker on the request PrepareShipment queued.
    let message = moto_stack::take_message(
        &stack.moto.endpoint,
        &saga.queue_url,
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("the shipment request");
    let worker = Warehouse {
        tokens: TaskTokens::new(sfn.clone()),
        config: WarehouseConfig {
            packing: std::time::Duration::ZERO,
        },
    };
    let sqs_message: aws_lambda_events::event::sqs::SqsMessage =
        serde_json::from_value(json!({"messageId": message["MessageId"], "body": message["Body"]}))
            .unwrap();
    let MessageOutcome::Shipped(tracking) = worker.handle_message(&sqs_message).await else {
        panic!("the parcel was not shipped");
    };
    table.push(("warehouse (one request)".into(), sfn_counted.take()));

    let shipment = Shipment {
        tracking_number: tracking,
        shipped_at: chrono::Utc::now(),
    };
    input["shipment"] = serde_json::to_value(&shipment).unwrap();
    run!(Step::MarkShipped, json!({}));
    run!(Step::IssueVoucher, json!({}));
    run!(Step::MarkCompleted, json!({}));

    // 6. Reading it back.
    let id = event.data.order_id;
    let got = app
        .oneshot(
            Request::get(format!("/orders/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let bytes = axum::body::to_bytes(got.into_body(), 1 << 20)
        .await
        .unwrap();
    let order: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(order["status"], "COMPLETED");
    table.push(("GET /orders/{id} (with voucher)".into(), counted.take()));

    println!("{:<34} {:>8}  requests", "operation", "count");
    let mut total = 0;
    for (what, ops) in &table {
        println!("{what:<34} {:>8}  {}", ops.len(), ops.join(", "));
        total += ops.len();
    }
    println!("{:<34} {total:>8}", "total");

    let counts: Vec<(&str, usize)> = table.iter().map(|(w, o)| (w.as_str(), o.len())).collect();
    assert_eq!(
        counts,
        EXPECTED.to_vec(),
        "the per-order request count changed; update EXPECTED and docs/ARCHITECTURE.md"
    );
}

/// Whether a stream record carries an internal signal (not a public event).
fn is_signal(record: &Value) -> bool {
    let text = record["dynamodb"]["NewImage"][attrs::outbox::EVENT]["S"]
        .as_str()
        .expect("the event text");
    let row = OutboxMessage::decode(text.as_bytes()).expect("an outbox row");
    matches!(row, OutboxMessage::Signal(_))
}

/// The execution the processor started for the event.
async fn ports_execution(sfn: &aws_sdk_sfn::Client, machine: &str, name: &str) -> String {
    sfn.list_executions()
        .state_machine_arn(machine)
        .send()
        .await
        .unwrap()
        .executions
        .into_iter()
        .find(|e| e.name() == name)
        .expect("the started execution")
        .execution_arn()
        .to_owned()
}

/// RequestPayment's token, from its `TaskScheduled` event once moto has it (bounded).
async fn payment_token(sfn: &aws_sdk_sfn::Client, execution: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let history = sfn
            .get_execution_history()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        let token = history
            .events()
            .iter()
            .filter_map(|e| e.task_scheduled_event_details())
            .filter_map(|d| serde_json::from_str::<Value>(d.parameters()).ok())
            .find_map(|p| p["Payload"]["taskToken"].as_str().map(str::to_owned));
        if let Some(token) = token {
            return token;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "RequestPayment never scheduled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The same counter for the Step Functions and EventBridge clients (other SDKs, the same hook).
#[derive(Debug)]
struct SfnCounter(Requests);

impl aws_sdk_sfn::config::Intercept for SfnCounter {
    fn name(&self) -> &'static str {
        "SfnRequestCounter"
    }

    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_sfn::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_sfn::config::RuntimeComponents,
        _: &mut aws_sdk_sfn::config::ConfigBag,
    ) -> Result<(), aws_sdk_sfn::error::BoxError> {
        self.0.note(ctx.request().headers().get("x-amz-target"));
        Ok(())
    }
}

/// Measured on moto. The processor's order.created record is a StartExecution and a
/// PutEvents (the event on the bus); a signal's record is not published. Against the previous saga (ReserveInventory 4, SendNotification 3):
/// each of the two gains one GetItem, the cancel guard reading the order's cancellation before
/// it acts (a cancelled order reserves nothing and notifies no one). RequestPayment (its move
/// to AWAITING_PAYMENT, the payment with its token), the webhook (read, then one transaction:
/// result, status, signal), the signal (one SendTaskSuccess), the warehouse (one heartbeat, one
/// success) and MarkShipped are new. IssueVoucher gained a GetItem with the public events: a
/// new voucher bumps the order's version, conditional on the version read, and publishes
/// `voucher.issued` at it (with the order's trace) in the voucher's transaction. The other
/// publishing changes cost what they did: their status update became a `TransactWriteItems`
/// with the event's outbox item (the webhook's transaction holds one item more).
const EXPECTED: [(&str, usize); 13] = [
    ("POST /orders (new)", 1),
    ("POST /orders (replay)", 1),
    ("processor (stream record)", 2),
    ("step ReserveInventory", 5),
    ("step RequestPayment", 5),
    ("webhook payment.succeeded", 2),
    ("processor (signal record)", 1),
    ("step SendNotification", 4),
    ("warehouse (one request)", 2),
    ("step MarkShipped", 3),
    ("step IssueVoucher", 4),
    ("step MarkCompleted", 3),
    ("GET /orders/{id} (with voucher)", 2),
];
