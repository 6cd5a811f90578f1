//! The warehouse worker's handler against moto's SQS and Step Functions: the PrepareShipment
//! state of the saga's definition (as deployed: its `MessageBody`, timeouts and heartbeat)
//! puts the real shipment request on the queue; the message as SQS hands it over becomes the
//! Lambda event; the handler heartbeats, packs and completes the task, and the execution
//! ends with the shipment at `$.shipment`. A redelivered message whose task is done is
//! dropped, a message that is not a shipment request is reported, and so is every message
//! when Step Functions cannot be reached.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use orders_aws::lambda::warehouse::{Warehouse, WarehouseConfig};
use orders_aws::sfn::TaskTokens;
use orders_test_support::moto_stack;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

/// A machine of the saga's PrepareShipment state alone, ending after it.
fn prepare_shipment_only(queue: &str) -> String {
    let mut saga: Value =
        serde_json::from_str(&moto_stack::saga_definition(queue)).expect("definition JSON");
    let mut state = saga["States"]["PrepareShipment"].take();
    let fields = state.as_object_mut().expect("a state");
    fields.remove("Next");
    fields.remove("Catch");
    fields.insert("End".into(), json!(true));
    json!({"StartAt": "PrepareShipment", "States": {"PrepareShipment": state}}).to_string()
}

/// The messages SQS hands over, as the Lambda event of the SQS event source.
fn lambda_event(messages: &[Value], queue_arn: &str) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "md5OfBody": m["MD5OfBody"], "attributes": {}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).expect("an SQS event")
}

fn failures(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn the_worker_heartbeats_and_completes_the_shipment_task() {
    let moto = orders_aws::moto::session().await;
    let sdk = moto.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let queue = moto_stack::create_warehouse_queue(&moto.endpoint).await;
    let queue_arn = "arn:aws:sqs:us-east-1:123456789012:orders-warehouse";
    let machine = sfn
        .create_state_machine()
        .name("prepare-shipment")
        .role_arn(moto_stack::SAGA_ROLE)
        .definition(prepare_shipment_only(&queue))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStateMachine: {}", orders_aws::sdk::describe(&e)))
        .state_machine_arn()
        .to_owned();
    let input = json!({"orderId": "o-wh-1", "items": [{"productId": "laptop", "quantity": 2}]});
    let run = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .name("ship-1")
        .input(input.to_string())
        .send()
        .await
        .expect("start")
        .execution_arn()
        .to_owned();
    let message = moto_stack::take_message(&moto.endpoint, &queue, PATIENCE)
        .await
        .expect("the shipment request");
    let event = || lambda_event(std::slice::from_ref(&message), queue_arn);

    let worker = Arc::new(Warehouse {
        tokens: TaskTokens::new(sfn.clone()),
        config: WarehouseConfig {
            packing: Duration::from_millis(20),
        },
    });
    assert_eq!(
        failures(&worker.handle_batch(event()).await),
        Vec::<String>::new()
    );

    let deadline = Instant::now() + PATIENCE;
    let done = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(&run)
            .send()
            .await
            .unwrap();
        if d.status() != &ExecutionStatus::Running {
            break d;
        }
        assert!(Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
    let output: Value = serde_json::from_str(done.output().unwrap()).unwrap();
    assert_eq!(output["orderId"], "o-wh-1");
    let tracking = output["shipment"]["trackingNumber"]
        .as_str()
        .expect("tracking");
    let hex = tracking.strip_prefix("TRK-").expect("TRK- prefix");
    assert!(
        hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{tracking}"
    );
    let shipped_at = output["shipment"]["shippedAt"].as_str().expect("shippedAt");
    let parsed = chrono::DateTime::parse_from_rfc3339(shipped_at).expect("RFC 3339");
    assert_eq!(parsed.offset().local_minus_utc(), 0, "UTC: {shipped_at}");
    assert!(shipped_at.ends_with('Z'), "{shipped_at}");
    let shipment: orders_domain::Shipment =
        serde_json::from_value(output["shipment"].clone()).expect("the domain's Shipment");
    assert_eq!(shipment.tracking_number, tracking);
    // It was worked on: the heartbeat came before the success (HeartbeatSeconds applies).
    let history = sfn
        .get_execution_history()
        .execution_arn(&run)
        .send()
        .await
        .unwrap()
        .events()
        .to_vec();
    assert!(
        history
            .iter()
            .any(|e| e.r#type() == &HistoryEventType::TaskSucceeded)
    );

    // SQS delivers it again (at-least-once): the task is done, so the message is too.
    assert_eq!(
        failures(&worker.handle_batch(event()).await),
        Vec::<String>::new()
    );

    // Not a shipment request: reported, so it reaches the dead-letter queue.
    let mut poison = message.clone();
    poison["MessageId"] = json!("poison-1");
    poison["Body"] = json!("{\"orderId\": \"o\"}");
    let response = worker
        .handle_batch(lambda_event(&[poison], queue_arn))
        .await;
    assert_eq!(failures(&response), ["poison-1"]);

    // Step Functions unreachable (a closed loopback port): reported for another delivery.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&sdk)
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(aws_sdk_sfn::config::retry::RetryConfig::disabled())
            .build(),
    );
    let offline = Arc::new(Warehouse {
        tokens: TaskTokens::new(down),
        config: WarehouseConfig {
            packing: Duration::ZERO,
        },
    });
    let id = message["MessageId"].as_str().unwrap().to_owned();
    assert_eq!(failures(&offline.handle_batch(event()).await), [id]);
}
