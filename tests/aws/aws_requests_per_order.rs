//! How many AWS requests one order costs on the AWS runtime, counted on the real SDK clients
//! (an interceptor sees every transmission, retries included) while one order goes through
//! the real code on moto: POST /orders on the DynamoDB store, the stream processor starting
//! its execution, each Task of the happy path as the step Lambda runs it, and a GET.
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
use orders_aws::lambda::stream::handle_batch;
use orders_aws::sfn::StepFunctionsStarter;
use orders_aws::tables::attrs;
use orders_domain::OutboxEvent;
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
    let machine = moto_stack::create_saga(&aws_sdk_sfn::Client::new(&sdk)).await;
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
    let response = handle_batch(
        streams::lambda_event(&records, &stack.stream_arn),
        Arc::new(StepFunctionsStarter::new(sfn, &machine)),
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
    let input = serde_json::to_value(&event.data).unwrap();
    for step in [
        Step::ReserveInventory,
        Step::ProcessPayment,
        Step::SendNotification,
        Step::IssueVoucher,
        Step::MarkCompleted,
    ] {
        steps
            .invoke(json!({"step": step.name(), "input": input}))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", step.name()));
        table.push((format!("step {}", step.name()), counted.take()));
    }

    // 4. Reading it back.
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

/// The same counter for the Step Functions client (another SDK, the same hook).
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

const EXPECTED: [(&str, usize); 9] = [
    ("POST /orders (new)", 1),
    ("POST /orders (replay)", 1),
    ("processor (stream record)", 1),
    ("step ReserveInventory", 4),
    ("step ProcessPayment", 5),
    ("step SendNotification", 3),
    ("step IssueVoucher", 3),
    ("step MarkCompleted", 3),
    ("GET /orders/{id} (with voucher)", 2),
];
