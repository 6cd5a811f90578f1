//! Reserving and releasing stock. A reservation is one transaction: the order's reservation
//! record (put only if absent) and a conditional decrement per product, so stock is taken for
//! every item or none, and a second run finds the record and takes nothing.
//!
//! Why the limits: one transaction may touch an item once and at most 100 items. Quantities
//! of a product listed twice are summed first; an order of more than 99 distinct products
//! (plus the record, 101 writes) is refused rather than split, because a split reservation
//! could be left half taken by a crash between its parts.

use super::{
    DynamoStepStore, built, condition_failed, corrupt, format_ts, put_new, saga_key, sdk_err,
};
use crate::dynamodb::attr::{self, Item};
use crate::tables::attrs::{inventory as inv, saga};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use orders_domain::validation::MAX_DISTINCT_PRODUCTS;
use orders_domain::{ProductId, SagaItem};
use orders_workflow::steps::store::Reservation;
use orders_workflow::steps::store::{OrderAt, StepResult};
use orders_workflow::steps::{StepStoreError, Stock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const HELD: &str = "HELD";
const RELEASED: &str = "RELEASED";

/// One product's quantity in the reservation record's `items` JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Held {
    product_id: String,
    quantity: i64,
}

/// Quantities per product, in product order (the order the transaction lists them in, so a
/// shortage is reported for the same product the SQLite store reports).
fn totals(items: &[SagaItem]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.product_id.to_string()).or_insert(0) += i64::from(i.quantity);
    }
    m
}

impl DynamoStepStore {
    fn stock_change(
        &self,
        product: &str,
        expression: &str,
        condition: Option<&str>,
        qty: i64,
        now: &str,
    ) -> Result<TransactWriteItem, StepStoreError> {
        let mut names = std::collections::HashMap::from([
            ("#available".to_owned(), inv::AVAILABLE.to_owned()),
            ("#updated".to_owned(), inv::UPDATED_AT.to_owned()),
        ]);
        if condition.is_some() {
            // Only the condition names the key; an unused name is a validation error.
            names.insert("#id".to_owned(), inv::ID.to_owned());
        }
        let update = Update::builder()
            .table_name(&self.tables.inventory)
            .key(inv::ID, attr::s(product))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":q", attr::n(qty))
            .expression_attribute_values(":now", attr::s(now))
            // The old item tells how much there was, so a shortage needs no second read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

#[async_trait]
impl Stock for DynamoStepStore {
    async fn reserve(&self, at: OrderAt, items: &[SagaItem]) -> StepResult<Reservation> {
        let OrderAt { order, now } = at;
        let wanted = totals(items);
        // Validation refuses such orders before they exist; a reservation this wide could not be one
        // transaction (100 writes, one of them the reservation record).
        if wanted.len() > MAX_DISTINCT_PRODUCTS {
            return Err(StepStoreError::Unavailable(format!(
                "order {order} lists {} distinct products; one reservation takes at most {MAX_DISTINCT_PRODUCTS}",
                wanted.len()
            )));
        }
        let now = format_ts(now);
        let held: Vec<Held> = wanted
            .iter()
            .map(|(p, q)| Held {
                product_id: p.clone(),
                quantity: *q,
            })
            .collect();
        let held = serde_json::to_string(&held)
            .map_err(|e| StepStoreError::Unavailable(format!("reservation items: {e}")))?;
        let mut record = saga_key(order, saga::RESERVATION);
        record.insert(saga::ITEMS.to_owned(), attr::s(held));
        record.insert(saga::STATE.to_owned(), attr::s(HELD));
        record.insert(saga::CREATED_AT.to_owned(), attr::s(&now));
        record.insert(saga::UPDATED_AT.to_owned(), attr::s(&now));
        let put = put_new(&self.tables.saga, record, saga::ORDER);
        let mut writes = vec![
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
        ];
        for (product, qty) in &wanted {
            writes.push(self.stock_change(
                product,
                "SET #available = #available - :q, #updated = :now",
                Some("attribute_exists(#id) AND #available >= :q"),
                *qty,
                &now,
            )?);
        }
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(Reservation::Reserved),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
            err.as_service_error()
        {
            // Reasons come in the order of the writes: the record first, then the products.
            let reasons = c.cancellation_reasons();
            if condition_failed(reasons.first()) {
                return Ok(Reservation::Reserved);
            }
            for ((product, qty), reason) in wanted.iter().zip(reasons.iter().skip(1)) {
                if condition_failed(Some(reason)) {
                    let available = match reason.item() {
                        Some(old) => attr::get_n(old, inv::AVAILABLE)
                            .map_err(|e| corrupt("inventory item", e))?,
                        None => 0,
                    };
                    return Ok(Reservation::Short {
                        product: ProductId::from_trusted(product.clone()),
                        available,
                        requested: u32::try_from(*qty).unwrap_or(u32::MAX),
                    });
                }
            }
        }
        Err(sdk_err("reserve inventory", &err))
    }

    async fn release(&self, at: OrderAt) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        let Some(record) = self.saga_record(order, saga::RESERVATION).await? else {
            return Ok(false);
        };
        if attr::get_s(&record, saga::STATE).map_err(|e| corrupt("reservation", e))? != HELD {
            return Ok(false);
        }
        let held: Vec<Held> = attr::get_s(&record, saga::ITEMS)
            .map_err(|e| corrupt("reservation", e))
            .and_then(|text| {
                serde_json::from_str(text).map_err(|e| {
                    StepStoreError::Unavailable(format!("unreadable reservation items: {e}"))
                })
            })?;
        let now = format_ts(now);
        let values: Item = [
            (":held".to_owned(), attr::s(HELD)),
            (":released".to_owned(), attr::s(RELEASED)),
            (":now".to_owned(), attr::s(&now)),
        ]
        .into();
        // The state flip is conditional, so of two concurrent releases only one returns stock.
        let flip = Update::builder()
            .table_name(&self.tables.saga)
            .set_key(Some(saga_key(order, saga::RESERVATION)))
            .update_expression("SET #state = :released, #updated = :now")
            .condition_expression("#state = :held")
            .expression_attribute_names("#state", saga::STATE)
            .expression_attribute_names("#updated", saga::UPDATED_AT)
            .set_expression_attribute_values(Some(values));
        let mut writes = vec![
            TransactWriteItem::builder()
                .update(built(flip.build())?)
                .build(),
        ];
        for h in &held {
            // ADD, not SET: it cannot fail on the item, so the release always completes.
            writes.push(self.stock_change(
                &h.product_id,
                "ADD #available :q SET #updated = :now",
                None,
                h.quantity,
                &now,
            )?);
        }
        self.transact_once("release inventory", writes).await
    }
}
