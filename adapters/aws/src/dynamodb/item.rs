//! Items to and from the store's records, attribute names from `crate::tables::attrs`.
//!
//! Decoding never fills a gap with a default: a missing or mistyped attribute is a
//! `StoreError::Backend` naming it, because a silently zeroed total or version would be worse
//! than a 500. Money stays integer cents (`N`), timestamps RFC 3339 UTC strings with
//! milliseconds, exactly as the SQLite store keeps them.

use crate::dynamodb::attr::{self, AttrError, Item, get_map, get_n, get_s, n, opt_s, s};
use crate::tables::attrs::{idempotency as ia, order as oa, voucher as va};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use orders_domain::idempotency::StoredResponse;
use orders_domain::lifecycle::{CancelRequest, PaymentView, Shipment};
use orders_domain::store::{IdempotencyRecord, NewOrder, OrderRecord, StepRecord, StoreError};
use orders_domain::store::{NewIdempotencyRecord, VoucherRecord, items_from_text, items_to_text};
use orders_domain::time::{format_millis as format_ts, parse_ts};
use orders_domain::{Cents, CustomerId, OrderStatus, PaymentMethod, VoucherCode, VoucherStatus};
use orders_domain::{PaymentId, PaymentStatus};
use std::collections::HashMap;

fn bad(e: AttrError) -> StoreError {
    StoreError::Backend(format!("unreadable item: {e}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("unreadable item: {what}"))
}

fn ts(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    let text = get_s(item, name).map_err(bad)?;
    parse_ts(text).ok_or_else(|| corrupt(name))
}

/// `<createdAt>#<id>`: the sort key that orders a customer's orders (and vouchers) by time,
/// the id breaking ties.
pub fn created_key(created_at: &str, id: &str) -> String {
    format!("{created_at}#{id}")
}

/// The order as created: PENDING, version 1 (as in the SQLite store: the first version a
/// reader can see), no steps yet.
pub fn new_order_item(o: &NewOrder) -> Result<Item, StoreError> {
    let id = o.id.to_string();
    let created = format_ts(o.created_at);
    let items = items_to_text(&o.items);
    let mut item = HashMap::from([
        (oa::CREATED_KEY.to_owned(), s(created_key(&created, &id))),
        (oa::ID.to_owned(), s(id)),
        (oa::CUSTOMER.to_owned(), s(o.customer_id.as_str())),
        (oa::CREATED_AT.to_owned(), s(&created)),
        (oa::UPDATED_AT.to_owned(), s(created)),
        (oa::ITEMS.to_owned(), s(items)),
        (oa::SUBTOTAL.to_owned(), n(o.subtotal.0)),
        (oa::DISCOUNT.to_owned(), n(o.discount.0)),
        (oa::TOTAL.to_owned(), n(o.total.0)),
        (oa::PAYMENT_METHOD.to_owned(), s(o.payment_method.as_str())),
        (oa::STATUS.to_owned(), s(OrderStatus::Pending.as_str())),
        (oa::VERSION.to_owned(), n(1)),
        (oa::STEPS.to_owned(), AttributeValue::M(HashMap::new())),
    ]);
    if let Some(code) = &o.voucher_code {
        item.insert(oa::VOUCHER_CODE.to_owned(), s(code.as_str()));
    }
    Ok(item)
}

/// `expiration` is whole epoch seconds rounded UP, so DynamoDB's TTL sweep (which deletes
/// items whose `expiration` is in the past) can never remove a record that is still live;
/// `expiresAt` keeps the exact millisecond every liveness decision uses.
pub fn idempotency_item(rec: &NewIdempotencyRecord) -> Item {
    let ms = rec.expires_at.timestamp_millis();
    let mut item = HashMap::from([
        (ia::ID.to_owned(), s(rec.key.as_str())),
        (ia::FINGERPRINT.to_owned(), s(&rec.fingerprint)),
        (ia::STATUS.to_owned(), n(i64::from(rec.response.status))),
        (ia::BODY.to_owned(), s(&rec.response.body)),
        (
            ia::EXPIRATION.to_owned(),
            n(ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0)),
        ),
        (ia::EXPIRES_AT.to_owned(), s(format_ts(rec.expires_at))),
    ]);
    if let Some(loc) = &rec.response.location {
        item.insert(ia::LOCATION.to_owned(), s(loc));
    }
    item
}

pub fn idempotency_record(item: &Item) -> Result<IdempotencyRecord, StoreError> {
    let status = get_n(item, ia::STATUS).map_err(bad)?;
    Ok(IdempotencyRecord {
        fingerprint: get_s(item, ia::FINGERPRINT).map_err(bad)?.to_owned(),
        response: StoredResponse {
            status: u16::try_from(status).map_err(|_| corrupt(ia::STATUS))?,
            location: opt_s(item, ia::LOCATION).map_err(bad)?.map(str::to_owned),
            body: get_s(item, ia::BODY).map_err(bad)?.to_owned(),
        },
        expires_at: ts(item, ia::EXPIRES_AT)?,
    })
}

/// The order without its issued voucher, which lives in another table (see `orders/store.rs`).
pub fn order_record(item: &Item) -> Result<OrderRecord, StoreError> {
    let items = items_from_text(get_s(item, oa::ITEMS).map_err(bad)?);
    let order = NewOrder {
        id: get_s(item, oa::ID)
            .map_err(bad)?
            .parse()
            .map_err(|_| corrupt(oa::ID))?,
        customer_id: CustomerId::from_trusted(get_s(item, oa::CUSTOMER).map_err(bad)?.to_owned()),
        items: items.ok_or_else(|| corrupt(oa::ITEMS))?,
        subtotal: Cents(get_n(item, oa::SUBTOTAL).map_err(bad)?),
        discount: Cents(get_n(item, oa::DISCOUNT).map_err(bad)?),
        total: Cents(get_n(item, oa::TOTAL).map_err(bad)?),
        payment_method: PaymentMethod::from_trusted(
            get_s(item, oa::PAYMENT_METHOD).map_err(bad)?.to_owned(),
        ),
        voucher_code: opt_s(item, oa::VOUCHER_CODE)
            .map_err(bad)?
            .map(|c| VoucherCode::from_trusted(c.to_owned())),
        created_at: ts(item, oa::CREATED_AT)?,
    };
    Ok(OrderRecord {
        order,
        status: get_s(item, oa::STATUS)
            .map_err(bad)?
            .parse::<OrderStatus>()
            .map_err(|_| corrupt(oa::STATUS))?,
        version: get_n(item, oa::VERSION).map_err(bad)?,
        failure_reason: opt_s(item, oa::FAILURE_REASON)
            .map_err(bad)?
            .map(str::to_owned),
        updated_at: ts(item, oa::UPDATED_AT)?,
        voucher_issued: None,
        steps: steps(item)?,
        payment: payment_view(item)?,
        shipment: shipment(item)?,
        cancellation: cancellation(item)?,
    })
}

/// The payment as the order item mirrors it (`paymentId`, `paymentStatus`), if requested.
fn payment_view(item: &Item) -> Result<Option<PaymentView>, StoreError> {
    let Some(id) = opt_s(item, oa::PAYMENT_ID).map_err(bad)? else {
        return Ok(None);
    };
    let status = get_s(item, oa::PAYMENT_STATUS)
        .map_err(bad)?
        .parse::<PaymentStatus>()
        .map_err(|_| corrupt(oa::PAYMENT_STATUS))?;
    Ok(Some(PaymentView {
        payment_id: PaymentId::from_trusted(id.to_owned()),
        status,
    }))
}

fn shipment(item: &Item) -> Result<Option<Shipment>, StoreError> {
    let Some(tracking) = opt_s(item, oa::TRACKING_NUMBER).map_err(bad)? else {
        return Ok(None);
    };
    Ok(Some(Shipment {
        tracking_number: tracking.to_owned(),
        shipped_at: ts(item, oa::SHIPPED_AT)?,
    }))
}

/// The customer's cancellation request on an order item (or on a projection of it holding
/// `cancelRequestedAt` and `cancelReason`).
pub fn cancellation(item: &Item) -> Result<Option<CancelRequest>, StoreError> {
    if opt_s(item, oa::CANCEL_REQUESTED_AT).map_err(bad)?.is_none() {
        return Ok(None);
    }
    Ok(Some(CancelRequest {
        reason: opt_s(item, oa::CANCEL_REASON)
            .map_err(bad)?
            .map(str::to_owned),
        requested_at: ts(item, oa::CANCEL_REQUESTED_AT)?,
    }))
}

/// The `steps` map as a history: by start time, then by the step's place in the saga
/// (`Step::ALL`), so two steps started in the same millisecond still read in saga order.
fn steps(item: &Item) -> Result<Vec<StepRecord>, StoreError> {
    let Some(map) = get_map(item, oa::STEPS).map_err(bad)? else {
        return Ok(Vec::new());
    };
    let mut steps = map
        .iter()
        .map(|(name, v)| {
            let AttributeValue::M(m) = v else {
                return Err(corrupt("a steps entry is not a map"));
            };
            Ok(StepRecord {
                step: name.clone(),
                status: get_s(m, oa::STEP_STATUS).map_err(bad)?.to_owned(),
                attempts: u32::try_from(get_n(m, oa::STEP_ATTEMPTS).map_err(bad)?)
                    .map_err(|_| corrupt(oa::STEP_ATTEMPTS))?,
                started_at: get_s(m, oa::STEP_STARTED_AT).map_err(bad)?.to_owned(),
                finished_at: opt_s(m, oa::STEP_FINISHED_AT)
                    .map_err(bad)?
                    .map(str::to_owned),
                error: opt_s(m, oa::STEP_ERROR).map_err(bad)?.map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let place = |name: &str| {
        orders_workflow::steps::Step::ALL
            .iter()
            .position(|s| s.name() == name)
            .unwrap_or(usize::MAX)
    };
    steps.sort_by(|a, b| {
        (a.started_at.as_str(), place(&a.step), a.step.as_str()).cmp(&(
            b.started_at.as_str(),
            place(&b.step),
            b.step.as_str(),
        ))
    });
    Ok(steps)
}

pub fn voucher_record(item: &Item) -> Result<VoucherRecord, StoreError> {
    Ok(VoucherRecord {
        code: VoucherCode::from_trusted(get_s(item, va::CODE).map_err(bad)?.to_owned()),
        customer_id: CustomerId::from_trusted(get_s(item, va::CUSTOMER).map_err(bad)?.to_owned()),
        discount: Cents(get_n(item, va::DISCOUNT).map_err(bad)?),
        status: get_s(item, va::STATUS)
            .map_err(bad)?
            .parse::<VoucherStatus>()
            .map_err(|_| corrupt(va::STATUS))?,
        order_id: get_s(item, va::EARNED_BY)
            .map_err(bad)?
            .parse()
            .map_err(|_| corrupt(va::EARNED_BY))?,
    })
}

/// The voucher code an order earned, if the saga issued one.
pub fn issued_voucher_code(item: &Item) -> Result<Option<String>, StoreError> {
    Ok(opt_s(item, oa::VOUCHER_ISSUED)
        .map_err(bad)?
        .map(str::to_owned))
}

/// A key attribute map of one string attribute.
pub fn key(name: &str, value: impl Into<String>) -> Item {
    HashMap::from([(name.to_owned(), attr::s(value))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_domain::idempotency::IdempotencyKey;

    fn record(expires_at: DateTime<Utc>) -> NewIdempotencyRecord {
        NewIdempotencyRecord {
            key: IdempotencyKey::parse("k").unwrap(),
            fingerprint: "fp".into(),
            response: StoredResponse {
                status: 201,
                location: Some("/orders/x".into()),
                body: "{}".into(),
            },
            expires_at,
        }
    }

    #[test]
    fn ttl_seconds_round_up_and_the_record_round_trips() {
        let exact = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let item = idempotency_item(&record(exact));
        assert_eq!(get_n(&item, ia::EXPIRATION).unwrap(), 1_700_000_000);
        let later = exact + chrono::Duration::milliseconds(1);
        let item = idempotency_item(&record(later));
        assert_eq!(get_n(&item, ia::EXPIRATION).unwrap(), 1_700_000_001);
        let back = idempotency_record(&item).unwrap();
        assert_eq!(back.expires_at, later);
        assert_eq!(back.response, record(later).response);
    }

    #[test]
    fn steps_read_by_start_then_saga_order() {
        let step = |started: &str| {
            AttributeValue::M(HashMap::from([
                (oa::STEP_STATUS.to_owned(), s("SUCCEEDED")),
                (oa::STEP_ATTEMPTS.to_owned(), n(1)),
                (oa::STEP_STARTED_AT.to_owned(), s(started)),
            ]))
        };
        let item = HashMap::from([(
            oa::STEPS.to_owned(),
            AttributeValue::M(HashMap::from([
                (
                    "SendNotification".to_owned(),
                    step("2026-01-01T00:00:00.002Z"),
                ),
                (
                    "ProcessPayment".to_owned(),
                    step("2026-01-01T00:00:00.001Z"),
                ),
                (
                    "ReserveInventory".to_owned(),
                    step("2026-01-01T00:00:00.001Z"),
                ),
            ])),
        )]);
        let names: Vec<String> = steps(&item).unwrap().into_iter().map(|s| s.step).collect();
        assert_eq!(
            names,
            ["ReserveInventory", "ProcessPayment", "SendNotification"]
        );
    }

    #[test]
    fn a_missing_attribute_is_an_error_not_a_default() {
        let err = idempotency_record(&HashMap::new()).unwrap_err();
        assert!(matches!(err, StoreError::Backend(m) if m.contains(ia::STATUS)));
    }
}
