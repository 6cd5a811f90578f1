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

/// The order lifecycle with its outside actors. The outbox holds several rows per order now
/// (`order.created`, then the signals for its saga), so it is rebuilt without `order_id
/// UNIQUE` (rows, seqs and the AUTOINCREMENT high-water mark kept; the order index stays, for
/// the lookups by order). The order keeps its saga's execution name (the `order.created` event
/// id, which the cancel signal names) and the customer's cancellation; payments move from the
/// synchronous charge to the provider's REQUESTED payment that its webhook settles (a CHARGED
/// row becomes SUCCEEDED, its charge id the payment id). Applied webhooks are kept by
/// `webhook-id`, so a second delivery has no effect.
const V5: &str = r#"
ALTER TABLE orders ADD COLUMN execution TEXT;
ALTER TABLE orders ADD COLUMN cancel_requested_at TEXT;
ALTER TABLE orders ADD COLUMN cancel_reason TEXT;
UPDATE orders SET execution =
    (SELECT event_id FROM outbox WHERE outbox.order_id = orders.order_id ORDER BY seq LIMIT 1);

CREATE TABLE outbox_v5 (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    order_id      TEXT NOT NULL,
    payload       TEXT NOT NULL,            -- the CloudEvents envelope, as published
    created_at    TEXT NOT NULL,
    published_at  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    dead_at       TEXT                      -- parked: undecodable, never retried
) STRICT;
INSERT INTO outbox_v5 (seq, event_id, order_id, payload, created_at, published_at, attempts, last_error, dead_at)
    SELECT seq, event_id, order_id, payload, created_at, published_at, attempts, last_error, dead_at FROM outbox;
-- A seq once used is never used again, even when its row is gone.
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'outbox_v5', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox_v5');
UPDATE sqlite_sequence SET seq = max(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0))
    WHERE name = 'outbox_v5';
DROP TABLE outbox;
ALTER TABLE outbox_v5 RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_by_order ON outbox (order_id);

CREATE TABLE payments_v5 (
    order_id        TEXT PRIMARY KEY,
    payment_id      TEXT NOT NULL,
    amount_cents    INTEGER NOT NULL,
    payment_method  TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('REQUESTED', 'SUCCEEDED', 'FAILED', 'REFUNDED')),
    task_token      TEXT,                   -- what the webhook's signal completes
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
INSERT INTO payments_v5 (order_id, payment_id, amount_cents, payment_method, status, task_token, created_at, updated_at)
    SELECT order_id, charge_id, amount_cents, payment_method,
           CASE status WHEN 'CHARGED' THEN 'SUCCEEDED' ELSE status END, NULL, created_at, updated_at
    FROM payments;
DROP TABLE payments;
ALTER TABLE payments_v5 RENAME TO payments;

CREATE TABLE shipments (
    order_id         TEXT PRIMARY KEY,
    tracking_number  TEXT NOT NULL,
    shipped_at       TEXT NOT NULL
) STRICT;

CREATE TABLE payment_webhooks (
    webhook_id   TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL,
    payment_id   TEXT NOT NULL,
    type         TEXT NOT NULL,             -- payment.succeeded | payment.failed
    outcome      TEXT NOT NULL,             -- what applying it came to, for operators
    received_at  TEXT NOT NULL
) STRICT;
"#;

/// Signals before starts: under a backlog of new orders, the relay takes the signals first (a
/// payment result or a cancellation for a saga already running, often waiting against a
/// deadline) and the starts after them. `signal` is computed from the row's CloudEvent type
/// (`orders_domain::event::TASK_SIGNAL`), so no writer can set it wrong, and a partial index
/// holds the pending ones.
const V6: &str = r#"
-- A row that is not JSON is still taken (and parked by the relay as poison): not a signal.
ALTER TABLE outbox ADD COLUMN signal INTEGER GENERATED ALWAYS AS (
    CASE WHEN json_valid(payload)
         THEN json_extract(payload, '$.type') IS 'orders.internal.task-signal' ELSE 0 END) VIRTUAL;
CREATE INDEX outbox_pending_signals ON outbox (seq)
    WHERE published_at IS NULL AND dead_at IS NULL AND signal = 1;
"#;

/// Domain events for subscribers. The public events are outbox rows too (written with their
/// change, `published_at` set at once: the relay has nothing to act on), and each one is fanned
/// out, in the same transaction, into one `deliveries` row per subscription that wants its type:
/// a subscription sees every event written after it was created, crash or not. A delivery is
/// PENDING until its subscriber answered 2xx (DELIVERED) or it was given up on (FAILED, the
/// dead letter). The order's trace is kept on the order for the events its saga writes later.
const V7: &str = r#"
ALTER TABLE orders ADD COLUMN traceparent TEXT;

CREATE TABLE subscriptions (
    id               TEXT PRIMARY KEY,        -- uuid
    url              TEXT NOT NULL,
    types            TEXT NOT NULL,           -- JSON array of public event types
    secret           TEXT NOT NULL,           -- whsec_...: signs every delivery
    created_at       TEXT NOT NULL,
    disabled_at      TEXT,                    -- set when the subscriber answered 410 Gone
    disabled_reason  TEXT
) STRICT;

CREATE TABLE deliveries (
    subscription_id  TEXT NOT NULL,
    event_seq        INTEGER NOT NULL,        -- outbox.seq of the event
    order_id         TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at_ms       INTEGER NOT NULL,        -- not before: the retry's backoff
    first_attempt_ms INTEGER,
    last_status      INTEGER,                 -- the subscriber's last HTTP status
    last_error       TEXT,
    finished_at      TEXT,                    -- delivered, or dead-lettered
    PRIMARY KEY (subscription_id, event_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (subscription_id, next_at_ms) WHERE state = 'PENDING';
CREATE INDEX deliveries_pending_by_order ON deliveries (subscription_id, order_id, event_seq)
    WHERE state = 'PENDING';
CREATE INDEX deliveries_failed ON deliveries (subscription_id, event_seq) WHERE state = 'FAILED';
"#;

/// Retention (`retention.rs`): an outbox row is purged with its deliveries, once none of them
/// is still owed or recently finished, so the purge looks a row's deliveries up by event. An
/// entry is added with each delivery and never changes with its state.
const V8: &str = r#"
CREATE INDEX deliveries_by_event ON deliveries (event_seq);
"#;

/// The operations console (`admin_reads.rs`): every order newest first, and of one status
/// newest first, each read backwards off an index instead of sorting the table; the status
/// index also counts the orders per status without reading their rows. `orders_by_time` only
/// grows at its end; `orders_by_status` moves an entry at each status change. The parked
/// outbox rows are listed off a partial index, which holds nothing until the relay parks one.
const V9: &str = r#"
CREATE INDEX orders_by_time ON orders (created_at, order_id);
CREATE INDEX orders_by_status ON orders (status, created_at, order_id);
CREATE INDEX outbox_parked ON outbox (seq) WHERE dead_at IS NOT NULL;
"#;

/// Redrive (`executions.rs`): the FAILED executions, most recently failed first, for an
/// operator to act on, read off a partial index that holds only those (a few, normally none).
const V10: &str = r#"
CREATE INDEX executions_failed ON executions (updated_at, name) WHERE status = 'FAILED';
"#;

/// The saga's per-order rows clustered by order: `saga_steps`, `reservations`, `payments`,
/// `notifications` and `shipments` are keyed by the order (and step or kind) and only ever
/// found by it, so each is stored in its key's B-tree (WITHOUT ROWID) instead of a rowid table
/// beside an index on the key. A GET finds the order's steps as one run of one page instead of
/// an index entry and a table row per step, and every write the saga makes to them updates one
/// B-tree instead of two. A step's `seq` is its place in the order's history (0, 1, ... in the
/// order the steps first started, which a retry keeps), the rowid's role before. The voucher
/// an order earned is read from an index that holds what GET shows of it.
const V11: &str = r#"
CREATE TABLE saga_steps_v11 (
    order_id     TEXT NOT NULL,
    step         TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    status       TEXT NOT NULL,             -- RUNNING | SUCCEEDED | FAILED
    attempts     INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    error        TEXT,
    PRIMARY KEY (order_id, step)
) STRICT, WITHOUT ROWID;
INSERT INTO saga_steps_v11 (order_id, step, seq, status, attempts, started_at, finished_at, error)
    SELECT order_id, step, row_number() OVER (PARTITION BY order_id ORDER BY started_at, rowid) - 1,
           status, attempts, started_at, finished_at, error
    FROM saga_steps;
DROP TABLE saga_steps;
ALTER TABLE saga_steps_v11 RENAME TO saga_steps;

CREATE TABLE reservations_v11 (
    order_id    TEXT PRIMARY KEY,
    items       TEXT NOT NULL,
    status      TEXT NOT NULL,              -- RESERVED | RELEASED
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO reservations_v11 SELECT order_id, items, status, created_at, updated_at FROM reservations;
DROP TABLE reservations;
ALTER TABLE reservations_v11 RENAME TO reservations;

CREATE TABLE payments_v11 (
    order_id        TEXT PRIMARY KEY,
    payment_id      TEXT NOT NULL,
    amount_cents    INTEGER NOT NULL,
    payment_method  TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('REQUESTED', 'SUCCEEDED', 'FAILED', 'REFUNDED')),
    task_token      TEXT,                   -- what the webhook's signal completes
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO payments_v11 (order_id, payment_id, amount_cents, payment_method, status, task_token, created_at, updated_at)
    SELECT order_id, payment_id, amount_cents, payment_method, status, task_token, created_at, updated_at FROM payments;
DROP TABLE payments;
ALTER TABLE payments_v11 RENAME TO payments;

CREATE TABLE notifications_v11 (
    order_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (order_id, kind)
) STRICT, WITHOUT ROWID;
INSERT INTO notifications_v11 SELECT order_id, kind, customer_id, message, created_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_v11 RENAME TO notifications;

CREATE TABLE shipments_v11 (
    order_id         TEXT PRIMARY KEY,
    tracking_number  TEXT NOT NULL,
    shipped_at       TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO shipments_v11 SELECT order_id, tracking_number, shipped_at FROM shipments;
DROP TABLE shipments;
ALTER TABLE shipments_v11 RENAME TO shipments;

-- The voucher an order earned, as GET shows it, from this index alone (no table row).
CREATE INDEX vouchers_for_order ON vouchers (issued_for_order, code, discount_cents, status);
"#;

const MIGRATIONS: [&str; 11] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11];

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
mod tests;
