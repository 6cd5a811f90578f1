//! The `OrderStore` of DynamoDB: the reads behind the API, the stock updates and the catalogue
//! seed here; the transactions, which are most of the logic, in `create/`, `webhook.rs` and
//! `cancel.rs`.
//!
//! A GET is one read of the order item, which carries what the order's actors left on it (the
//! payment's id and status, the shipment, the cancellation request), plus one read of the
//! voucher the order earned, only when it earned one.
//!
//! Single items are read with `ConsistentRead`, so a GET right after a 201 sees the order.
//! A customer's listing queries the `byCustomer` index newest-first and asks for one item more
//! than the page: whether that extra item exists is what decides `next`, never DynamoDB's
//! `LastEvaluatedKey`, which may be present on an exact page end (and then lead to an empty
//! last page) or absent because a 1 MB response cut the page short (then we read on).

use super::{DynamoStore, cancel, create, sdk_err, webhook};
use crate::dynamodb::attr::{Item, get_n, n, s};
use crate::dynamodb::item::{created_key, issued_voucher_code, key, order_record, voucher_record};
use crate::sdk::conditional;
use crate::tables::attrs::{inventory as na, order as oa, voucher as va};
use crate::tables::{IndexSpec, ORDERS, VOUCHERS};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use chrono::{DateTime, Utc};
use orders_domain::lifecycle::{PaymentWebhook, WebhookOutcome};
use orders_domain::store::{CancelOrder, CancelOutcome, Respond, VoucherRecord};
use orders_domain::store::{
    CreateOrder, CreateOutcome, ListCursor, ListOrders, OrderPage, OrderRecord, OrderStore,
    StockLevel, StoreError,
};
use orders_domain::time::format_millis as format_ts;
use orders_domain::{CATALOGUE, CustomerId, OrderId, ProductId};
use std::collections::HashMap;

#[async_trait]
impl OrderStore for DynamoStore {
    async fn apply_payment_webhook(
        &self,
        webhook: &PaymentWebhook,
    ) -> Result<WebhookOutcome, StoreError> {
        webhook::apply_payment_webhook(self, webhook).await
    }

    async fn cancel_order(
        &self,
        cmd: CancelOrder,
        respond: Respond<'_>,
    ) -> Result<CancelOutcome, StoreError> {
        cancel::cancel_order(self, &cmd, respond).await
    }

    async fn create_order(&self, cmd: CreateOrder) -> Result<CreateOutcome, StoreError> {
        create::create_order(self, &cmd).await
    }

    /// The order, plus the voucher it earned: a second read, made only when the saga issued one.
    async fn get_order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        match get_item(self, &self.tables.orders, key(oa::ID, id.to_string())).await? {
            Some(item) => with_voucher(self, &item).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_orders(&self, query: &ListOrders) -> Result<OrderPage, StoreError> {
        let (customer, limit, after) = (&query.customer, query.limit, query.after.clone());
        let index = ORDERS.indexes[0];
        let want = limit as usize + 1;
        let mut start = after.map(|c| {
            HashMap::from([
                (oa::CUSTOMER.to_owned(), s(customer.as_str())),
                (
                    oa::CREATED_KEY.to_owned(),
                    s(created_key(&c.created_at, &c.order_id.to_string())),
                ),
                (oa::ID.to_owned(), s(c.order_id.to_string())),
            ])
        });
        let mut items = Vec::with_capacity(want);
        loop {
            let out = by_customer(self, &self.tables.orders, index, customer)
                .scan_index_forward(false)
                .limit(i32::try_from(want - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_err("Query", &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if items.len() < want => start = Some(k),
                _ => break,
            }
        }
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let mut orders = Vec::with_capacity(items.len());
        for item in &items {
            orders.push(with_voucher(self, item).await?);
        }
        let next = more.then(|| orders.last()).flatten().map(|o| ListCursor {
            created_at: format_ts(o.order.created_at),
            order_id: o.order.id,
        });
        Ok(OrderPage { orders, next })
    }

    async fn get_inventory(&self, product: &ProductId) -> Result<Option<i64>, StoreError> {
        get_item(self, &self.tables.inventory, key(na::ID, product.as_str()))
            .await?
            .map(|item| {
                get_n(&item, na::AVAILABLE)
                    .map_err(|e| StoreError::Backend(format!("unreadable item: {e}")))
            })
            .transpose()
    }

    /// Creates or overwrites the stock level (an operator's PUT, not a saga movement).
    async fn set_inventory(&self, level: StockLevel) -> Result<(), StoreError> {
        let StockLevel {
            product,
            available,
            at: now,
        } = level;
        self.client
            .update_item()
            .table_name(&self.tables.inventory)
            .set_key(Some(key(na::ID, product.as_str())))
            .update_expression("SET #a = :a, #u = :u")
            .expression_attribute_names("#a", na::AVAILABLE)
            .expression_attribute_names("#u", na::UPDATED_AT)
            .expression_attribute_values(":a", n(available))
            .expression_attribute_values(":u", s(format_ts(now)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_err("UpdateItem", &e))
    }

    /// Oldest first, as the SQLite store lists them (its order: creation time, then code).
    async fn list_vouchers(&self, customer: &CustomerId) -> Result<Vec<VoucherRecord>, StoreError> {
        let index = VOUCHERS.indexes[0];
        let mut start = None;
        let mut vouchers = Vec::new();
        loop {
            let out = by_customer(self, &self.tables.vouchers, index, customer)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_err("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                vouchers.push(voucher_record(&item)?);
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(vouchers)
    }

    /// A GetItem of a key that never exists: a data-plane round trip that proves the table is
    /// reachable and readable with this role, without DescribeTable's control-plane rate limit.
    async fn ping(&self) -> Result<(), StoreError> {
        get_item(self, &self.tables.orders, key(oa::ID, "health-check"))
            .await
            .map(|_| ())
    }
}

pub(super) async fn get_item(
    store: &DynamoStore,
    table: &str,
    key: Item,
) -> Result<Option<Item>, StoreError> {
    store
        .client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map(|out| out.item)
        .map_err(|e| sdk_err("GetItem", &e))
}

pub(super) async fn with_voucher(
    store: &DynamoStore,
    item: &Item,
) -> Result<OrderRecord, StoreError> {
    let mut order = order_record(item)?;
    if let Some(code) = issued_voucher_code(item)? {
        match get_item(store, &store.tables.vouchers, key(va::CODE, &code)).await? {
            Some(voucher) => order.voucher_issued = Some(voucher_record(&voucher)?),
            // The voucher is a detail of the order, not the order: a dangling reference is
            // logged for the operator and the order is still shown.
            None => tracing::warn!(order_id = %order.order.id, voucher = %code,
                "order names an issued voucher that does not exist"),
        }
    }
    Ok(order)
}

/// A query of one customer's items through the table's customer index.
fn by_customer(
    store: &DynamoStore,
    table: &str,
    index: IndexSpec,
    customer: &CustomerId,
) -> QueryFluentBuilder {
    store
        .client
        .query()
        .table_name(table)
        .index_name(index.name)
        .key_condition_expression("#c = :c")
        .expression_attribute_names("#c", index.partition_key)
        .expression_attribute_values(":c", s(customer.as_str()))
}

/// One conditional put per product; an existing item is left as it is.
pub async fn seed_catalogue(store: &DynamoStore, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let mut added = 0;
    for (product, available) in CATALOGUE {
        let put = store
            .client
            .put_item()
            .table_name(&store.tables.inventory)
            .item(na::ID, s(product))
            .item(na::AVAILABLE, n(available))
            .item(na::UPDATED_AT, s(format_ts(now)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", na::ID)
            .send()
            .await;
        if conditional(put)
            .map_err(|e| sdk_err("PutItem", &e))?
            .is_some()
        {
            added += 1;
        }
    }
    Ok(added)
}
