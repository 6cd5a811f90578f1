//! Reads (and one write) on the stack's database file, outside the store: what the API does
//! not show.

use super::Stack;
use std::time::{Duration, Instant};

impl Stack {
    /// Payment rows of an order, in a status (`None`: any).
    pub fn payments(&self, order: &str, status: Option<&str>) -> i64 {
        self.query_i64(
            "SELECT COUNT(*) FROM payments WHERE order_id = ?1 AND status = COALESCE(?2, status)",
            rusqlite::params![order, status],
        )
    }

    /// Executor executions whose input is this order's (whatever their name).
    pub fn executions_for(&self, order: &str) -> i64 {
        self.query_i64(
            "SELECT COUNT(*) FROM executions WHERE json_extract(snapshot, '$.input.orderId') = ?1",
            [order],
        )
    }

    /// The name of the one execution whose input is this order's.
    pub fn execution_name(&self, order: &str) -> String {
        let conn = self.connection();
        conn.query_row(
            "SELECT name FROM executions WHERE json_extract(snapshot, '$.input.orderId') = ?1",
            [order],
            |r| r.get(0),
        )
        .expect("one execution for the order")
    }

    /// The status (`SUCCEEDED`, `FAILED`) of the one execution whose input is this order's,
    /// once it has finished (within 10 s). The order's last step commits in the step's own
    /// transaction and the executor records the end of the execution after it, so a reader who
    /// saw the order terminal may still find the execution RUNNING for a moment.
    pub async fn execution_status(&self, order: &str) -> String {
        let conn = self.connection();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status: String = conn
                .query_row(
                    "SELECT status FROM executions WHERE json_extract(snapshot, '$.input.orderId') = ?1",
                    [order],
                    |r| r.get(0),
                )
                .expect("one execution for the order");
            if status != "RUNNING" || Instant::now() >= deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the order's `order.created` row is marked published (its saga started).
    pub fn published(&self, order: &str) -> bool {
        self.query_i64(
            "SELECT published_at IS NOT NULL FROM outbox WHERE order_id = ?1
               AND json_extract(payload, '$.type') = 'order.created'",
            [order],
        ) == 1
    }

    pub async fn wait_published(&self, order: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.published(order) {
            assert!(
                Instant::now() < deadline,
                "outbox row of {order} not published"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn outbox_payload(&self, order: &str) -> String {
        let conn = self.connection();
        conn.query_row(
            "SELECT payload FROM outbox WHERE order_id = ?1
               AND json_extract(payload, '$.type') = 'order.created'",
            [order],
            |r| r.get(0),
        )
        .expect("outbox row")
    }

    /// Writes an outbox row behind the store's back (no commit signal).
    pub fn insert_outbox_row(&self, event_id: &str, order_id: &str, payload: &str) {
        let conn = self.connection();
        conn.execute(
            "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
            [event_id, order_id, payload, "2024-01-01T00:00:00.000Z"],
        )
        .expect("insert outbox row");
    }

    /// One query on the database file, outside the store.
    pub fn query_i64(&self, sql: &str, params: impl rusqlite::Params) -> i64 {
        self.connection()
            .query_row(sql, params, |r| r.get(0))
            .expect(sql)
    }

    fn connection(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.db()).expect("open db");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn
    }
}
