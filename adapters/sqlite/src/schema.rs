//! The SQLite schema, migrated by `PRAGMA user_version`, and the starting catalogue.
//!
//! Migrations run once per database inside `BEGIN IMMEDIATE`, so two processes starting on one
//! new file cannot both apply them. The catalogue is seeded by the migration that creates the
//! inventory table, i.e. on first start only: later stock changes are never overwritten.

use rusqlite::Connection;

/// Starting stock: the shared catalogue (README.md documents it).
pub(crate) use orders_domain::CATALOGUE;

const V1: &str = r#"
CREATE TABLE orders (
    order_id        TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    status          TEXT NOT NULL,
    version         INTEGER NOT NULL,
    items           TEXT NOT NULL,          -- JSON [{productId, quantity, priceCents}]
    subtotal_cents  INTEGER NOT NULL,
    discount_cents  INTEGER NOT NULL,
    total_cents     INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    payment_method  TEXT NOT NULL,
    voucher_code    TEXT,
    failure_reason  TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC, order_id DESC);

CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    order_id      TEXT NOT NULL UNIQUE,
    payload       TEXT NOT NULL,            -- the CloudEvents envelope, as published
    created_at    TEXT NOT NULL,
    published_at  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    dead_at       TEXT                      -- parked: undecodable, never retried
) STRICT;
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL AND dead_at IS NULL;

CREATE TABLE idempotency (
    key             TEXT PRIMARY KEY,
    fingerprint     TEXT NOT NULL,
    status          INTEGER NOT NULL,
    location        TEXT,
    body            TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at_ms   INTEGER NOT NULL        -- checked at read: an expired row is absent
) STRICT;
CREATE INDEX idempotency_expiry ON idempotency (expires_at_ms);

CREATE TABLE inventory (
    product_id  TEXT PRIMARY KEY,
    available   INTEGER NOT NULL CHECK (available >= 0),
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE vouchers (
    code               TEXT PRIMARY KEY,
    customer_id        TEXT NOT NULL,
    discount_cents     INTEGER NOT NULL,
    status             TEXT NOT NULL,
    issued_for_order   TEXT NOT NULL UNIQUE,  -- one voucher per earning order
    redeemed_by_order  TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;
CREATE INDEX vouchers_by_customer ON vouchers (customer_id, created_at);

-- Saga step effects, one row per (order, step): what makes each step idempotent.
CREATE TABLE reservations (
    order_id    TEXT PRIMARY KEY,
    items       TEXT NOT NULL,
    status      TEXT NOT NULL,              -- RESERVED | RELEASED
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE payments (
    order_id        TEXT PRIMARY KEY,
    amount_cents    INTEGER NOT NULL,
    payment_method  TEXT NOT NULL,
    status          TEXT NOT NULL,          -- CHARGED | REFUNDED
    charge_id       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE TABLE notifications (
    order_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (order_id, kind)
) STRICT;

CREATE TABLE saga_steps (
    order_id     TEXT NOT NULL,
    step         TEXT NOT NULL,
    status       TEXT NOT NULL,             -- RUNNING | SUCCEEDED | FAILED
    attempts     INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    error        TEXT,
    PRIMARY KEY (order_id, step)
) STRICT;

-- The local executor's durable state.
CREATE TABLE executions (
    name        TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    seq         INTEGER NOT NULL,           -- the snapshot's seq: checked on every record
    snapshot    TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX executions_running ON executions (name) WHERE status = 'RUNNING';

CREATE TABLE execution_history (
    name   TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    event  TEXT NOT NULL,
    PRIMARY KEY (name, seq)
) STRICT;
"#;

/// History rows hold what one `record` appended (a JSON array, `seq` = its first event's):
/// about 6 rows per order instead of 21, each an index entry the writer maintains.
const V2: &str = r#"
UPDATE execution_history SET event = '[' || event || ']';
ALTER TABLE execution_history RENAME COLUMN event TO events;
"#;

/// `orders_by_customer` in ascending order: the listing reads it backwards, without a sort. A
/// new entry goes at the end of its customer's range instead of at the start, where page
/// splits left the pages about half full: the index is about a third smaller, and a group of
/// new orders rewrites fewer of its pages (docs/BENCHMARKS.md, "Settings that matter").
const V3: &str = r#"
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders (customer_id, created_at, order_id);
"#;

/// The local task queues (`queue.rs`). A deleted message keeps its row, without its body, so
/// its `(queue, dedup_id)` stays taken. `visible_at_ms` is 0 until the first receive; the
/// partial index serves the receive (live messages of a queue in send order), and holds
/// `visible_at_ms` so that in-flight messages are skipped without reading their rows.
const V4: &str = r#"
CREATE TABLE queue_messages (
    seq            INTEGER PRIMARY KEY,     -- send order: FIFO within a queue
    queue          TEXT NOT NULL,
    dedup_id       TEXT NOT NULL,
    message_id     TEXT NOT NULL UNIQUE,
    body           TEXT,                    -- JSON; NULL once deleted
    sent_at_ms     INTEGER NOT NULL,
    visible_at_ms  INTEGER NOT NULL,
    receipt        TEXT UNIQUE,             -- the latest receive's; NULL before it, and once deleted
    receive_count  INTEGER NOT NULL DEFAULT 0,
    deleted_at_ms  INTEGER,                 -- set: a tombstone, kept for its dedup_id
    UNIQUE (queue, dedup_id)
) STRICT;
CREATE INDEX queue_live ON queue_messages (queue, seq, visible_at_ms) WHERE deleted_at_ms IS NULL;
"#;

const MIGRATIONS: [&str; 4] = [V1, V2, V3, V4];

pub(crate) fn migrate(conn: &Connection, now: &str) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            conn.execute_batch(sql)?;
            if i == 0 {
                let mut seed = conn.prepare(
                    "INSERT INTO inventory (product_id, available, updated_at) VALUES (?1, ?2, ?3)",
                )?;
                for (product, stock) in CATALOGUE {
                    seed.execute(rusqlite::params![product, stock, now])?;
                }
            }
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history_rows(conn: &Connection) -> Vec<(i64, String)> {
        conn.prepare("SELECT seq, events FROM execution_history ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn version_3_lists_a_version_2_database_newest_first_from_the_index() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.execute_batch("PRAGMA user_version = 2").unwrap();
        for (id, created) in [
            ("b", "2026-01-01T00:00:01.000Z"),
            ("a", "2026-01-01T00:00:02.000Z"),
            ("c", "2026-01-01T00:00:01.000Z"),
        ] {
            conn.execute(
                "INSERT INTO orders VALUES (?1, 'cust', 'PENDING', 1, '[]', 1, 0, 1, 'EUR', 'CARD', NULL, NULL, ?2, ?2)",
                [id, created],
            )
            .unwrap();
        }
        migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
        assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);

        let descending: Vec<i64> = conn
            .prepare("SELECT desc FROM pragma_index_xinfo('orders_by_customer') WHERE key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(descending, [0, 0, 0]);

        let list = super::super::orders::list_sql();
        let first_page = rusqlite::params!["cust", "\u{10FFFF}", "", 10];
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {list}"))
            .unwrap()
            .query_map(first_page, |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX orders_by_customer")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|p| p.contains("TEMP B-TREE")),
            "sorts: {plan:?}"
        );

        let ids: Vec<String> = conn
            .prepare(list)
            .unwrap()
            .query_map(first_page, |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, ["a", "c", "b"]);
    }

    #[test]
    fn version_4_adds_the_queue_to_a_version_3_database() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in [V1, V2, V3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 3").unwrap();
        conn.execute(
            "INSERT INTO executions VALUES ('e', 'RUNNING', 1, '{}', 't', 't')",
            [],
        )
        .unwrap();

        migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
        assert_eq!(user_version(&conn), 4);
        let executions: i64 = conn
            .query_row("SELECT count(*) FROM executions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(executions, 1, "the older rows are kept");

        let send = |queue: &str, dedup: &str, id: &str| {
            conn.execute(
                "INSERT INTO queue_messages (queue, dedup_id, message_id, body, sent_at_ms, visible_at_ms)
                 VALUES (?1, ?2, ?3, '{}', 1, 0)",
                [queue, dedup, id],
            )
        };
        send("q", "token", "m1").unwrap();
        assert!(
            send("q", "token", "m2").is_err(),
            "one message per dedup id"
        );
        send("other", "token", "m3").unwrap();
        conn.execute(
            "UPDATE queue_messages SET body = NULL, deleted_at_ms = 2 WHERE message_id = 'm1'",
            [],
        )
        .unwrap();
        assert!(send("q", "token", "m4").is_err(), "a tombstone keeps it");

        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", crate::queue::RECEIVE_SQL))
            .unwrap()
            .query_map(rusqlite::params!["q", 5, 10], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("USING COVERING INDEX queue_live")
                    || p.contains("USING INDEX queue_live")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|p| p.contains("TEMP B-TREE")),
            "sorts: {plan:?}"
        );

        // A second start migrates nothing again.
        migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
        assert_eq!(user_version(&conn), 4);
    }

    #[test]
    fn version_2_keeps_a_version_1_history_as_one_event_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        conn.execute(
            r#"INSERT INTO execution_history (name, seq, event)
               VALUES ('e', 1, '{"seq":1}'), ('e', 2, '{"seq":2}')"#,
            [],
        )
        .unwrap();

        migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
        let expected = vec![
            (1, r#"[{"seq":1}]"#.to_owned()),
            (2, r#"[{"seq":2}]"#.to_owned()),
        ];
        assert_eq!(history_rows(&conn), expected);
        assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);

        // A second start migrates nothing again.
        migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
        assert_eq!(history_rows(&conn), expected);
    }
}
