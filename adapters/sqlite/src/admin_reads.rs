//! The operations console's port ([`OperatorStore`]): every customer's orders newest first
//! (of one status, of one customer), the counts by status, and the relay's parked events with
//! the one repair an operator makes to them, asking the relay to try one again.
//!
//! Every list is read backwards off an index (schema V9: `orders_by_time`, `orders_by_status`,
//! and `orders_by_customer` when a customer is named), so a page costs its rows however many
//! orders there are; the counts scan only the status index. The tests check the plans. The
//! console polls these, so they run on the read pool and never wait for the writer.

use super::order_reads::corrupt;
use super::{SqliteStore, all, exec, one, sqlite_err};
use async_trait::async_trait;
use orders_domain::store::{
    AllOrders, ListCursor, OperatorStore, OrderSummary, ParkedOutboxEvent, RetryParked, StoreError,
    SummaryPage,
};
use orders_domain::time::{format_millis as format_ts, parse_ts};
use orders_domain::{Cents, CustomerId, EventId, OrderId, OrderStatus};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};

const SUMMARY_COLUMNS: &str = "order_id, customer_id, status, total_cents, created_at,
    updated_at, failure_reason, cancel_requested_at IS NOT NULL, execution";

/// The page query for `query`'s filters, and its parameters but the limit (always last).
fn page_sql(query: &AllOrders) -> (String, Vec<Value>) {
    let mut filters = Vec::new();
    let mut params = Vec::new();
    if let Some(status) = query.status {
        params.push(Value::Text(status.as_str().to_owned()));
        filters.push(format!("status = ?{}", params.len()));
    }
    if let Some(customer) = &query.customer {
        params.push(Value::Text(customer.as_str().to_owned()));
        filters.push(format!("customer_id = ?{}", params.len()));
    }
    // No cursor: after every real timestamp, so the first page needs no query of its own.
    let (after_t, after_id) = query
        .after
        .as_ref()
        .map(|c| (c.created_at.clone(), c.order_id.to_string()))
        .unwrap_or_else(|| ("\u{10FFFF}".to_owned(), String::new()));
    params.push(Value::Text(after_t));
    params.push(Value::Text(after_id));
    let n = params.len();
    filters.push(format!("(created_at, order_id) < (?{}, ?{n})", n - 1));
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM orders WHERE {} \
         ORDER BY created_at DESC, order_id DESC LIMIT ?{}",
        filters.join(" AND "),
        n + 1
    );
    (sql, params)
}

fn ts(text: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    parse_ts(text).ok_or_else(|| corrupt("timestamp"))
}

type SummaryRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    bool,
);

fn summary_row(r: &Row<'_>) -> rusqlite::Result<(SummaryRow, Option<String>)> {
    let row = (
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    );
    Ok((row, r.get(8)?))
}

fn summary((row, execution): (SummaryRow, Option<String>)) -> Result<OrderSummary, StoreError> {
    let (id, customer, status, total, created, updated, failure, cancel) = row;
    Ok(OrderSummary {
        id: id.parse().map_err(|_| corrupt("order id"))?,
        customer_id: CustomerId::from_trusted(customer),
        status: status
            .parse::<OrderStatus>()
            .map_err(|_| corrupt("order status"))?,
        total: Cents(total),
        created_at: ts(&created)?,
        updated_at: ts(&updated)?,
        failure_reason: failure,
        cancellation_requested: cancel,
        execution,
    })
}

fn page(conn: &Connection, query: &AllOrders) -> Result<SummaryPage, StoreError> {
    let (sql, mut params) = page_sql(query);
    // One row more than asked says whether there is a next page.
    params.push(Value::Integer(i64::from(query.limit) + 1));
    let rows = all(conn, &sql, rusqlite::params_from_iter(params), summary_row);
    let mut orders = rows
        .map_err(sqlite_err)?
        .into_iter()
        .map(summary)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if orders.len() > query.limit as usize {
        orders.truncate(query.limit as usize);
        orders.last().map(|o| ListCursor {
            created_at: format_ts(o.created_at),
            order_id: o.id,
        })
    } else {
        None
    };
    Ok(SummaryPage { orders, next })
}

fn counts(
    conn: &Connection,
    customer: Option<&str>,
) -> Result<Vec<(OrderStatus, u64)>, StoreError> {
    const ALL: &str = "SELECT status, count(*) FROM orders GROUP BY status";
    const OF: &str = "SELECT status, count(*) FROM orders WHERE customer_id = ?1 GROUP BY status";
    let row = |r: &Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?));
    let rows = match customer {
        None => all(conn, ALL, [], row),
        Some(c) => all(conn, OF, [c], row),
    };
    let mut counts = rows
        .map_err(sqlite_err)?
        .into_iter()
        .map(|(status, n)| {
            let status = status.parse().map_err(|_| corrupt("order status"))?;
            Ok((status, n.unsigned_abs()))
        })
        .collect::<Result<Vec<(OrderStatus, u64)>, StoreError>>()?;
    // The lifecycle's order, not the alphabet's.
    counts.sort_by_key(|(s, _)| OrderStatus::ALL.iter().position(|a| a == s));
    Ok(counts)
}

const PARKED_SQL: &str = "SELECT event_id, order_id,
        CASE WHEN json_valid(payload) THEN json_extract(payload, '$.type') END,
        COALESCE(last_error, ''), attempts, dead_at
    FROM outbox WHERE dead_at IS NOT NULL ORDER BY seq";

fn parked_row(r: &Row<'_>) -> rusqlite::Result<ParkedOutboxEvent> {
    Ok(ParkedOutboxEvent {
        event_id: r.get(0)?,
        order_id: r.get(1)?,
        event_type: r.get(2)?,
        reason: r.get(3)?,
        attempts: r.get(4)?,
        parked_at: r.get(5)?,
    })
}

/// Clears the park of `event` in one statement; when nothing was parked, says why.
fn unpark(conn: &Connection, event: &str) -> Result<RetryParked, StoreError> {
    const UNPARK: &str = "UPDATE outbox SET dead_at = NULL, attempts = 0
                          WHERE event_id = ?1 AND dead_at IS NOT NULL";
    if exec(conn, UNPARK, [event]).map_err(sqlite_err)? == 1 {
        return Ok(RetryParked::Retried);
    }
    let exists = one(
        conn,
        "SELECT 1 FROM outbox WHERE event_id = ?1",
        [event],
        |_| Ok(()),
    )
    .optional()
    .map_err(sqlite_err)?;
    Ok(match exists {
        Some(()) => RetryParked::NotParked,
        None => RetryParked::NotFound,
    })
}

#[async_trait]
impl OperatorStore for SqliteStore {
    async fn all_orders(&self, query: &AllOrders) -> Result<SummaryPage, StoreError> {
        let query = query.clone();
        self.read(move |conn| page(conn, &query)).await
    }

    async fn order_summary(&self, id: OrderId) -> Result<Option<OrderSummary>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM orders WHERE order_id = ?1");
        let id = id.to_string();
        self.read(move |conn| {
            one(conn, &sql, [id], summary_row)
                .optional()
                .map_err(sqlite_err)?
                .map(summary)
                .transpose()
        })
        .await
    }

    async fn status_counts(
        &self,
        customer: Option<&CustomerId>,
    ) -> Result<Vec<(OrderStatus, u64)>, StoreError> {
        let customer = customer.map(|c| c.as_str().to_owned());
        self.read(move |conn| counts(conn, customer.as_deref()))
            .await
    }

    async fn parked(&self) -> Result<Vec<ParkedOutboxEvent>, StoreError> {
        self.read(|conn| all(conn, PARKED_SQL, [], parked_row).map_err(sqlite_err))
            .await
    }

    async fn retry_parked(&self, event: EventId) -> Result<RetryParked, StoreError> {
        let event = event.to_string();
        let outcome = self.write(move |conn| unpark(conn, &event)).await?;
        if outcome == RetryParked::Retried {
            self.outbox_signal.notify_one();
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
