//! The order as the API shows it: GET one, the list, and the body of a cancellation's 202
//! (which is also what its idempotency record replays).
//!
//! Each optional part appears only when it is a fact of the order: `payment` once the
//! provider was asked, `shipment` once the parcel left, `cancellationRequested` (with the
//! reason, if one was given) once the customer asked, `failureReason` only while the order is
//! FAILED. A field that is absent is never sent as `null`, so clients test presence.

use orders_domain::lifecycle::{PaymentView, Shipment};
use orders_domain::money::Total;
use orders_domain::store::{OrderRecord, StepRecord};
use orders_domain::time::format_millis as format_ts;
use orders_domain::{Cents, Currency, CustomerId, OrderId, OrderItem, OrderStatus, VoucherStatus};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedVoucher {
    voucher_code: String,
    discount: Cents,
    status: VoucherStatus,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub(crate) order_id: OrderId,
    #[schema(value_type = String)]
    customer_id: CustomerId,
    items: Vec<OrderItem>,
    /// Sum of the items, before any voucher.
    #[schema(value_type = Total)]
    subtotal: Cents,
    discount: Cents,
    #[schema(value_type = Total)]
    total_amount: Cents,
    currency: Currency,
    status: OrderStatus,
    /// Incremented on every status change (optimistic locking).
    version: i64,
    payment_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    voucher_code: Option<String>,
    /// Why the order failed: only when its status is FAILED.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    /// The order's payment, once the provider was asked to charge it.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<PaymentView>,
    /// The parcel, once the warehouse shipped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    shipment: Option<Shipment>,
    /// Present, and `true`, once the customer asked to cancel (`PATCH /orders/{id}`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cancellation_requested: bool,
    /// The reason given with the cancellation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 500)]
    cancellation_reason: Option<String>,
    /// The voucher this order earned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    voucher_issued: Option<IssuedVoucher>,
    /// The saga's steps so far.
    history: Vec<StepRecord>,
    created_at: String,
    updated_at: String,
}

impl From<OrderRecord> for OrderView {
    fn from(r: OrderRecord) -> Self {
        let o = r.order;
        let (cancellation_requested, cancellation_reason) = match r.cancellation {
            Some(c) => (true, c.reason),
            None => (false, None),
        };
        OrderView {
            order_id: o.id,
            customer_id: o.customer_id,
            items: o.items,
            subtotal: o.subtotal,
            discount: o.discount,
            total_amount: o.total,
            currency: Currency::Eur,
            status: r.status,
            version: r.version,
            payment_method: o.payment_method.as_str().to_owned(),
            voucher_code: o.voucher_code.map(|c| c.to_string()),
            failure_reason: r.failure_reason.filter(|_| r.status == OrderStatus::Failed),
            payment: r.payment,
            shipment: r.shipment,
            cancellation_requested,
            cancellation_reason,
            voucher_issued: r.voucher_issued.map(|v| IssuedVoucher {
                voucher_code: v.code.to_string(),
                discount: v.discount,
                status: v.status,
            }),
            history: r.steps,
            created_at: format_ts(o.created_at),
            updated_at: format_ts(r.updated_at),
        }
    }
}
