//! The saga store contract suite against the DynamoDB store on moto, the saga's step handlers
//! driven over that store through a completed and a compensated order (`steps`), and the most
//! products one reservation's transaction takes (`reservation`).
//!
//! Orders are written here item by item with the shared attribute names, not through the
//! DynamoDB order store, so these tests depend only on the table contract (`fixture`).

mod fixture;
mod reservation;
mod steps;

use aws_sdk_dynamodb::Client;
use chrono::Utc;
use orders_aws::TableNames;
use orders_aws::dynamodb::DynamoStepStore;
use orders_aws::dynamodb::attr::{self, Item};
use orders_aws::moto::{self, MotoSession};
use orders_aws::tables::attrs;
use orders_domain::time::format_millis as format_ts;
use orders_domain::{OrderId, OrderStatus};
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

// Every case, the racing ones included: `orders_aws::moto` hands moto one request at a time,
// which gives it the per-request atomicity DynamoDB has, so the races exercise the store's
// read / conditional write / re-read on conflict.
orders_test_support::saga_contract_tests!(dynamodb);
