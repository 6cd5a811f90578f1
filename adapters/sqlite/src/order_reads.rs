//! The order as GET shows it, read from its row and what the saga and the outside actors left
//! beside it. The payment and the shipment (one row each per order, keyed by the order id) come
//! with the order's row in one join, so a page of the list costs one query for all of that,
//! not one per order; the cancellation is on the order's row itself.

use super::{all, sqlite_err};
use orders_domain::lifecycle::{CancelRequest, PaymentStatus, PaymentView, Shipment};
use orders_domain::store::{
    ListCursor, NewOrder, OrderPage, OrderRecord, StepRecord, StoreError, VoucherRecord,
    items_from_text,
};
use orders_domain::time::{format_millis as format_ts, parse_ts};
use orders_domain::{
    Cents, CustomerId, OrderStatus, PaymentId, PaymentMethod, VoucherCode, VoucherStatus,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database"))
}

/// What every read of an order selects, in `order_from_row`'s order.
const ORDER_COLUMNS: &str = "o.order_id, o.customer_id, o.status, o.version, o.items,
    o.subtotal_cents, o.discount_cents, o.total_cents, o.payment_method, o.voucher_code,
    o.failure_reason, o.created_at, o.updated_at, o.cancel_requested_at, o.cancel_reason,
    p.payment_id, p.status, s.tracking_number, s.shipped_at";

/// The order with its payment and shipment (each at most one row, by primary key).
const ORDER_FROM: &str = "orders o
    LEFT JOIN payments p ON p.order_id = o.order_id
    LEFT JOIN shipments s ON s.order_id = o.order_id";

/// A customer's orders after a cursor, newest first. `orders_by_customer` answers it, read
/// backwards, without sorting (the schema tests check the plan).
pub(crate) fn list_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {ORDER_COLUMNS} FROM {ORDER_FROM}
             WHERE o.customer_id = ?1 AND (o.created_at, o.order_id) < (?2, ?3)
             ORDER BY o.created_at DESC, o.order_id DESC LIMIT ?4"
        )
    });
    &SQL
}

fn ts(text: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    parse_ts(text).ok_or_else(|| corrupt("timestamp"))
}

/// The order row's columns, read before any of them is interpreted.
struct Columns {
    id: String,
    customer: String,
    status: String,
    version: i64,
    items: String,
    cents: [i64; 3],
    method: String,
    voucher: Option<String>,
    failure: Option<String>,
    created: String,
    updated: String,
    cancel: (Option<String>, Option<String>),
    payment: (Option<String>, Option<String>),
    shipment: (Option<String>, Option<String>),
}

fn columns(r: &Row<'_>) -> rusqlite::Result<Columns> {
    Ok(Columns {
        id: r.get(0)?,
        customer: r.get(1)?,
        status: r.get(2)?,
        version: r.get(3)?,
        items: r.get(4)?,
        cents: [r.get(5)?, r.get(6)?, r.get(7)?],
        method: r.get(8)?,
        voucher: r.get(9)?,
        failure: r.get(10)?,
        created: r.get(11)?,
        updated: r.get(12)?,
        cancel: (r.get(13)?, r.get(14)?),
        payment: (r.get(15)?, r.get(16)?),
        shipment: (r.get(17)?, r.get(18)?),
    })
}

fn record(c: Columns) -> Result<OrderRecord, StoreError> {
    let [subtotal, discount, total] = c.cents;
    let order = NewOrder {
        id: c.id.parse().map_err(|_| corrupt("order id"))?,
        customer_id: CustomerId::from_trusted(c.customer),
        items: items_from_text(&c.items).ok_or_else(|| corrupt("order items"))?,
        subtotal: Cents(subtotal),
        discount: Cents(discount),
        total: Cents(total),
        payment_method: PaymentMethod::from_trusted(c.method),
        voucher_code: c.voucher.map(VoucherCode::from_trusted),
        created_at: ts(&c.created)?,
    };
    let cancellation = match c.cancel {
        (Some(at), reason) => Some(CancelRequest {
            reason,
            requested_at: ts(&at)?,
        }),
        (None, _) => None,
    };
    let payment = match c.payment {
        (Some(id), Some(status)) => Some(PaymentView {
            payment_id: PaymentId::from_trusted(id),
            status: status
                .parse::<PaymentStatus>()
                .map_err(|_| corrupt("payment status"))?,
        }),
        _ => None,
    };
    let shipment = match c.shipment {
        (Some(tracking_number), Some(at)) => Some(Shipment {
            tracking_number,
            shipped_at: ts(&at)?,
        }),
        _ => None,
    };
    Ok(OrderRecord {
        order,
        status: c
            .status
            .parse::<OrderStatus>()
            .map_err(|_| corrupt("order status"))?,
        version: c.version,
        failure_reason: c.failure,
        updated_at: ts(&c.updated)?,
        voucher_issued: None,
        steps: Vec::new(),
        payment,
        shipment,
        cancellation,
    })
}

pub(crate) fn voucher_from_row(r: &Row<'_>) -> rusqlite::Result<Result<VoucherRecord, StoreError>> {
    let (code, customer, discount, status, order): (String, String, i64, String, String) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    Ok((|| {
        Ok(VoucherRecord {
            code: VoucherCode::from_trusted(code),
            customer_id: CustomerId::from_trusted(customer),
            discount: Cents(discount),
            status: status
                .parse::<VoucherStatus>()
                .map_err(|_| corrupt("voucher status"))?,
            order_id: order.parse().map_err(|_| corrupt("voucher order id"))?,
        })
    })())
}

pub(crate) const VOUCHER_COLUMNS: &str =
    "code, customer_id, discount_cents, status, issued_for_order";

/// The order `id` as GET shows it, on any connection (a reader's, or the writer's inside a
/// transaction that decides by it).
pub(crate) fn read_order(conn: &Connection, id: &str) -> Result<Option<OrderRecord>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE o.order_id = ?1")
    });
    conn.prepare_cached(&SQL)
        .and_then(|mut st| st.query_row([id], columns).optional())
        .map_err(sqlite_err)?
        .map(record)
        .transpose()?
        .map(|order| with_saga_details(conn, order))
        .transpose()
}

/// One page of `customer`'s orders, newest first: at most `limit` after `after`.
pub(crate) fn list_page(
    conn: &Connection,
    customer: &str,
    limit: u32,
    after: Option<ListCursor>,
) -> Result<OrderPage, StoreError> {
    // One row more than asked says whether there is a next page.
    let (after_t, after_id) = after
        .map(|c| (c.created_at, c.order_id.to_string()))
        .unwrap_or_else(|| ("\u{10FFFF}".to_owned(), String::new()));
    let mut orders = all(
        conn,
        list_sql(),
        params![customer, after_t, after_id, i64::from(limit) + 1],
        columns,
    )
    .map_err(sqlite_err)?
    .into_iter()
    .map(record)
    .collect::<Result<Vec<_>, _>>()?;
    let next = if orders.len() > limit as usize {
        orders.truncate(limit as usize);
        orders.last().map(|o| ListCursor {
            created_at: format_ts(o.order.created_at),
            order_id: o.order.id,
        })
    } else {
        None
    };
    let orders = orders
        .into_iter()
        .map(|o| with_saga_details(conn, o))
        .collect::<Result<_, _>>()?;
    Ok(OrderPage { orders, next })
}

/// Adds what the saga produced for an order: the voucher it earned and its step history.
fn with_saga_details(conn: &Connection, order: OrderRecord) -> Result<OrderRecord, StoreError> {
    let id = order.order.id.to_string();
    let sql = format!("SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE issued_for_order = ?1");
    let voucher_issued = conn
        .prepare_cached(&sql)
        .and_then(|mut st| st.query_row([&id], voucher_from_row).optional())
        .map_err(sqlite_err)?
        .transpose()?;
    let step = |r: &rusqlite::Row<'_>| {
        Ok(StepRecord {
            step: r.get(0)?,
            status: r.get(1)?,
            attempts: r.get(2)?,
            started_at: r.get(3)?,
            finished_at: r.get(4)?,
            error: r.get(5)?,
        })
    };
    let steps = all(
        conn,
        "SELECT step, status, attempts, started_at, finished_at, error FROM saga_steps
         WHERE order_id = ?1 ORDER BY started_at, rowid",
        [&id],
        step,
    )
    .map_err(sqlite_err)?;
    Ok(OrderRecord {
        voucher_issued,
        steps,
        ..order
    })
}
