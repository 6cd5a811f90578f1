//! `create_order`: one `TransactWriteItems`, and the reading of its cancellation.
//!
//! The transaction holds, in this order: the order put (naming its saga execution, the
//! event's id, for a later cancellation's signal, and keeping the request's `traceparent` for
//! the order's later events), the outbox put, the idempotency put
//! (with a key) and the voucher redemption (with a code). When DynamoDB cancels it, the
//! `CancellationReasons` list has one entry per item at the same position, and the items
//! whose condition failed carry their old image (ALL_OLD). The decision, in priority order:
//! 1. idempotency condition failed: the key is live; replay or 422 from the old record's
//!    fingerprint, with no further read (or created, when the stored response is this very
//!    call's own, committed by an earlier attempt whose answer was lost). It wins over a
//!    voucher failure, because a retry of
//!    a request that redeemed a voucher finds that voucher USED: the client must get its
//!    first response again, not a 409.
//! 2. order condition failed: that order id exists. Ids are fresh UUIDs, so it is this very
//!    write, committed by an earlier attempt whose answer was lost; it counts as created.
//! 3. a conflict with another transaction or throttling: the outcome may change, so the whole
//!    transaction is tried again (bounded, with jitter), then `Busy`.
//! 4. voucher condition failed: 409, the reason read from the old voucher item.
//! 5. anything else: `Backend`, with every reason described.

use super::{DynamoStore, sdk_err};
use crate::dynamodb::attr::{Item, n, opt_s, s};
use crate::dynamodb::item::{
    created_key, idempotency_item, idempotency_record, key, new_order_item,
};
use crate::tables::attrs::{idempotency as ia, order as oa, outbox as xa, voucher as va};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use orders_domain::VoucherStatus;
use orders_domain::store::{CreateOrder, CreateOutcome, StoreError, VoucherRefusal};
use orders_domain::time::format_millis as format_ts;

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// Reason codes of a cancellation that another attempt may not meet.
const CONTENTION: [&str; 4] = [
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// Where each optional item sits in the transaction.
struct Layout {
    idempotency: Option<usize>,
    voucher: Option<usize>,
}

const ORDER_AT: usize = 0;

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("building the order transaction: {e}"))
}

fn transaction(
    store: &DynamoStore,
    cmd: &CreateOrder,
) -> Result<(Vec<TransactWriteItem>, Layout), StoreError> {
    let t = &store.tables;
    let o = &cmd.order;
    let created = format_ts(o.created_at);
    let mut order_item = new_order_item(o)?;
    // The saga execution is named after this event: a cancellation signals it by that name.
    order_item.insert(oa::EXECUTION.to_owned(), s(cmd.event.id.to_string()));
    // The trace of the request, which every later event of the order continues.
    if let Some(trace) = &cmd.event.traceparent {
        order_item.insert(oa::TRACEPARENT.to_owned(), s(trace.as_str()));
    }
    let order = Put::builder()
        .table_name(&t.orders)
        .set_item(Some(order_item))
        .condition_expression("attribute_not_exists(#id)")
        .expression_attribute_names("#id", oa::ID)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(build_err)?;
    let event = serde_json::to_string(&cmd.event).map_err(build_err)?;
    let outbox = Put::builder()
        .table_name(&t.outbox)
        .item(xa::ID, s(cmd.event.id.to_string()))
        .item(xa::ORDER, s(o.id.to_string()))
        .item(xa::EVENT, s(event))
        .item(xa::CREATED_AT, s(&created))
        .item(
            xa::EXPIRATION,
            n(store.outbox_retention.expiration(cmd.event.time)),
        )
        .condition_expression("attribute_not_exists(#id)")
        .expression_attribute_names("#id", xa::ID)
        .build()
        .map_err(build_err)?;
    let mut items = vec![
        TransactWriteItem::builder().put(order).build(),
        TransactWriteItem::builder().put(outbox).build(),
    ];
    let mut layout = Layout {
        idempotency: None,
        voucher: None,
    };
    if let Some(idem) = &cmd.idempotency {
        // A bound of `expiration < :now` on epoch seconds would not do: whole seconds
        // would disagree with the read side, where a record is live while its expiry is
        // strictly in the future and absent from the exact millisecond it expires (the
        // contract's `expired_record_is_absent`): rounded down the key could be taken over
        // while still live, rounded up it would stay blocked up to a second after expiring.
        // So the condition compares the exact expiry `expiresAt` (fixed-width RFC 3339 ms,
        // whose string order is time order) with `<=`: the same predicate as the read.
        // `expiration` (seconds, rounded up) stays the TTL attribute that reclaims space.
        let put = Put::builder()
            .table_name(&t.idempotency)
            .set_item(Some(idempotency_item(idem)))
            .condition_expression("attribute_not_exists(#id) OR #exp <= :now")
            .expression_attribute_names("#id", ia::ID)
            .expression_attribute_names("#exp", ia::EXPIRES_AT)
            .expression_attribute_values(":now", s(format_ts(cmd.now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        layout.idempotency = Some(items.len());
        items.push(TransactWriteItem::builder().put(put).build());
    }
    if let Some(code) = &o.voucher_code {
        let update = Update::builder()
            .table_name(&t.vouchers)
            .set_key(Some(key(va::CODE, code.as_str())))
            .update_expression("SET #st = :used, #rb = :order, #ua = :now")
            .condition_expression("#st = :ready AND #cu = :customer")
            .expression_attribute_names("#st", va::STATUS)
            .expression_attribute_names("#rb", va::REDEEMED_BY)
            .expression_attribute_names("#ua", va::UPDATED_AT)
            .expression_attribute_names("#cu", va::CUSTOMER)
            .expression_attribute_values(":used", s(VoucherStatus::Used.as_str()))
            .expression_attribute_values(":ready", s(VoucherStatus::Ready.as_str()))
            .expression_attribute_values(":order", s(o.id.to_string()))
            .expression_attribute_values(":now", s(&created))
            .expression_attribute_values(":customer", s(o.customer_id.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        layout.voucher = Some(items.len());
        items.push(TransactWriteItem::builder().update(update).build());
    }
    Ok((items, layout))
}

/// What one attempt came to.
enum Attempt {
    Done(Result<CreateOutcome, StoreError>),
    Retry(String),
}

pub async fn create_order(
    store: &DynamoStore,
    cmd: &CreateOrder,
) -> Result<CreateOutcome, StoreError> {
    let (items, layout) = transaction(store, cmd)?;
    let mut attempt = 1;
    loop {
        let sent = store
            .client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let why = match sent {
            Ok(_) => return Ok(CreateOutcome::Created),
            Err(err) => match classify(cmd, &layout, &err) {
                Attempt::Done(result) => return result,
                Attempt::Retry(why) => why,
            },
        };
        if attempt >= store.retry.attempts {
            tracing::warn!(order_id = %cmd.order.id, attempts = attempt, reason = %why,
                "order transaction still contended, giving up");
            return Err(StoreError::Busy);
        }
        attempt += 1;
        tracing::debug!(order_id = %cmd.order.id, attempt, reason = %why, "retrying order transaction");
        tokio::time::sleep(store.retry.backoff(attempt)).await;
    }
}

fn classify<R: std::fmt::Debug>(
    cmd: &CreateOrder,
    layout: &Layout,
    err: &SdkError<TransactWriteItemsError, R>,
) -> Attempt {
    let reasons = match err {
        SdkError::ServiceError(se) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => c.cancellation_reasons(),
            // A conflict outside a cancellation (with a non-transactional write).
            other if other.code() == Some("TransactionConflictException") => {
                return Attempt::Retry(crate::sdk::describe(err));
            }
            _ => return Attempt::Done(Err(sdk_err("TransactWriteItems", err))),
        },
        _ => return Attempt::Done(Err(sdk_err("TransactWriteItems", err))),
    };
    Attempt::Done(match decide(cmd, layout, reasons) {
        Decision::Outcome(o) => Ok(o),
        Decision::Fail(e) => Err(e),
        Decision::Retry(why) => return Attempt::Retry(why),
    })
}

enum Decision {
    Outcome(CreateOutcome),
    Fail(StoreError),
    Retry(String),
}

fn code_at(reasons: &[CancellationReason], at: Option<usize>) -> Option<&str> {
    at.and_then(|i| reasons.get(i)).and_then(|r| r.code())
}

fn decide(cmd: &CreateOrder, layout: &Layout, reasons: &[CancellationReason]) -> Decision {
    // 1. A live record for the key.
    if let (Some(idem), Some(CONDITION_FAILED)) =
        (&cmd.idempotency, code_at(reasons, layout.idempotency))
    {
        let old = layout.idempotency.and_then(|i| reasons[i].item());
        return match old {
            // Our own response (it names our fresh order id) means an earlier attempt of this
            // very call committed and only its answer was lost: created, not a replay.
            Some(old) => match idempotency_record(old) {
                Ok(rec) if rec.fingerprint == idem.fingerprint && rec.response == idem.response => {
                    Decision::Outcome(CreateOutcome::Created)
                }
                Ok(rec) => Decision::Outcome(rec.outcome_for(&idem.fingerprint)),
                Err(e) => Decision::Fail(e),
            },
            None => Decision::Fail(StoreError::Backend(
                "idempotency condition failed without the old item (ALL_OLD)".into(),
            )),
        };
    }
    // 2. Our own earlier attempt, committed.
    if code_at(reasons, Some(ORDER_AT)) == Some(CONDITION_FAILED) {
        let ours = created_key(&format_ts(cmd.order.created_at), &cmd.order.id.to_string());
        let old_key = reasons[ORDER_AT]
            .item()
            .and_then(|old| opt_s(old, oa::CREATED_KEY).ok().flatten());
        return if old_key == Some(ours.as_str()) {
            Decision::Outcome(CreateOutcome::Created)
        } else {
            Decision::Fail(StoreError::Backend(format!(
                "order id {} already taken by another order",
                cmd.order.id
            )))
        };
    }
    // 3. Contention: try again.
    if let Some(code) = reasons
        .iter()
        .filter_map(|r| r.code())
        .find(|c| CONTENTION.contains(c))
    {
        return Decision::Retry(format!("transaction cancelled: {code}"));
    }
    // 4. The voucher cannot be redeemed.
    if let (Some(code), Some(CONDITION_FAILED)) =
        (&cmd.order.voucher_code, code_at(reasons, layout.voucher))
    {
        let old = layout.voucher.and_then(|i| reasons[i].item());
        return Decision::Fail(StoreError::VoucherUnavailable {
            code: code.as_str().to_owned(),
            reason: refusal(old, cmd.order.customer_id.as_str()),
        });
    }
    Decision::Fail(StoreError::Backend(format!(
        "order transaction cancelled: {}",
        describe_reasons(reasons)
    )))
}

/// Why a voucher could not be redeemed, from its image before the transaction.
fn refusal(old: Option<&Item>, customer: &str) -> VoucherRefusal {
    match old {
        None => VoucherRefusal::Unknown,
        Some(item) if item.is_empty() => VoucherRefusal::Unknown,
        Some(item) if opt_s(item, va::CUSTOMER).ok().flatten() != Some(customer) => {
            VoucherRefusal::OtherCustomer
        }
        Some(_) => VoucherRefusal::NotReady,
    }
}

fn describe_reasons(reasons: &[CancellationReason]) -> String {
    reasons
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "#{i} {}: {}",
                r.code().unwrap_or("?"),
                r.message().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
