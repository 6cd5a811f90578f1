//! The saga store contract suite against the DynamoDB store on moto, and the saga's step
//! handlers driven over that store through a completed and a compensated order.
//!
//! Orders are written here item by item with the shared attribute names, not through the
//! DynamoDB order store, so these tests depend only on the table contract.

use orders_test_support::saga_contract;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use orders_aws::TableNames;
use orders_aws::dynamodb::DynamoStepStore;
use orders_aws::dynamodb::attr::{self, Item};
use orders_aws::moto::{self, MotoSession};
use orders_aws::tables::attrs;
use orders_domain::lifecycle::{
    PaymentResult, PaymentStatus, PaymentWebhook, Shipment, WebhookOutcome,
};
use orders_domain::store::OrderStore;
use orders_domain::time::format_millis as format_ts;
use orders_domain::time::parse_ts;
use orders_domain::{Cents, PaymentId};
use orders_domain::{OrderId, OrderStatus, VoucherCode};
use orders_workflow::steps::Stock;
use orders_workflow::steps::{Step, StepError, StepSettings, Steps};
use saga_contract::{PaymentView, SagaFixture, StepView, VoucherView, assert_step, at};
use serde_json::{Value, json};
use std::sync::Arc;

struct Dynamo {
    client: Client,
    names: TableNames,
    store: Arc<DynamoStepStore>,
    _moto: MotoSession,
}

async fn dynamodb() -> Dynamo {
    let moto = moto::session().await;
    let client = Client::new(&moto.sdk_config().await);
    let names = TableNames::with_prefix("saga-");
    orders_aws::provision::create_tables(&client, &names)
        .await
        .expect("create tables");
    Dynamo {
        store: Arc::new(DynamoStepStore::new(client.clone(), names.clone())),
        client,
        names,
        _moto: moto,
    }
}

impl Dynamo {
    async fn get(&self, table: &str, key: &str, value: &str) -> Option<Item> {
        self.client
            .get_item()
            .table_name(table)
            .key(key, attr::s(value))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }

    async fn put(&self, table: &str, item: Item) {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put item");
    }

    async fn saga_item(&self, id: OrderId, record: &str) -> Option<Item> {
        self.client
            .get_item()
            .table_name(&self.names.saga)
            .key(attrs::saga::ORDER, attr::s(id.to_string()))
            .key(attrs::saga::RECORD, attr::s(record))
            .consistent_read(true)
            .send()
            .await
            .expect("get saga item")
            .item
    }

    async fn order_item(&self, id: OrderId) -> Item {
        self.get(&self.names.orders, attrs::order::ID, &id.to_string())
            .await
            .expect("order item")
    }

    /// A PENDING order (version 1) as the API writes it, with `input`'s items and total.
    async fn put_order(&self, input: &Value) -> OrderId {
        use attrs::order as o;
        let id: OrderId = serde_json::from_value(input["orderId"].clone()).unwrap();
        let now = format_ts(Utc::now());
        let total = input["totalCents"].as_i64().unwrap();
        let mut item = Item::from([
            (o::ID.to_owned(), attr::s(id.to_string())),
            (
                o::CUSTOMER.to_owned(),
                attr::s(input["customerId"].as_str().unwrap()),
            ),
            (o::CREATED_KEY.to_owned(), attr::s(format!("{now}#{id}"))),
            (o::CREATED_AT.to_owned(), attr::s(&now)),
            (o::UPDATED_AT.to_owned(), attr::s(&now)),
            (o::ITEMS.to_owned(), attr::s(stored_items(&input["items"]))),
            (o::SUBTOTAL.to_owned(), attr::n(total)),
            (o::DISCOUNT.to_owned(), attr::n(0)),
            (o::TOTAL.to_owned(), attr::n(total)),
            (
                o::PAYMENT_METHOD.to_owned(),
                attr::s(input["paymentMethod"].as_str().unwrap()),
            ),
            (o::STATUS.to_owned(), attr::s(OrderStatus::Pending.as_str())),
            (o::VERSION.to_owned(), attr::n(1)),
        ]);
        if let Some(code) = input["voucherCode"].as_str() {
            item.insert(o::VOUCHER_CODE.to_owned(), attr::s(code));
        }
        self.put(&self.names.orders, item).await;
        id
    }
}

/// The saga's `{productId, quantity}` lines as the order item stores them (with a price, here
/// 1.00 EUR each, which the steps never read), so the API can read the order back.
fn stored_items(items: &Value) -> String {
    let lines: Vec<Value> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!({"productId": i["productId"], "quantity": i["quantity"], "priceCents": 100}))
        .collect();
    Value::Array(lines).to_string()
}

fn saga_input(customer: &str, items: Value, total_cents: i64, voucher: Option<&str>) -> Value {
    let mut input = json!({
        "orderId": OrderId::new(),
        "customerId": customer,
        "items": items,
        "totalCents": total_cents,
        "paymentMethod": "pm_card_visa",
    });
    if let Some(code) = voucher {
        input["voucherCode"] = json!(code);
    }
    input
}

#[async_trait]
impl SagaFixture for Dynamo {
    fn store(&self) -> saga_contract::Driver {
        saga_contract::Driver::Direct(self.store.clone())
    }

    async fn new_order(&self, customer: &str) -> OrderId {
        let items = json!([{"productId": "laptop", "quantity": 1}]);
        self.put_order(&saga_input(customer, items, 12_000, None))
            .await
    }

    async fn set_stock(&self, product: &str, available: i64) {
        use attrs::inventory as i;
        let item = Item::from([
            (i::ID.to_owned(), attr::s(product)),
            (i::AVAILABLE.to_owned(), attr::n(available)),
            (i::UPDATED_AT.to_owned(), attr::s(format_ts(Utc::now()))),
        ]);
        self.put(&self.names.inventory, item).await;
    }

    async fn stock(&self, product: &str) -> Option<i64> {
        let item = self
            .get(&self.names.inventory, attrs::inventory::ID, product)
            .await?;
        Some(attr::get_n(&item, attrs::inventory::AVAILABLE).unwrap())
    }

    async fn order(&self, id: OrderId) -> (OrderStatus, i64, Option<String>) {
        use attrs::order as o;
        let item = self.order_item(id).await;
        (
            attr::get_s(&item, o::STATUS).unwrap().parse().unwrap(),
            attr::get_n(&item, o::VERSION).unwrap(),
            attr::opt_s(&item, o::FAILURE_REASON)
                .unwrap()
                .map(str::to_owned),
        )
    }

    async fn step(&self, id: OrderId, step: Step) -> Option<StepView> {
        use attrs::order as o;
        let item = self.order_item(id).await;
        let entry = attr::get_map(&item, o::STEPS).unwrap()?.get(step.name())?;
        let AttributeValue::M(entry) = entry else {
            panic!("step entry is not a map: {entry:?}");
        };
        Some(StepView {
            status: attr::get_s(entry, o::STEP_STATUS).unwrap().to_owned(),
            attempts: attr::get_n(entry, o::STEP_ATTEMPTS).unwrap(),
            error: attr::opt_s(entry, o::STEP_ERROR)
                .unwrap()
                .map(str::to_owned),
        })
    }

    async fn voucher(&self, code: &VoucherCode) -> Option<VoucherView> {
        use attrs::voucher as v;
        let item = self
            .get(&self.names.vouchers, v::CODE, code.as_str())
            .await?;
        Some(VoucherView {
            status: attr::get_s(&item, v::STATUS).unwrap().parse().unwrap(),
            redeemed_by: attr::opt_s(&item, v::REDEEMED_BY)
                .unwrap()
                .map(str::to_owned),
        })
    }

    async fn redeemed_voucher(&self, code: &VoucherCode, customer: &str, by: OrderId) {
        use attrs::voucher as v;
        let now = format_ts(Utc::now());
        let item = Item::from([
            (v::CODE.to_owned(), attr::s(code.as_str())),
            (v::CUSTOMER.to_owned(), attr::s(customer)),
            (v::CREATED_KEY.to_owned(), attr::s(format!("{now}#{code}"))),
            (v::DISCOUNT.to_owned(), attr::n(500)),
            (v::STATUS.to_owned(), attr::s("USED")),
            (v::EARNED_BY.to_owned(), attr::s(OrderId::new().to_string())),
            (v::REDEEMED_BY.to_owned(), attr::s(by.to_string())),
            (v::CREATED_AT.to_owned(), attr::s(&now)),
            (v::UPDATED_AT.to_owned(), attr::s(&now)),
        ]);
        self.put(&self.names.vouchers, item).await;
    }

    async fn payment(&self, id: OrderId) -> Option<PaymentView> {
        use attrs::saga as p;
        let item = self.saga_item(id, p::PAYMENT).await?;
        Some(PaymentView {
            payment_id: PaymentId::from_trusted(attr::get_s(&item, p::PAYMENT_ID).unwrap().into()),
            status: attr::get_s(&item, p::STATUS).unwrap().parse().unwrap(),
            amount: Cents(attr::get_n(&item, p::AMOUNT).unwrap()),
            token: attr::opt_s(&item, p::TASK_TOKEN)
                .unwrap()
                .map(str::to_owned),
        })
    }

    async fn settle_payment(&self, id: OrderId, status: PaymentStatus) {
        // Both the saga record and the order's mirror, as the webhook's transaction writes them.
        self.client
            .update_item()
            .table_name(&self.names.saga)
            .key(attrs::saga::ORDER, attr::s(id.to_string()))
            .key(attrs::saga::RECORD, attr::s(attrs::saga::PAYMENT))
            .update_expression("SET #s = :s")
            .condition_expression("#s = :requested")
            .expression_attribute_names("#s", attrs::saga::STATUS)
            .expression_attribute_values(":s", attr::s(status.as_str()))
            .expression_attribute_values(":requested", attr::s(PaymentStatus::Requested.as_str()))
            .send()
            .await
            .expect("a REQUESTED payment to settle");
        self.client
            .update_item()
            .table_name(&self.names.orders)
            .key(attrs::order::ID, attr::s(id.to_string()))
            .update_expression("SET #ps = :s")
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#ps", attrs::order::PAYMENT_STATUS)
            .expression_attribute_names("#id", attrs::order::ID)
            .expression_attribute_values(":s", attr::s(status.as_str()))
            .send()
            .await
            .expect("the order's payment mirror");
    }

    async fn request_cancel(&self, id: OrderId, reason: Option<&str>) {
        use attrs::order as o;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.names.orders)
            .key(o::ID, attr::s(id.to_string()))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", o::ID)
            .expression_attribute_names("#at", o::CANCEL_REQUESTED_AT)
            .expression_attribute_names("#v", o::VERSION)
            .expression_attribute_values(":at", attr::s(format_ts(Utc::now())))
            .expression_attribute_values(":one", attr::n(1));
        update = match reason {
            Some(r) => update
                .update_expression("SET #at = :at, #r = :r, #v = #v + :one")
                .expression_attribute_names("#r", o::CANCEL_REASON)
                .expression_attribute_values(":r", attr::s(r)),
            None => update.update_expression("SET #at = :at, #v = #v + :one"),
        };
        update.send().await.expect("an order to cancel");
    }

    async fn shipment(&self, id: OrderId) -> Option<Shipment> {
        use attrs::order as o;
        let item = self.order_item(id).await;
        let tracking = attr::opt_s(&item, o::TRACKING_NUMBER).unwrap()?;
        Some(Shipment {
            tracking_number: tracking.to_owned(),
            shipped_at: parse_ts(attr::get_s(&item, o::SHIPPED_AT).unwrap()).unwrap(),
        })
    }
}

// Every case, the racing ones included: `orders_aws::moto` hands moto one request at a time,
// which gives it the per-request atomicity DynamoDB has, so the races exercise the store's
// read / conditional write / re-read on conflict.
orders_test_support::saga_contract_tests!(dynamodb);

const FORWARD: [Step; 6] = [
    Step::ReserveInventory,
    Step::RequestPayment,
    Step::SendNotification,
    Step::MarkShipped,
    Step::IssueVoucher,
    Step::MarkCompleted,
];

const COMPENSATION: [Step; 5] = [
    Step::BeginCompensation,
    Step::RefundPayment,
    Step::ReleaseInventory,
    Step::RestoreVoucher,
    Step::MarkFailed,
];

/// A fresh emulator with each of `stock`'s products stocked.
async fn stocked(stock: &[(&str, i64)]) -> Dynamo {
    let fx = dynamodb().await;
    saga_contract::set_stocks(&fx, stock).await;
    fx
}

fn steps_over(fx: &Dynamo) -> Steps {
    Steps {
        store: fx.store.clone(),
        settings: StepSettings::default(),
    }
}

async fn invoke(steps: &Steps, step: Step, input: &Value) -> Result<Value, StepError> {
    let mut payload = json!({"step": step.name(), "input": input});
    if step == Step::RequestPayment {
        payload["taskToken"] = json!(format!("tok-{}", fastrand::u32(..)));
    }
    steps.invoke(payload).await
}

/// A saga over 100 EUR, run forward twice (a full redelivery) with the provider's webhook
/// after RequestPayment and the warehouse's shipment before MarkShipped: COMPLETED once,
/// stock taken once, one payment (the provider asked in the first round only), one shipment,
/// one voucher, every step SUCCEEDED after two attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_on_dynamodb_complete_an_order_and_issue_its_voucher_once() {
    let fx = stocked(&[("laptop", 10), ("mouse", 10)]).await;
    let items = json!([
        {"productId": "laptop", "quantity": 1},
        {"productId": "mouse", "quantity": 2},
        {"productId": "laptop", "quantity": 1}
    ]);
    let mut input = saga_input("c-e2e", items, 260_000, None);
    let order = fx.put_order(&input).await;
    input["shipment"] =
        json!({"trackingNumber": "TRK-E2E", "shippedAt": "2026-03-04T05:06:07.890Z"});
    let steps = steps_over(&fx);
    let api = orders_aws::dynamodb::DynamoStore::new(fx.client.clone(), fx.names.clone());
    let webhook = PaymentWebhook {
        webhook_id: "msg_e2e".into(),
        result: PaymentResult::Succeeded,
        payment_id: orders_domain::PaymentId::for_order(order),
        order_id: order,
        amount: orders_domain::Cents(260_000),
        reason: None,
        received_at: Utc::now(),
    };
    for round in 1..=2 {
        for step in FORWARD {
            let out = invoke(&steps, step, &input)
                .await
                .unwrap_or_else(|e| panic!("round {round}, {}: {}: {e}", step.name(), e.name()));
            if step == Step::RequestPayment {
                assert_eq!(out["charge"].is_null(), round == 2, "asked once: {out}");
                let applied = api.apply_payment_webhook(&webhook).await.unwrap();
                let expected = match round {
                    1 => WebhookOutcome::Applied,
                    _ => WebhookOutcome::Duplicate,
                };
                assert_eq!(applied, expected);
            }
        }
    }
    assert_eq!(fx.order(order).await, (OrderStatus::Completed, 6, None));
    assert_eq!(fx.stock("laptop").await, Some(8));
    assert_eq!(fx.stock("mouse").await, Some(8));
    for step in FORWARD {
        assert_step(&fx, order, step, "SUCCEEDED", 2, None).await;
    }
    let shown = api.get_order(order).await.unwrap().expect("the order");
    let payment = shown.payment.expect("payment shown");
    assert_eq!(payment.status, orders_domain::PaymentStatus::Succeeded);
    assert_eq!(shown.shipment.expect("shipment").tracking_number, "TRK-E2E");
    let item = fx.order_item(order).await;
    let code = attr::get_s(&item, attrs::order::VOUCHER_ISSUED).expect("voucher issued");
    let voucher = fx
        .get(&fx.names.vouchers, attrs::voucher::CODE, code)
        .await
        .expect("voucher item");
    assert_eq!(attr::get_s(&voucher, attrs::voucher::STATUS), Ok("READY"));
    assert_eq!(
        attr::get_s(&voucher, attrs::voucher::EARNED_BY),
        Ok(order.to_string().as_str())
    );
    assert_eq!(attr::get_n(&voucher, attrs::voucher::DISCOUNT), Ok(500));
    let vouchers = fx
        .client
        .scan()
        .table_name(&fx.names.vouchers)
        .send()
        .await
        .unwrap();
    assert_eq!(vouchers.count(), 1, "one voucher after two runs");
}

/// One item short: ReserveInventory fails OutOfStock, nothing is taken from the other item,
/// the compensation path (as the state machine's Catch runs it) restores the voucher the
/// order redeemed and ends the order FAILED with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_on_dynamodb_compensate_an_out_of_stock_order() {
    let fx = stocked(&[("keyboard", 5), ("sold-out", 0)]).await;
    let items = json!([
        {"productId": "keyboard", "quantity": 1},
        {"productId": "sold-out", "quantity": 1}
    ]);
    let redeemed = VoucherCode::from_trusted("VCH-REDEEMED".into());
    let mut input = saga_input("c-short", items, 4_500, Some(redeemed.as_str()));
    let order = fx.put_order(&input).await;
    fx.redeemed_voucher(&redeemed, "c-short", order).await;
    let steps = steps_over(&fx);

    let err = invoke(&steps, Step::ReserveInventory, &input)
        .await
        .expect_err("sold-out is short");
    assert_eq!(err.name(), "OutOfStock");
    assert_eq!(fx.stock("keyboard").await, Some(5), "all or none");
    let reserve = fx.step(order, Step::ReserveInventory).await.unwrap();
    assert_eq!(reserve.status, "FAILED");
    assert!(
        reserve
            .error
            .unwrap()
            .starts_with("OutOfStock: product sold-out")
    );

    // What the Catch hands on: the input plus the error under $.error.
    input["error"] = json!({"Error": err.name(), "Cause": err.to_string()});
    for step in COMPENSATION {
        let out = invoke(&steps, step, &input)
            .await
            .unwrap_or_else(|e| panic!("{}: {}: {e}", step.name(), e.name()));
        match step {
            Step::RefundPayment => assert_eq!(out["refunded"], json!(false), "never charged"),
            Step::ReleaseInventory => assert_eq!(out["released"], json!(false), "never held"),
            Step::RestoreVoucher => assert_eq!(out["restored"], json!(true)),
            _ => {}
        }
    }
    let (status, version, reason) = fx.order(order).await;
    assert_eq!((status, version), (OrderStatus::Failed, 3));
    assert!(reason.unwrap().starts_with("OutOfStock: product sold-out"));
    assert_eq!(fx.stock("keyboard").await, Some(5));
    assert_eq!(fx.stock("sold-out").await, Some(0));
    assert_eq!(
        fx.voucher(&redeemed).await,
        Some(VoucherView {
            status: orders_domain::VoucherStatus::Ready,
            redeemed_by: None
        })
    );
    for step in COMPENSATION {
        assert_eq!(
            fx.step(order, step).await.map(|s| s.status).as_deref(),
            Some("SUCCEEDED"),
            "{}",
            step.name()
        );
    }
}

/// One transaction holds at most 100 writes: 99 products and the reservation record. Wider
/// orders are refused before anything is written; 99 still go in one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_wider_than_one_transaction_is_refused_and_takes_nothing() {
    let fx = dynamodb().await;
    for i in 1..=100 {
        fx.set_stock(&format!("p-{i:03}"), 5).await;
    }
    let order = fx.new_order("c-wide").await;
    let items: Vec<_> = (1..=100)
        .map(|i| saga_contract::item(&format!("p-{i:03}"), 1))
        .collect();
    let err = fx
        .store
        .reserve(at(order, Utc::now()), &items)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, orders_workflow::steps::StepStoreError::Unavailable(m) if m.contains("100 distinct")),
        "{err}"
    );
    assert_eq!(fx.stock("p-001").await, Some(5));
    assert_eq!(fx.stock("p-100").await, Some(5));
    let reserved = fx
        .store
        .reserve(at(order, Utc::now()), &items[..99])
        .await
        .unwrap();
    assert_eq!(
        reserved,
        orders_workflow::steps::store::Reservation::Reserved
    );
    assert_eq!(fx.stock("p-001").await, Some(4));
    assert_eq!(fx.stock("p-099").await, Some(4));
    assert_eq!(fx.stock("p-100").await, Some(5));
}
