//! The promises of DESIGN.md section 6, checked after abuse (kills, injected faults) over the
//! API and straight on the database file. Every check records a violation instead of
//! stopping at the first, so a run reports all that is wrong at once; the caller asserts
//! that there are none.
//!
//! What is checked:
//! - every acknowledged order exists (GET 200) and its key replays to the same orderId;
//! - every order in the database was acknowledged (nothing invented);
//! - exactly one order.created event per order; every outbox row (signals too) published;
//!   exactly one execution per order.created event, finished; parked events (poison rows a
//!   test planted) are counted, not judged;
//! - every order is COMPLETED, FAILED or CANCELLED, and every acknowledged cancellation ended
//!   CANCELLED;
//! - stock is conserved per product: start - sold by COMPLETED orders = end, and only
//!   COMPLETED orders keep a reservation;
//! - no voucher is READY while redeemed, none redeemed by a FAILED or CANCELLED order, none
//!   earned by one still READY, none redeemed by two live orders;
//! - no charge without COMPLETED or a refund: a SUCCEEDED payment belongs to a COMPLETED
//!   order, and every COMPLETED order has one; every recorded payment.succeeded webhook left
//!   its payment SUCCEEDED or REFUNDED;
//! - one shipment request per order (the warehouse queue's messages, by the execution their
//!   task token names), and a shipment for every COMPLETED order.

use super::process::{Posted, post_keyed};
use base64::Engine as _;
use reqwest::Client;
use rusqlite::Connection;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a client got a 201 for: its key, the body it sent, the orderId it was given.
#[derive(Clone, Debug)]
pub struct Acked {
    pub key: String,
    pub body: Value,
    pub order_id: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub orders: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub webhooks: i64,
    pub shipment_requests: i64,
    pub outbox_events: i64,
    pub parked: i64,
    pub executions: i64,
    pub payments: i64,
    pub refunds: i64,
    pub vouchers: i64,
    pub replays_checked: usize,
    /// FAILED and CANCELLED orders by `status: reason`, for the run's report.
    pub endings: std::collections::BTreeMap<String, i64>,
    pub violations: Vec<String>,
}

/// Waits (bounded) until no order is left in a non-terminal state. Returns false on timeout;
/// the terminal-state check then reports the stragglers.
pub async fn wait_all_terminal(db: &Path, within: Duration) -> bool {
    let conn = Connection::open(db).unwrap();
    let deadline = Instant::now() + within;
    loop {
        let open = one(
            &conn,
            "SELECT COUNT(*) FROM orders WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')",
        );
        if open == 0 {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn one(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs every check; `stock` is (product, stock at start) for the products the load used;
/// `cancelled` the orders whose cancellation was acknowledged (202).
pub async fn check(
    db: &Path,
    client: &Client,
    base: &str,
    acked: &[Acked],
    cancelled: &[String],
    stock: &[(&str, i64)],
) -> Report {
    let conn = Connection::open(db).unwrap();
    let mut r = Report::default();
    let expect_zero = |what: &str, sql: &str, v: &mut Vec<String>| {
        let n = one(&conn, sql);
        if n != 0 {
            v.push(format!("{what}: {n}"));
        }
    };
    let v = &mut r.violations;

    // Over the API: each acknowledged order is there, and its key still means that order.
    for a in acked {
        let res = client
            .get(format!("{base}/orders/{}", a.order_id))
            .send()
            .await
            .expect("GET order");
        if res.status().as_u16() != 200 {
            v.push(format!(
                "acknowledged order {} is {}",
                a.order_id,
                res.status()
            ));
            continue;
        }
        match post_keyed(client, base, &a.key, &a.body).await {
            Posted::Created(id) if id == a.order_id => r.replays_checked += 1,
            other => v.push(format!(
                "key {} replays to {other:?}, not {}",
                a.key, a.order_id
            )),
        }
    }
    let ids: HashMap<&str, &str> = acked
        .iter()
        .map(|a| (a.order_id.as_str(), a.key.as_str()))
        .collect();
    if ids.len() != acked.len() {
        v.push("two keys were acknowledged with one orderId".into());
    }

    let mut st = conn.prepare("SELECT order_id FROM orders").unwrap();
    let in_db: Vec<String> = st
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &in_db {
        if !ids.contains_key(id.as_str()) {
            v.push(format!("order {id} exists but was never acknowledged"));
        }
    }

    expect_zero(
        "orders without exactly one order.created event",
        "SELECT COUNT(*) FROM orders o WHERE (SELECT COUNT(*) FROM outbox x WHERE x.order_id = o.order_id
           AND json_extract(x.payload, '$.type') = 'order.created') != 1",
        v,
    );
    expect_zero(
        "outbox events neither published nor parked",
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND dead_at IS NULL",
        v,
    );
    expect_zero(
        "order.created events without exactly one execution",
        "SELECT COUNT(*) FROM outbox x WHERE x.dead_at IS NULL AND json_extract(x.payload, '$.type') = 'order.created'
           AND (SELECT COUNT(*) FROM executions e WHERE e.name = x.event_id) != 1",
        v,
    );
    expect_zero(
        "executions of no event",
        "SELECT COUNT(*) FROM executions e WHERE NOT EXISTS (SELECT 1 FROM outbox x WHERE x.event_id = e.name)",
        v,
    );
    expect_zero(
        "executions still RUNNING",
        "SELECT COUNT(*) FROM executions WHERE status = 'RUNNING'",
        v,
    );
    expect_zero(
        "orders not terminal",
        "SELECT COUNT(*) FROM orders WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')",
        v,
    );
    expect_zero(
        "reservations kept by an order that is not COMPLETED",
        "SELECT COUNT(*) FROM reservations r JOIN orders o USING (order_id) WHERE r.status = 'RESERVED' AND o.status != 'COMPLETED'",
        v,
    );
    expect_zero(
        "vouchers READY and redeemed",
        "SELECT COUNT(*) FROM vouchers WHERE status = 'READY' AND redeemed_by_order IS NOT NULL",
        v,
    );
    expect_zero(
        "vouchers kept USED by a FAILED or CANCELLED order",
        "SELECT COUNT(*) FROM vouchers v JOIN orders o ON o.order_id = v.redeemed_by_order WHERE o.status IN ('FAILED', 'CANCELLED')",
        v,
    );
    expect_zero(
        "vouchers earned by a FAILED or CANCELLED order still READY",
        "SELECT COUNT(*) FROM vouchers v JOIN orders o ON o.order_id = v.issued_for_order
           WHERE o.status IN ('FAILED', 'CANCELLED') AND v.status = 'READY'",
        v,
    );
    expect_zero(
        "vouchers redeemed by two COMPLETED orders",
        "SELECT COUNT(*) FROM (SELECT voucher_code FROM orders WHERE voucher_code IS NOT NULL AND status = 'COMPLETED' GROUP BY voucher_code HAVING COUNT(*) > 1)",
        v,
    );
    expect_zero(
        "charges (SUCCEEDED payments) of orders that did not complete",
        "SELECT COUNT(*) FROM payments p JOIN orders o USING (order_id) WHERE p.status = 'SUCCEEDED' AND o.status != 'COMPLETED'",
        v,
    );
    expect_zero(
        "COMPLETED orders without a charge",
        "SELECT COUNT(*) FROM orders o LEFT JOIN payments p USING (order_id) WHERE o.status = 'COMPLETED' AND p.status IS NOT 'SUCCEEDED'",
        v,
    );
    expect_zero(
        "payment.succeeded webhooks recorded whose payment is neither SUCCEEDED nor REFUNDED",
        "SELECT COUNT(*) FROM payment_webhooks w JOIN payments p USING (order_id)
           WHERE w.type = 'payment.succeeded' AND p.status NOT IN ('SUCCEEDED', 'REFUNDED')",
        v,
    );
    expect_zero(
        "COMPLETED orders without a shipment",
        "SELECT COUNT(*) FROM orders o WHERE o.status = 'COMPLETED' AND NOT EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.order_id)",
        v,
    );
    for id in cancelled {
        let status: String = conn
            .query_row(
                "SELECT status FROM orders WHERE order_id = ?1",
                [id],
                |row| row.get(0),
            )
            .unwrap_or_else(|e| format!("missing ({e})"));
        if status != "CANCELLED" {
            v.push(format!(
                "acknowledged cancellation of {id}, yet the order is {status}"
            ));
        }
    }
    r.shipment_requests = shipment_requests_per_order(&conn, v);
    for (product, start) in stock {
        let end: i64 = conn
            .query_row(
                "SELECT available FROM inventory WHERE product_id = ?1",
                [product],
                |row| row.get(0),
            )
            .unwrap();
        let sold: i64 = conn
            .query_row(
                "SELECT COALESCE(SUM(json_extract(i.value, '$.quantity')), 0) FROM orders o, json_each(o.items) i
                 WHERE o.status = 'COMPLETED' AND json_extract(i.value, '$.productId') = ?1",
                [product],
                |row| row.get(0),
            )
            .unwrap();
        if start - sold != end {
            v.push(format!(
                "stock of {product}: start {start} - sold {sold} != end {end}"
            ));
        }
    }

    r.orders = in_db.len() as i64;
    r.completed = one(
        &conn,
        "SELECT COUNT(*) FROM orders WHERE status = 'COMPLETED'",
    );
    r.failed = one(&conn, "SELECT COUNT(*) FROM orders WHERE status = 'FAILED'");
    r.cancelled = one(
        &conn,
        "SELECT COUNT(*) FROM orders WHERE status = 'CANCELLED'",
    );
    r.webhooks = one(&conn, "SELECT COUNT(*) FROM payment_webhooks");
    r.outbox_events = one(&conn, "SELECT COUNT(*) FROM outbox");
    r.parked = one(
        &conn,
        "SELECT COUNT(*) FROM outbox WHERE dead_at IS NOT NULL",
    );
    r.executions = one(&conn, "SELECT COUNT(*) FROM executions");
    r.payments = one(&conn, "SELECT COUNT(*) FROM payments");
    r.refunds = one(
        &conn,
        "SELECT COUNT(*) FROM payments WHERE status = 'REFUNDED'",
    );
    r.vouchers = one(&conn, "SELECT COUNT(*) FROM vouchers");
    let mut st = conn
        .prepare(
            "SELECT status || ': ' || COALESCE(failure_reason, '-'), COUNT(*)
             FROM orders WHERE status IN ('FAILED', 'CANCELLED') GROUP BY 1",
        )
        .unwrap();
    r.endings = st
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    r
}

/// The warehouse queue's messages (tombstones included) counted per execution, which each
/// message's task token names (`workflow/src/executor/tokens.rs`: base64url of a version byte,
/// 32 random bytes, the execution's name). Two for one execution is a second shipment request
/// for one order. Returns the number of messages.
fn shipment_requests_per_order(conn: &Connection, v: &mut Vec<String>) -> i64 {
    let mut st = conn
        .prepare("SELECT dedup_id FROM queue_messages WHERE queue = 'WarehouseQueueUrl'")
        .unwrap();
    let tokens: Vec<String> = st
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut per_execution: HashMap<String, i64> = HashMap::new();
    for token in &tokens {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .unwrap_or_default();
        let name = String::from_utf8_lossy(bytes.get(33..).unwrap_or_default()).into_owned();
        *per_execution.entry(name).or_default() += 1;
    }
    for (execution, n) in per_execution {
        if n != 1 {
            v.push(format!("{n} shipment requests for execution {execution:?}"));
        }
    }
    tokens.len() as i64
}
