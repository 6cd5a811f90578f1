//! Retention on a real database, with the clock passed in: exactly which rows of each table a
//! pass deletes and which it keeps, that small jobs come to the same, and that the queries
//! use their indexes.

use super::{Purged, Retention};
use crate::{SqliteStore, all, exec, sqlite_err};
use chrono::{DateTime, Duration, Utc};
use orders_domain::time::format_millis as format_ts;
use rusqlite::{Connection, params};

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// Rows are written at `T0` (old) or `T0 + 2 days` (young); the pass runs 31 days after
/// `T0` keeping 30, so the cutoff is `T0 + 1 day`.
fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(offset: Duration) -> String {
    format_ts(t0() + offset)
}

fn ms(offset: Duration) -> i64 {
    (t0() + offset).timestamp_millis()
}

fn keep_30_days() -> Retention {
    Retention::new(std::time::Duration::from_secs(30 * 86_400))
}

struct Db {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    Db { store, _dir: dir }
}

fn sql(conn: &Connection, statement: &str, p: impl rusqlite::Params) {
    exec(conn, statement, p).unwrap();
}

/// An execution of `order`, started at `start` and last changed at `end`, with two history
/// rows, two step rows and a notification.
fn execution(conn: &Connection, name: &str, order: &str, status: &str, start: &str, end: &str) {
    let snapshot = format!(r#"{{"name":"{name}","input":{{"orderId":"{order}"}}}}"#);
    sql(
        conn,
        "INSERT INTO executions (name, status, seq, snapshot, started_at, updated_at)
         VALUES (?1, ?2, 2, ?3, ?4, ?5)",
        params![name, status, snapshot, start, end],
    );
    for seq in [1, 2] {
        sql(
            conn,
            "INSERT INTO execution_history (name, seq, events) VALUES (?1, ?2, '[]')",
            params![name, seq],
        );
    }
    for (seq, step) in ["ReserveInventory", "RequestPayment"]
        .into_iter()
        .enumerate()
    {
        sql(
            conn,
            "INSERT INTO saga_steps (order_id, step, seq, status, attempts, started_at, finished_at)
             VALUES (?1, ?2, ?3, 'SUCCEEDED', 1, ?4, ?4)",
            params![order, step, seq as i64, start],
        );
    }
    sql(
        conn,
        "INSERT INTO notifications (order_id, kind, customer_id, message, created_at)
         VALUES (?1, 'order-confirmed', 'c', 'm', ?2)",
        params![order, start],
    );
}

/// An order with every business record beside it.
fn business(conn: &Connection, order: &str, when: &str) {
    sql(
        conn,
        "INSERT INTO orders (order_id, customer_id, status, version, items, subtotal_cents,
             discount_cents, total_cents, currency, payment_method, created_at, updated_at)
         VALUES (?1, 'c', 'COMPLETED', 7, '[]', 100, 0, 100, 'EUR', 'pm_card_visa', ?2, ?2)",
        params![order, when],
    );
    sql(
        conn,
        "INSERT INTO payments (order_id, payment_id, amount_cents, payment_method, status,
             created_at, updated_at)
         VALUES (?1, 'pay-' || ?1, 100, 'pm_card_visa', 'SUCCEEDED', ?2, ?2)",
        params![order, when],
    );
    sql(
        conn,
        "INSERT INTO reservations (order_id, items, status, created_at, updated_at)
         VALUES (?1, '[]', 'RESERVED', ?2, ?2)",
        params![order, when],
    );
    sql(
        conn,
        "INSERT INTO shipments (order_id, tracking_number, shipped_at) VALUES (?1, 'TRK', ?2)",
        params![order, when],
    );
    sql(
        conn,
        "INSERT INTO vouchers (code, customer_id, discount_cents, status, issued_for_order,
             created_at, updated_at)
         VALUES ('VCH-' || ?1, 'c', 500, 'READY', ?1, ?2, ?2)",
        params![order, when],
    );
}

/// An outbox row; `published` and `parked` are its times, if any. Returns its seq.
fn event(
    conn: &Connection,
    id: &str,
    created: &str,
    published: Option<&str>,
    parked: Option<&str>,
) -> i64 {
    sql(
        conn,
        "INSERT INTO outbox (event_id, order_id, payload, created_at, published_at, dead_at)
         VALUES (?1, 'o', '{}', ?2, ?3, ?4)",
        params![id, created, published, parked],
    );
    conn.last_insert_rowid()
}

fn delivery(conn: &Connection, subscription: &str, seq: i64, state: &str, finished: Option<&str>) {
    sql(
        conn,
        "INSERT INTO deliveries (subscription_id, event_seq, order_id, state, next_at_ms, finished_at)
         VALUES (?1, ?2, 'o', ?3, 0, ?4)",
        params![subscription, seq, state, finished],
    );
}

fn message(conn: &Connection, token: &str, sent: i64, deleted: Option<i64>) {
    sql(
        conn,
        "INSERT INTO queue_messages (queue, dedup_id, message_id, body, sent_at_ms, visible_at_ms,
             deleted_at_ms)
         VALUES ('warehouse', ?1, ?1, CASE WHEN ?3 IS NULL THEN '{}' END, ?2, 0, ?3)",
        params![token, sent, deleted],
    );
}

fn webhook(conn: &Connection, id: &str, order: &str, received: &str) {
    sql(
        conn,
        "INSERT INTO payment_webhooks (webhook_id, order_id, payment_id, type, outcome, received_at)
         VALUES (?1, ?2, 'pay', 'payment.succeeded', 'applied', ?3)",
        params![id, order, received],
    );
}

/// A database with old and young rows of every kind retention judges.
async fn seeded(store: &SqliteStore) {
    store
        .write(|c| {
            let (old, young) = (at(Duration::zero()), at(days(2)));
            execution(c, "e-done", "o-done", "SUCCEEDED", &old, &old);
            execution(c, "e-failed", "o-failed", "FAILED", &old, &old);
            // Started before the cutoff, still running: kept, and it pins the tombstones.
            let running_start = at(Duration::hours(12));
            execution(c, "e-running", "o-running", "RUNNING", &running_start, &old);
            execution(c, "e-late", "o-late", "SUCCEEDED", &old, &young);
            execution(c, "e-young", "o-young", "SUCCEEDED", &young, &young);
            business(c, "o-done", &old);
            business(c, "o-payment-requested", &old);
            exec(
                c,
                "UPDATE payments SET status = 'REQUESTED' WHERE order_id = 'o-payment-requested'",
                [],
            )
            .map_err(sqlite_err)?;

            let bare = event(c, "ev-bare", &old, Some(&old), None);
            let finished = event(c, "ev-finished", &old, Some(&old), None);
            delivery(c, "s1", finished, "DELIVERED", Some(&old));
            delivery(c, "s2", finished, "FAILED", Some(&old));
            let owed = event(c, "ev-owed", &old, Some(&old), None);
            delivery(c, "s1", owed, "DELIVERED", Some(&old));
            delivery(c, "s2", owed, "PENDING", None);
            let recent = event(c, "ev-dead-lettered-recently", &old, Some(&old), None);
            delivery(c, "s1", recent, "FAILED", Some(&young));
            event(c, "ev-parked", &old, None, Some(&old));
            event(c, "ev-unpublished", &old, None, None);
            event(c, "ev-published-late", &old, Some(&young), None);
            let young_seq = event(c, "ev-young", &young, Some(&young), None);
            delivery(c, "s1", young_seq, "DELIVERED", Some(&young));
            assert_eq!((bare, young_seq - bare), (1, 7));

            for (key, expires) in [("expired", ms(days(30))), ("live", ms(days(32)))] {
                exec(
                    c,
                    "INSERT INTO idempotency (key, fingerprint, status, body, order_id, created_at,
                         expires_at_ms) VALUES (?1, 'f', 201, '{}', 'o', ?2, ?3)",
                    params![key, old, expires],
                )
                .map_err(sqlite_err)?;
            }

            message(
                c,
                "consumed-before-running-start",
                ms(Duration::zero()),
                Some(ms(Duration::hours(1))),
            );
            message(c, "live-old", ms(Duration::hours(2)), None);
            message(
                c,
                "consumed-after-running-start",
                ms(Duration::hours(13)),
                Some(ms(Duration::hours(14))),
            );
            message(c, "consumed-young", ms(days(2)), Some(ms(days(2))));

            webhook(c, "wh-settled", "o-done", &old);
            webhook(c, "wh-payment-requested", "o-payment-requested", &old);
            webhook(c, "wh-young", "o-done", &young);
            Ok(())
        })
        .await
        .unwrap();
}

fn column(conn: &Connection, query: &str) -> Vec<String> {
    all(conn, query, [], |r| r.get::<_, String>(0)).unwrap()
}

/// What is left of every table retention looks at, and of the business records.
#[derive(Debug, PartialEq)]
struct Left {
    executions: Vec<String>,
    history_of: Vec<String>,
    steps_of: Vec<String>,
    notified: Vec<String>,
    outbox: Vec<String>,
    deliveries: Vec<String>,
    idempotency: Vec<String>,
    queue: Vec<String>,
    webhooks: Vec<String>,
    business: Vec<String>,
}

async fn left(store: &SqliteStore) -> Left {
    store
        .read(|c| {
            Ok(Left {
                executions: column(c, "SELECT name FROM executions ORDER BY name"),
                history_of: column(c, "SELECT DISTINCT name FROM execution_history ORDER BY name"),
                steps_of: column(c, "SELECT DISTINCT order_id FROM saga_steps ORDER BY order_id"),
                notified: column(c, "SELECT order_id FROM notifications ORDER BY order_id"),
                outbox: column(c, "SELECT event_id FROM outbox ORDER BY seq"),
                deliveries: column(
                    c,
                    "SELECT o.event_id || '/' || d.subscription_id FROM deliveries d
                     LEFT JOIN outbox o ON o.seq = d.event_seq ORDER BY d.event_seq, d.subscription_id",
                ),
                idempotency: column(c, "SELECT key FROM idempotency ORDER BY key"),
                queue: column(c, "SELECT dedup_id FROM queue_messages ORDER BY seq"),
                webhooks: column(c, "SELECT webhook_id FROM payment_webhooks ORDER BY rowid"),
                business: column(
                    c,
                    "SELECT 'orders ' || count(*) FROM orders UNION ALL
                     SELECT 'payments ' || count(*) FROM payments UNION ALL
                     SELECT 'reservations ' || count(*) FROM reservations UNION ALL
                     SELECT 'shipments ' || count(*) FROM shipments UNION ALL
                     SELECT 'vouchers ' || count(*) FROM vouchers UNION ALL
                     SELECT 'inventory ' || count(*) FROM inventory",
                ),
            })
        })
        .await
        .unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn expected_after_purge() -> Left {
    Left {
        executions: strings(&["e-late", "e-running", "e-young"]),
        history_of: strings(&["e-late", "e-running", "e-young"]),
        steps_of: strings(&["o-late", "o-running", "o-young"]),
        notified: strings(&["o-late", "o-running", "o-young"]),
        outbox: strings(&[
            "ev-owed",
            "ev-dead-lettered-recently",
            "ev-parked",
            "ev-unpublished",
            "ev-published-late",
            "ev-young",
        ]),
        deliveries: strings(&[
            "ev-owed/s1",
            "ev-owed/s2",
            "ev-dead-lettered-recently/s1",
            "ev-young/s1",
        ]),
        idempotency: strings(&["live"]),
        queue: strings(&["live-old", "consumed-after-running-start", "consumed-young"]),
        webhooks: strings(&["wh-payment-requested", "wh-young"]),
        business: strings(&[
            "orders 2",
            "payments 2",
            "reservations 2",
            "shipments 2",
            "vouchers 2",
            "inventory (the catalogue)",
        ]),
    }
}

#[tokio::test]
async fn a_pass_deletes_exactly_the_finished_history_older_than_the_cutoff() {
    let db = db();
    seeded(&db.store).await;
    let before = left(&db.store).await;
    assert_eq!(before.business[..5], expected_after_purge().business[..5]);
    let purged = db
        .store
        .purge(&keep_30_days(), t0() + days(31), || false)
        .await
        .unwrap();
    let mut expected = expected_after_purge();
    expected.business = before.business;
    assert_eq!(left(&db.store).await, expected);
    let expected_counts = Purged {
        executions: 2,
        history_rows: 4,
        saga_steps: 4,
        notifications: 2,
        outbox_events: 2,
        deliveries: 2,
        idempotency: 1,
        queue_tombstones: 1,
        payment_webhooks: 1,
        jobs: 5,
    };
    assert_eq!(purged, expected_counts);

    // Nothing more is due at the same time: a second pass deletes nothing.
    let again = db
        .store
        .purge(&keep_30_days(), t0() + days(31), || false)
        .await
        .unwrap();
    assert_eq!(again.rows(), 0);
}

#[tokio::test]
async fn nothing_is_deleted_before_its_time() {
    let db = db();
    seeded(&db.store).await;
    let before = left(&db.store).await;
    // At T0 + 29 days the old rows are within the period, and no idempotency record has
    // expired yet.
    let purged = db
        .store
        .purge(&keep_30_days(), t0() + days(29), || false)
        .await
        .unwrap();
    assert_eq!(purged.rows(), 0, "{purged:?}");
    assert_eq!(left(&db.store).await, before);
}

#[tokio::test]
async fn small_jobs_delete_the_same_and_a_stop_ends_the_pass_between_jobs() {
    let db = db();
    seeded(&db.store).await;
    let before = left(&db.store).await.business;
    let tiny = Retention {
        batch: 1,
        ..keep_30_days()
    };
    let stopped = db
        .store
        .purge(&tiny, t0() + days(31), || true)
        .await
        .unwrap();
    assert_eq!(stopped, Purged::default(), "stopped before the first job");
    let purged = db
        .store
        .purge(&tiny, t0() + days(31), || false)
        .await
        .unwrap();
    assert!(purged.jobs > 15, "one row per job: {purged:?}");
    let mut expected = expected_after_purge();
    expected.business = before;
    assert_eq!(left(&db.store).await, expected);
}

fn plan(conn: &Connection, query: &str) -> String {
    all(conn, &format!("EXPLAIN QUERY PLAN {query}"), [], |r| {
        r.get::<_, String>(3)
    })
    .unwrap()
    .join("; ")
}

#[tokio::test]
async fn the_purge_queries_use_indexes() {
    let db = db();
    let plans = db
        .store
        .read(|c| {
            Ok((
                plan(
                    c,
                    "SELECT 1 FROM deliveries d WHERE d.event_seq = 5
                     AND (d.state = 'PENDING' OR d.finished_at IS NULL OR d.finished_at >= 'x')",
                ),
                plan(c, "DELETE FROM deliveries WHERE event_seq = 5"),
                plan(
                    c,
                    "SELECT min(started_at) FROM executions WHERE status = 'RUNNING'",
                ),
                plan(
                    c,
                    "SELECT key FROM idempotency WHERE expires_at_ms <= 5 LIMIT 10",
                ),
            ))
        })
        .await
        .unwrap();
    assert!(plans.0.contains("deliveries_by_event"), "{}", plans.0);
    assert!(plans.1.contains("deliveries_by_event"), "{}", plans.1);
    assert!(plans.2.contains("executions_running"), "{}", plans.2);
    assert!(plans.3.contains("idempotency_expiry"), "{}", plans.3);
}
