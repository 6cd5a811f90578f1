//! The saga contract's view of the DynamoDB tables: each `SagaFixture` read and write done
//! item by item on the raw client, with the attribute names the stores share, so what the
//! contract checks is the table contract and not the store's own reads.

use super::{Dynamo, saga_input};
use orders_test_support::saga_contract::{self, PaymentView, SagaFixture, StepView, VoucherView};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use orders_aws::dynamodb::attr::{self, Item};
use orders_aws::tables::attrs;
use orders_domain::lifecycle::{PaymentStatus, Shipment};
use orders_domain::time::format_millis as format_ts;
use orders_domain::time::parse_ts;
use orders_domain::{Cents, OrderId, OrderStatus, PaymentId, VoucherCode};
use orders_workflow::steps::Step;
use serde_json::json;

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
