//! The four uploaded artifacts, booted: cargo-lambda's arm64 `bootstrap` of each function,
//! started (under qemu) with the environment Lambda gives it, against a stand-in of the
//! Lambda Runtime API, with DynamoDB, Step Functions, EventBridge and SQS on moto behind it. Each must answer the
//! event its trigger sends (API Gateway v2, a DynamoDB Streams batch, a Task input, an SQS
//! batch) the way
//! the deployment relies on, and each must refuse to start, naming the variable, without its
//! configuration.
//!
//! Ignored in the normal run: they need the artifacts, which `scripts/lambda-boot.sh` builds
//! (arm64) and then runs these with `ORDERS_LAMBDA_DIR` set; `--native` lays out the host
//! release builds of the same binaries that way instead (the CI run: no second build). Without
//! that variable they fail rather than pass on nothing.

use orders_test_support::dynamodb::{self as support_dynamodb, Stack};
use orders_test_support::moto_stack;
use orders_test_support::runtime_api::{self, Function, Posted, RuntimeApi};
use orders_test_support::streams;

use axum::body::Body;
use axum::http::Request;
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use orders_aws::functions::{self, FunctionSpec};
use orders_aws::tables::{ORDERS, SAGA, STATE_MACHINE_ARN_ENV, TableNames, attrs};
use orders_domain::OutboxEvent;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// A cold start under emulation plus the first SDK requests: seconds here, so this is slack.
const ANSWER: Duration = Duration::from_secs(120);
const ORDER: &str =
    r#"{"customerId":"boot-1","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}"#;

/// The Standard Webhooks reference secret.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PROVIDER_KEY: &str = "sk_test_lambda_boot_provider_key";
/// The processor's bus, created on moto by the test that publishes to it.
const EVENT_BUS: &str = "boot-events";

/// The bootstrap of `spec`'s binary with the names of the tables it uses.
fn function(spec: FunctionSpec, api: &RuntimeApi, endpoint: &str, tables: &TableNames) -> Command {
    let mut cmd = runtime_api::bootstrap(spec.binary, &api.address, endpoint);
    for table in spec.tables {
        cmd.env(table.env_var, tables.name_of(*table));
    }
    if spec.binary == functions::API.binary {
        // As deployed: API Gateway verifies tokens, the function reads the claims it passes.
        cmd.env(functions::AUTH_ENV, "jwt");
        cmd.env(functions::PAYMENT_WEBHOOK_SECRET_ENV, WEBHOOK_SECRET);
        // Well-formed; it is asked only by a redrive, which no test here sends.
        cmd.env(
            STATE_MACHINE_ARN_ENV,
            "arn:aws:states:us-east-1:123456789012:stateMachine:boot-saga",
        );
    }
    if spec.binary == functions::PROCESSOR.binary {
        // Well-formed; the test that starts a saga sets the ARN of the one it created.
        cmd.env(
            STATE_MACHINE_ARN_ENV,
            "arn:aws:states:us-east-1:123456789012:stateMachine:boot-saga",
        );
        cmd.env(functions::EVENT_BUS_NAME_ENV, EVENT_BUS);
    }
    if spec.binary == functions::STEPS.binary {
        // Nothing listens there: no test here asks the provider.
        cmd.env(functions::PAYMENT_PROVIDER_URL_ENV, "http://127.0.0.1:9/");
    }
    if spec.binary == functions::PAYMENT_SIMULATOR.binary {
        // Nothing listens there unless a test points it at its own receiver.
        cmd.env(
            functions::PAYMENT_WEBHOOK_URL_ENV,
            "http://127.0.0.1:9/webhooks/payments",
        );
        cmd.env(functions::PAYMENT_WEBHOOK_SECRET_ENV, WEBHOOK_SECRET);
        cmd.env(functions::PAYMENT_PROVIDER_KEY_ENV, PROVIDER_KEY);
    }
    cmd
}

/// An HTTP API (payload 2.0) event for `POST /orders`, with the claims API Gateway's JWT
/// authorizer passes once it has verified the token.
fn post_orders_event(key: &str, body: &str) -> Value {
    let headers = json!({"content-type": "application/json", "x-idempotency-key": key});
    let claims = Some(json!({"sub": "boot-1"}));
    orders_test_support::apigw::http_api_event("POST", "/orders", "", claims, headers, Some(body))
}

/// The answer's body, or a failure that shows what came back instead.
fn response(posted: Posted) -> Value {
    match posted {
        Posted::Response { body, .. } => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// An order created through the API's router on the stack's store (the real create
/// transaction), and the outbox event its stream record carries: the processor's input, and
/// in its data the saga's.
async fn created_order(stack: &Stack, stream_arn: &str, endpoint: &str) -> (Value, OutboxEvent) {
    let app = router(AppState {
        store: stack.store.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings::default()),
    });
    let request = Request::post("/orders")
        .header("content-type", "application/json")
        .header("x-idempotency-key", "boot-created")
        .body(Body::from(ORDER))
        .unwrap();
    assert_eq!(app.oneshot(request).await.unwrap().status(), 201);
    let records = streams::stream_records(endpoint, stream_arn).await;
    assert_eq!(records.len(), 1, "one outbox INSERT: {records:#?}");
    let text = records[0]["dynamodb"]["NewImage"][attrs::outbox::EVENT]["S"]
        .as_str()
        .expect("the event attribute");
    let event = OutboxEvent::decode(text.as_bytes()).expect("a CloudEvent");
    let mut record = records[0].clone();
    // What Lambda adds to each record it delivers.
    record["eventSourceARN"] = json!(stream_arn);
    (json!({ "Records": [record] }), event)
}

async fn available(stack: &Stack, product: &str) -> i64 {
    let item = stack
        .raw
        .get_item()
        .table_name(&stack.names.inventory)
        .key(
            attrs::inventory::ID,
            aws_sdk_dynamodb::types::AttributeValue::S(product.into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the product is stocked");
    item[attrs::inventory::AVAILABLE]
        .as_n()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
#[ignore = "needs the arm64 bootstraps: run scripts/lambda-boot.sh"]
async fn the_api_answers_post_orders_with_201_and_its_location() {
    runtime_api::lambda_dir();
    let moto = orders_aws::moto::session().await;
    let stack = support_dynamodb::stack(&moto, "boot-api-", |c| c).await;
    let api = RuntimeApi::start(functions::API.binary).await;
    let _running = Function::spawn(
        functions::API.binary,
        function(functions::API, &api, &moto.endpoint, &stack.names),
    );

    let answer = response(
        api.invoke(post_orders_event("boot-key-1", ORDER), ANSWER)
            .await,
    );
    assert_eq!(answer["statusCode"], 201, "{answer:#}");
    let body: Value = serde_json::from_str(answer["body"].as_str().expect("a text body")).unwrap();
    let id = body["orderId"].as_str().expect("the order's id");
    assert_eq!(answer["headers"]["location"], format!("/orders/{id}"));
    assert_eq!(body["status"], "PENDING");
    assert_eq!(
        available(&stack, "laptop").await,
        1_000_000,
        "nothing is reserved before the saga runs"
    );
    let stored = stack
        .raw
        .get_item()
        .table_name(&stack.names.orders)
        .key(
            attrs::order::ID,
            aws_sdk_dynamodb::types::AttributeValue::S(id.into()),
        )
        .send()
        .await
        .unwrap();
    assert!(stored.item.is_some(), "the order is in the orders table");
}

/// The bus on moto, with a rule sending every event of the service to a queue; its URL.
async fn event_bus(sdk: &aws_config::SdkConfig, endpoint: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    events
        .create_event_bus()
        .name(EVENT_BUS)
        .send()
        .await
        .unwrap();
    let created =
        moto_stack::sqs(endpoint, "CreateQueue", json!({"QueueName": "boot-events"})).await;
    let url = created["QueueUrl"].as_str().unwrap().to_owned();
    let attributes = json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]});
    let arn =
        moto_stack::sqs(endpoint, "GetQueueAttributes", attributes).await["Attributes"]["QueueArn"]
            .as_str()
            .unwrap()
            .to_owned();
    let pattern = json!({"source": [orders_aws::eventbridge::SOURCE]});
    let rule = events.put_rule().name("boot-all").event_bus_name(EVENT_BUS);
    rule.event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("q")
        .arn(arn);
    events
        .put_targets()
        .rule("boot-all")
        .event_bus_name(EVENT_BUS)
        .targets(target.build().unwrap())
        .send()
        .await
        .unwrap();
    url
}

#[tokio::test]
#[ignore = "needs the arm64 bootstraps: run scripts/lambda-boot.sh"]
async fn the_processor_starts_the_saga_of_a_stream_insert_and_publishes_it() {
    runtime_api::lambda_dir();
    let stack = moto_stack::stack("boot-proc-", |c| c).await;
    let sdk = stack.moto.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machine = moto_stack::create_saga(&sfn, &stack.moto.endpoint)
        .await
        .arn;
    let endpoint = stack.moto.endpoint.clone();
    let queue = event_bus(&sdk, &endpoint).await;
    let (batch, event) = created_order(&stack.dynamodb, &stack.stream_arn, &endpoint).await;

    let api = RuntimeApi::start(functions::PROCESSOR.binary).await;
    let mut cmd = function(functions::PROCESSOR, &api, &endpoint, &stack.dynamodb.names);
    cmd.env(STATE_MACHINE_ARN_ENV, &machine);
    let _running = Function::spawn(functions::PROCESSOR.binary, cmd);

    let answer = response(api.invoke(batch, ANSWER).await);
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer:#}");
    let executions = sfn
        .list_executions()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap()
        .executions;
    let names: Vec<&str> = executions.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [event.id.to_string()],
        "one execution, named by the event"
    );
    // moto's PutEvents delivers to the rule's queue before it answers.
    let published = moto_stack::take_message(&endpoint, &queue, Duration::from_secs(2))
        .await
        .expect("order.created reached the bus");
    let published: Value = serde_json::from_str(published["Body"].as_str().unwrap()).unwrap();
    assert_eq!(published["detail"]["id"], event.id.to_string());
    assert_eq!(published["detail-type"], "order.created");
}

#[tokio::test]
#[ignore = "needs the arm64 bootstraps: run scripts/lambda-boot.sh"]
async fn the_steps_function_runs_a_step_and_names_a_failed_one() {
    runtime_api::lambda_dir();
    let stack = moto_stack::stack("boot-steps-", |c| c).await;
    let endpoint = stack.moto.endpoint.clone();
    let (_, event) = created_order(&stack.dynamodb, &stack.stream_arn, &endpoint).await;
    let input = serde_json::to_value(&event.data).unwrap();

    let api = RuntimeApi::start(functions::STEPS.binary).await;
    let _running = Function::spawn(
        functions::STEPS.binary,
        function(functions::STEPS, &api, &endpoint, &stack.dynamodb.names),
    );

    let reserve = json!({"step": "ReserveInventory", "input": input});
    let answer = response(api.invoke(reserve, ANSWER).await);
    assert_eq!(answer, json!({"reserved": 1}));
    assert_eq!(available(&stack.dynamodb, "laptop").await, 999_999);
    // The same instance takes the next event: the runtime loop goes on after an answer, and a
    // failure reaches Step Functions under the name its Retry and Catch match on.
    let unknown = json!({"step": "Teleport", "input": input});
    match api.invoke(unknown, ANSWER).await {
        Posted::Error { body, .. } => assert_eq!(body["errorType"], "InvalidInput", "{body}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the arm64 bootstraps: run scripts/lambda-boot.sh"]
async fn each_function_refuses_to_start_without_its_configuration_and_names_it() {
    runtime_api::lambda_dir();
    let tables = TableNames::with_prefix("boot-");
    // The processor reads no table: it requires the state machine's ARN and the bus's name.
    // The warehouse requires nothing; a packing time that is not one stops it all the same.
    let cases = [
        (functions::API, ORDERS.env_var, None),
        (functions::API, functions::PAYMENT_WEBHOOK_SECRET_ENV, None),
        (functions::API, STATE_MACHINE_ARN_ENV, None),
        (functions::PROCESSOR, STATE_MACHINE_ARN_ENV, None),
        (functions::PROCESSOR, functions::EVENT_BUS_NAME_ENV, None),
        (
            functions::PROCESSOR,
            functions::EVENT_BUS_NAME_ENV,
            Some("orders/events"),
        ),
        (functions::STEPS, SAGA.env_var, None),
        (functions::STEPS, functions::PAYMENT_PROVIDER_URL_ENV, None),
        (
            functions::WAREHOUSE,
            functions::WAREHOUSE_PACKING_MS_ENV,
            Some("ten"),
        ),
        (
            functions::PAYMENT_SIMULATOR,
            functions::PAYMENT_PROVIDER_KEY_ENV,
            None,
        ),
        (
            functions::PAYMENT_SIMULATOR,
            functions::PAYMENT_WEBHOOK_URL_ENV,
            None,
        ),
    ];
    for (spec, missing, bad) in cases {
        let api = RuntimeApi::start(spec.binary).await;
        // Nothing listens on port 9: a function that got as far as a request would fail later.
        let mut cmd = function(spec, &api, "http://127.0.0.1:9", &tables);
        match bad {
            Some(value) => cmd.env(missing, value),
            None => cmd.env_remove(missing),
        };
        let mut running = Function::spawn(spec.binary, cmd);
        let (status, log) = running
            .exit_within(ANSWER)
            .await
            .unwrap_or_else(|| panic!("{} kept running without {missing}", spec.binary));
        assert!(!status.success(), "{} exited {status}", spec.binary);
        assert!(
            log.contains(missing),
            "{} did not name {missing}:\n{log}",
            spec.binary
        );
        assert_eq!(
            api.polls(),
            0,
            "{} asked for an event unconfigured",
            spec.binary
        );
    }
}

/// A function URL event (payload 2.0, as an HTTP API's) for `POST /charges`.
fn charge_event(authorization: &str) -> Value {
    let order = orders_domain::OrderId::new();
    let payment = orders_domain::PaymentId::for_order(order);
    let body = json!({"paymentId": payment, "orderId": order, "amountCents": 4_200,
                      "currency": "EUR", "paymentMethod": "pm_card_visa"});
    let headers = json!({"content-type": "application/json", "idempotency-key": payment,
                         "authorization": authorization});
    let body = body.to_string();
    orders_test_support::apigw::http_api_event("POST", "/charges", "", None, headers, Some(&body))
}

#[tokio::test]
#[ignore = "needs the arm64 bootstraps: run scripts/lambda-boot.sh"]
async fn the_payment_simulator_answers_a_charge_after_its_signed_webhook() {
    runtime_api::lambda_dir();
    // The API's webhook route, played by a listener of the test's that answers 204.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook_url = format!(
        "http://{}/webhooks/payments",
        listener.local_addr().unwrap()
    );
    let (seen, mut webhooks) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/webhooks/payments",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: String| async move {
                let _ = seen.send((headers, body));
                axum::http::StatusCode::NO_CONTENT
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let api = RuntimeApi::start(functions::PAYMENT_SIMULATOR.binary).await;
    let tables = TableNames::with_prefix("boot-");
    let mut cmd = function(
        functions::PAYMENT_SIMULATOR,
        &api,
        "http://127.0.0.1:9",
        &tables,
    );
    cmd.env(functions::PAYMENT_WEBHOOK_URL_ENV, &webhook_url);
    let _running = Function::spawn(functions::PAYMENT_SIMULATOR.binary, cmd);

    let refused = response(
        api.invoke(charge_event("Bearer sk_test_someone_elses"), ANSWER)
            .await,
    );
    assert_eq!(refused["statusCode"], 401, "{refused:#}");
    assert!(
        webhooks.try_recv().is_err(),
        "a refused charge was answered"
    );
    let accepted = response(
        api.invoke(charge_event(&format!("Bearer {PROVIDER_KEY}")), ANSWER)
            .await,
    );
    assert_eq!(accepted["statusCode"], 202, "{accepted:#}");
    let (headers, body) = webhooks
        .try_recv()
        .expect("the webhook was delivered before the charge was answered");
    let secret = orders_domain::standard_webhooks::WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    orders_domain::standard_webhooks::verify(
        &secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        body.as_bytes(),
        chrono::Utc::now(),
    )
    .expect("signed with the API's secret");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["type"],
        "payment.succeeded"
    );
}

#[tokio::test]
#[ignore = "needs the arm64 bootstraps: run scripts/lambda-boot.sh"]
async fn the_warehouse_answers_an_sqs_batch_per_message() {
    runtime_api::lambda_dir();
    let moto = orders_aws::moto::session().await;
    let api = RuntimeApi::start(functions::WAREHOUSE.binary).await;
    let mut cmd = function(
        functions::WAREHOUSE,
        &api,
        &moto.endpoint,
        &TableNames::with_prefix("boot-"),
    );
    cmd.env(functions::WAREHOUSE_PACKING_MS_ENV, "0");
    let _running = Function::spawn(functions::WAREHOUSE.binary, cmd);
    // A request whose task no execution has (done: dropped) and one that is not a request
    // (reported, for the dead-letter queue).
    let record = |id: &str, body: Value| {
        json!({"messageId": id, "receiptHandle": "r", "body": body.to_string(), "attributes": {},
               "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders-warehouse"})
    };
    let batch = json!({"Records": [
        record("m-stale", json!({"orderId": "o", "items": [], "taskToken": "no-such-task"})),
        record("m-poison", json!({"orderId": "o"})),
    ]});
    let answer = response(api.invoke(batch, ANSWER).await);
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "m-poison"}]),
        "{answer:#}"
    );
}
