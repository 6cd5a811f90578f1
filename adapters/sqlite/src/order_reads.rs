//! The order as GET shows it, read from its row and what the saga and the outside actors left
//! beside it, in ONE statement per read: the payment, the shipment and the voucher it earned
//! (each at most one row, found by a unique key) are joined to the order's row, and the saga's
//! step history comes as one JSON array from one range of `saga_steps`' primary key, where an
//! order's steps sit together (put in `seq` order, the order the steps first started, here).
//! A page of the list is therefore one statement too, not one per order; the cancellation is
//! on the order's row itself.

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
    p.payment_id, p.status, s.tracking_number, s.shipped_at,
    v.code, v.discount_cents, v.status,
    (SELECT json_group_array(json_array(t.seq, t.step, t.status, t.attempts, t.started_at,
        t.finished_at, t.error))
     FROM saga_steps t WHERE t.order_id = o.order_id)";

/// The order with its payment, shipment and earned voucher (each at most one row, by a unique
/// key: the payment's and the shipment's primary key, the voucher's `issued_for_order`). The
/// voucher comes from `vouchers_for_order`, which holds every column read: named, because the
/// planner prefers the UNIQUE index on `issued_for_order`, and its table row is one more seek.
const ORDER_FROM: &str = "orders o
    LEFT JOIN payments p ON p.order_id = o.order_id
    LEFT JOIN shipments s ON s.order_id = o.order_id
    LEFT JOIN vouchers v INDEXED BY vouchers_for_order ON v.issued_for_order = o.order_id";

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

/// One order by id.
fn read_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE o.order_id = ?1")
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
    voucher_code: Option<String>,
    failure: Option<String>,
    created: String,
    updated: String,
    cancel: (Option<String>, Option<String>),
    payment: (Option<String>, Option<String>),
    shipment: (Option<String>, Option<String>),
    voucher: (Option<String>, Option<i64>, Option<String>),
    /// `[[seq, step, status, attempts, started_at, finished_at, error], ...]` in the key's
    /// order (by step name): sorted by `seq` here, which costs less than a sorter per order in
    /// the statement.
    steps: String,
}

/// One element of the steps array, as `json_array` wrote it.
type StepTuple = (
    i64,
    String,
    String,
    u32,
    String,
    Option<String>,
    Option<String>,
);

fn columns(r: &Row<'_>) -> rusqlite::Result<Columns> {
    Ok(Columns {
        id: r.get(0)?,
        customer: r.get(1)?,
        status: r.get(2)?,
        version: r.get(3)?,
        items: r.get(4)?,
        cents: [r.get(5)?, r.get(6)?, r.get(7)?],
        method: r.get(8)?,
        voucher_code: r.get(9)?,
        failure: r.get(10)?,
        created: r.get(11)?,
        updated: r.get(12)?,
        cancel: (r.get(13)?, r.get(14)?),
        payment: (r.get(15)?, r.get(16)?),
        shipment: (r.get(17)?, r.get(18)?),
        voucher: (r.get(19)?, r.get(20)?, r.get(21)?),
        steps: r.get(22)?,
    })
}

fn record(c: Columns) -> Result<OrderRecord, StoreError> {
    let [subtotal, discount, total] = c.cents;
    let id = c.id.parse().map_err(|_| corrupt("order id"))?;
    let order = NewOrder {
        id,
        customer_id: CustomerId::from_trusted(c.customer),
        items: items_from_text(&c.items).ok_or_else(|| corrupt("order items"))?,
        subtotal: Cents(subtotal),
        discount: Cents(discount),
        total: Cents(total),
        payment_method: PaymentMethod::from_trusted(c.method),
        voucher_code: c.voucher_code.map(VoucherCode::from_trusted),
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
    let voucher_issued = match c.voucher {
        (Some(code), Some(discount), Some(status)) => Some(VoucherRecord {
            code: VoucherCode::from_trusted(code),
            customer_id: order.customer_id.clone(),
            discount: Cents(discount),
            status: status
                .parse::<VoucherStatus>()
                .map_err(|_| corrupt("voucher status"))?,
            order_id: id,
        }),
        _ => None,
    };
    let mut steps =
        serde_json::from_str::<Vec<StepTuple>>(&c.steps).map_err(|_| corrupt("saga steps"))?;
    steps.sort_unstable_by_key(|s| s.0);
    let steps = steps
        .into_iter()
        .map(
            |(_, step, status, attempts, started_at, finished_at, error)| StepRecord {
                step,
                status,
                attempts,
                started_at,
                finished_at,
                error,
            },
        )
        .collect();
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
        voucher_issued,
        steps,
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
    conn.prepare_cached(read_sql())
        .and_then(|mut st| st.query_row([id], columns).optional())
        .map_err(sqlite_err)?
        .map(record)
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
    Ok(OrderPage { orders, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// A statement SQLite compiles again on every run costs a parse per GET, more than the
    /// lookup itself. Without the query planner stability guarantee it does, for every
    /// statement that joins on a column the WHERE clause binds (constant propagation marks
    /// the bound value as one the plan depends on).
    #[test]
    fn the_read_statements_are_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_connection(
            &dir.path().join("o.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        super::super::schema::migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
        for (sql, runs) in [(read_sql(), 3), (list_sql(), 3)] {
            for i in 0..runs {
                let id = format!("0190a000-0000-7000-8000-00000000000{i}");
                if sql == list_sql() {
                    list_page(&conn, &format!("c-{i}"), 20, None).unwrap();
                } else {
                    read_order(&conn, &id).unwrap();
                }
            }
            let st = conn.prepare_cached(sql).unwrap();
            assert_eq!(
                st.get_status(StatementStatus::RePrepare),
                0,
                "recompiled on a run: {sql}"
            );
        }
    }

    /// The history is in the order the steps first started, whatever their names' order or
    /// their timestamps (a step retried, or two started in one millisecond).
    #[test]
    fn the_history_is_in_start_order() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
        let id = "0190a000-0000-7000-8000-000000000001";
        conn.execute(
            "INSERT INTO orders (order_id, customer_id, status, version, items, subtotal_cents,
                 discount_cents, total_cents, currency, payment_method, created_at, updated_at)
             VALUES (?1, 'c', 'PENDING', 1, '[]', 1, 0, 1, 'EUR', 'pm_card_visa', ?2, ?2)",
            [id, "2026-01-01T00:00:00.000Z"],
        )
        .unwrap();
        // Started in this order: names in neither alphabetical nor reverse order, one clock.
        for (seq, step) in ["ReserveInventory", "RequestPayment", "SendNotification"]
            .into_iter()
            .enumerate()
        {
            conn.execute(
                "INSERT INTO saga_steps (order_id, step, seq, status, attempts, started_at)
                 VALUES (?1, ?2, ?3, 'SUCCEEDED', 1, '2026-01-01T00:00:00.001Z')",
                params![id, step, seq as i64],
            )
            .unwrap();
        }
        let order = read_order(&conn, id).unwrap().unwrap();
        let steps: Vec<&str> = order.steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(
            steps,
            ["ReserveInventory", "RequestPayment", "SendNotification"]
        );
    }
}
