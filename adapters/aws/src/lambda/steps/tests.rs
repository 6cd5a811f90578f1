//! The handler's error mapping, through the handler function over the DynamoDB store on
//! moto, and the configuration checks.

use super::*;
use crate::dynamodb::item::new_order_item;
use chrono::Utc;
use lambda_runtime::Context;
use orders_domain::OrderId;
use orders_domain::store::NewOrder;
use orders_domain::validation::validate_order;
use serde_json::json;

#[test]
fn rates_are_checked() {
    let name = PAYMENT_TRANSIENT_RATE_ENV;
    assert_eq!(rate_from(name, None).unwrap(), 0.0);
    assert_eq!(rate_from(name, Some(" ")).unwrap(), 0.0);
    assert_eq!(rate_from(name, Some("0.25")).unwrap(), 0.25);
    assert_eq!(rate_from(name, Some("1")).unwrap(), 1.0);
    for bad in ["1.5", "-0.1", "ten", "NaN"] {
        let err = rate_from(name, Some(bad)).unwrap_err().to_string();
        assert!(err.contains(name), "{bad}: {err}");
    }
}

#[test]
fn rate_variables_are_the_functions_declared_ones() {
    let mut declared = functions::STEPS.env.to_vec();
    declared.sort_unstable();
    let mut read = vec![PAYMENT_TRANSIENT_RATE_ENV, NOTIFICATION_FAILURE_RATE_ENV];
    read.sort_unstable();
    assert_eq!(declared, read);
}

async fn call(steps: &Steps, payload: Value) -> Result<Value, Diagnostic> {
    handle(steps, LambdaEvent::new(payload, Context::default())).await
}

/// A PENDING order of one unit of a product the catalogue lacks, put in the table as the API
/// writes it, and its saga input.
async fn order(client: &aws_sdk_dynamodb::Client, names: &TableNames, method: &str) -> Value {
    let body = json!({
        "customerId": "c-lambda",
        "items": [{"productId": "nowhere", "quantity": 1, "price": 20}],
        "paymentMethod": method,
    });
    let order = NewOrder::from_draft(validate_order(&body).expect("a valid order"), Utc::now());
    client
        .put_item()
        .table_name(&names.orders)
        .set_item(Some(new_order_item(&order).expect("encodable")))
        .send()
        .await
        .expect("put order");
    serde_json::to_value(order.saga_input()).unwrap()
}

#[tokio::test]
async fn step_errors_reach_step_functions_under_their_names() {
    let moto = crate::moto::session().await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let names = TableNames::with_prefix("lambda-");
    crate::provision::create_tables(&client, &names)
        .await
        .unwrap();
    let steps = Steps {
        store: Arc::new(DynamoStepStore::new(client.clone(), names.clone())),
        settings: StepSettings::default(),
    };

    let bad = call(&steps, json!({"step": "Teleport", "input": {}}))
        .await
        .unwrap_err();
    assert_eq!(bad.error_type, "InvalidInput");

    let declined = order(&client, &names, "pm_card_chargeDeclined").await;
    let err = call(
        &steps,
        json!({"step": "ReserveInventory", "input": declined}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "OutOfStock");
    assert!(
        err.error_message.contains("nowhere"),
        "{}",
        err.error_message
    );
    let err = call(&steps, json!({"step": "ProcessPayment", "input": declined}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "PaymentDeclined");

    let paying = order(&client, &names, "pm_card_visa").await;
    let notified = call(&steps, json!({"step": "SendNotification", "input": paying}))
        .await
        .unwrap_or_else(|e| panic!("{}: {}", e.error_type, e.error_message));
    assert_eq!(notified, json!({"notified": true}));
    // PENDING cannot jump to COMPLETED.
    let err = call(&steps, json!({"step": "MarkCompleted", "input": paying}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidTransition");

    let missing = json!({
        "orderId": OrderId::new(), "customerId": "c-lambda", "items": [],
        "totalCents": 1, "paymentMethod": "pm_card_visa",
    });
    let err = call(&steps, json!({"step": "MarkCompleted", "input": missing}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidInput", "{}", err.error_message);
}
