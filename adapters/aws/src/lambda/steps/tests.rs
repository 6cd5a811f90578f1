//! The handler's error mapping and RequestPayment's route through the provider, through the
//! handler function over the DynamoDB store on moto, and the configuration checks. The
//! provider is a recording one (the port `PaymentProvider`): the HTTP client's own wire
//! format is tested in the workflow crate.

use super::*;
use crate::dynamodb::item::new_order_item;
use chrono::Utc;
use lambda_runtime::Context;
use orders_domain::OrderId;
use orders_domain::store::NewOrder;
use orders_domain::validation::validate_order;
use orders_workflow::steps::payment::{ChargeRequest, ProviderError};
use serde_json::json;
use std::sync::Mutex;

/// Records the charges asked for and answers with the scripted result.
struct Provider {
    asked: Mutex<Vec<ChargeRequest>>,
    answer: Result<(), ProviderError>,
}

#[async_trait]
impl PaymentProvider for Provider {
    async fn request_charge(&self, request: &ChargeRequest) -> Result<(), ProviderError> {
        self.asked.lock().unwrap().push(request.clone());
        self.answer.clone()
    }
}

fn provider(answer: Result<(), ProviderError>) -> Arc<Provider> {
    Arc::new(Provider {
        asked: Mutex::new(Vec::new()),
        answer,
    })
}

fn function(steps: &Arc<Steps>, provider: &Arc<Provider>) -> StepsFunction {
    StepsFunction::new(steps.clone(), provider.clone())
}

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
fn the_variables_read_are_the_functions_declared_ones() {
    let mut declared = functions::STEPS.env.to_vec();
    declared.sort_unstable();
    let mut read = vec![
        PAYMENT_TRANSIENT_RATE_ENV,
        NOTIFICATION_FAILURE_RATE_ENV,
        PAYMENT_PROVIDER_URL_ENV,
        PAYMENT_PROVIDER_KEY_ENV,
        functions::RETENTION_DAYS_ENV,
    ];
    read.sort_unstable();
    assert_eq!(declared, read);
}

#[test]
fn the_provider_key_is_optional_but_checked_when_set() {
    assert_eq!(provider_key_from(None).unwrap(), None);
    assert_eq!(provider_key_from(Some("  ")).unwrap(), None);
    let err = provider_key_from(Some("sk_short")).unwrap_err().to_string();
    assert!(err.contains(PAYMENT_PROVIDER_KEY_ENV), "{err}");
    let key = provider_key_from(Some("sk_test_0123456789abcdef")).unwrap();
    assert_eq!(key.unwrap().expose(), "sk_test_0123456789abcdef");
}

#[test]
fn the_provider_url_is_required_and_checked() {
    let err = provider_url_from(None).unwrap_err().to_string();
    assert!(err.contains(PAYMENT_PROVIDER_URL_ENV), "{err}");
    for bad in [" ", "not a url", "ftp://provider.example/", "file:///tmp/x"] {
        let err = provider_url_from(Some(bad)).unwrap_err().to_string();
        assert!(err.contains(PAYMENT_PROVIDER_URL_ENV), "{bad}: {err}");
    }
    // A base with a path keeps it: `charges` is joined below it.
    let url = provider_url_from(Some("https://pay.example/v1")).unwrap();
    assert_eq!(
        url.join("charges").unwrap().as_str(),
        "https://pay.example/v1/charges"
    );
    let url = provider_url_from(Some("http://127.0.0.1:8091/")).unwrap();
    assert_eq!(
        url.join("charges").unwrap().as_str(),
        "http://127.0.0.1:8091/charges"
    );
}

async fn call(function: &StepsFunction, payload: Value) -> Result<Value, Diagnostic> {
    handle(function, LambdaEvent::new(payload, Context::default())).await
}

/// A PENDING order of one unit of a product the catalogue lacks, put in the table as the API
/// writes it, and its saga input.
async fn order(client: &aws_sdk_dynamodb::Client, names: &TableNames, method: &str) -> Value {
    order_of(client, names, method, "nowhere").await
}

async fn order_of(
    client: &aws_sdk_dynamodb::Client,
    names: &TableNames,
    method: &str,
    product: &str,
) -> Value {
    let body = json!({
        "customerId": "c-lambda",
        "items": [{"productId": product, "quantity": 1, "price": 20}],
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
    let steps = Arc::new(Steps {
        store: Arc::new(DynamoStepStore::new(client.clone(), names.clone())),
        settings: StepSettings::default(),
    });
    let steps = function(&steps, &provider(Ok(())));

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
    // Not a step any more: payments are RequestPayment with a token.
    let err = call(&steps, json!({"step": "ProcessPayment", "input": declined}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidInput");

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

async fn stock(client: &aws_sdk_dynamodb::Client, names: &TableNames, product: &str, n: i64) {
    use crate::tables::attrs;
    use aws_sdk_dynamodb::types::AttributeValue;
    client
        .put_item()
        .table_name(&names.inventory)
        .item(attrs::inventory::ID, AttributeValue::S(product.into()))
        .item(
            attrs::inventory::AVAILABLE,
            AttributeValue::N(n.to_string()),
        )
        .send()
        .await
        .expect("put stock");
}

#[tokio::test]
async fn request_payment_records_the_token_then_asks_the_provider() {
    let moto = crate::moto::session().await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let names = TableNames::with_prefix("lambda-pay-");
    crate::provision::create_tables(&client, &names)
        .await
        .unwrap();
    stock(&client, &names, "widget", 10).await;
    let steps = Arc::new(Steps {
        store: Arc::new(DynamoStepStore::new(client.clone(), names.clone())),
        settings: StepSettings::default(),
    });
    let accepted = provider(Ok(()));
    let f = function(&steps, &accepted);
    let input = order_of(&client, &names, "pm_card_visa", "widget").await;
    call(&f, json!({"step": "ReserveInventory", "input": input}))
        .await
        .unwrap_or_else(|e| panic!("{}: {}", e.error_type, e.error_message));

    // Without its token the step cannot be answered later: refused before anything is asked.
    let err = call(&f, json!({"step": "RequestPayment", "input": input}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidInput", "{}", err.error_message);
    assert!(accepted.asked.lock().unwrap().is_empty());

    let payload = json!({"step": "RequestPayment", "input": input, "taskToken": "tok-1"});
    let out = call(&f, payload.clone())
        .await
        .unwrap_or_else(|e| panic!("{}: {}", e.error_type, e.error_message));
    let order_id: OrderId = serde_json::from_value(input["orderId"].clone()).unwrap();
    let payment_id = orders_domain::PaymentId::for_order(order_id);
    assert_eq!(out["paymentId"], json!(payment_id));
    {
        let asked = accepted.asked.lock().unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].payment_id, payment_id);
        assert_eq!(asked[0].amount_cents, input["totalCents"].as_i64().unwrap());
        assert_eq!(asked[0].payment_method, "pm_card_visa");
    }

    // The provider unavailable is `Transient` (retried by the Task); a refusal is final.
    let down = function(
        &steps,
        &provider(Err(ProviderError::Unavailable("503".into()))),
    );
    let err = call(&down, payload.clone()).await.unwrap_err();
    assert_eq!(err.error_type, "Transient", "{}", err.error_message);
    let refusing = function(&steps, &provider(Err(ProviderError::Refused("400".into()))));
    let err = call(&refusing, payload).await.unwrap_err();
    assert_eq!(
        err.error_type,
        orders_workflow::steps::payment::PROVIDER_REFUSED,
        "{}",
        err.error_message
    );
}
