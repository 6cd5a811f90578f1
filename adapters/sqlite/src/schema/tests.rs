//! The migrations on databases of every earlier version: each keeps what was there.

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

    let list = crate::order_reads::list_sql();
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
    // No sort: neither of the customer's orders nor of an order's steps.
    assert!(
        !plan.iter().any(|p| p.contains("TEMP B-TREE")),
        "sorts: {plan:?}"
    );
    assert!(
        plan.iter()
            .any(|p| p.contains("COVERING INDEX vouchers_for_order")),
        "{plan:?}"
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
    assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
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
    // No sort: the receive reads the index in send order.
    assert!(
        !plan.iter().any(|p| p.contains("TEMP B-TREE")),
        "sorts: {plan:?}"
    );

    // A second start migrates nothing again.
    migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
    assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
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

/// A version 4 database with one order in each payment state the synchronous charge left.
fn version_4_with_orders(conn: &Connection) {
    for sql in [V1, V2, V3, V4] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 4").unwrap();
    for (order, event, seq) in [("o-charged", "ev-1", 3), ("o-refunded", "ev-2", 5)] {
        conn.execute(
            "INSERT INTO orders VALUES (?1, 'cust', 'COMPLETED', 4, '[]', 1, 0, 1, 'EUR', 'pm_card_visa', NULL, NULL, 't', 't')",
            [order],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO outbox (seq, event_id, order_id, payload, created_at, published_at) VALUES (?1, ?2, ?3, '{}', 't', 't')",
            rusqlite::params![seq, event, order],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO outbox (seq, event_id, order_id, payload, created_at) VALUES (9, 'ev-gone', 'o-gone', '{}', 't')",
        [],
    )
    .unwrap();
    conn.execute("DELETE FROM outbox WHERE seq = 9", [])
        .unwrap();
    for (order, status, charge) in [
        ("o-charged", "CHARGED", "ch_1"),
        ("o-refunded", "REFUNDED", "ch_2"),
    ] {
        conn.execute(
            "INSERT INTO payments VALUES (?1, 100, 'pm_card_visa', ?2, ?3, 't', 't')",
            [order, status, charge],
        )
        .unwrap();
    }
}

/// The `detail` lines of `EXPLAIN QUERY PLAN <sql>`.
fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map([], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn version_5_migrates_a_version_4_database_in_place() {
    let conn = Connection::open_in_memory().unwrap();
    version_4_with_orders(&conn);
    migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
    assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);

    let executions = strings(
        &conn,
        "SELECT order_id || '=' || execution FROM orders ORDER BY order_id",
    );
    assert_eq!(
        executions,
        ["o-charged=ev-1", "o-refunded=ev-2"],
        "backfilled from the outbox"
    );
    let outbox = strings(
        &conn,
        "SELECT seq || ':' || event_id || ':' || published_at FROM outbox ORDER BY seq",
    );
    assert_eq!(outbox, ["3:ev-1:t", "5:ev-2:t"], "rows and seqs kept");
    let payments = strings(
        &conn,
        "SELECT order_id || ':' || payment_id || ':' || status || ':' || amount_cents FROM payments ORDER BY order_id",
    );
    assert_eq!(
        payments,
        [
            "o-charged:ch_1:SUCCEEDED:100",
            "o-refunded:ch_2:REFUNDED:100"
        ]
    );

    // One order now has several rows; a new one never reuses a seq, even a deleted row's.
    conn.execute(
        "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES ('sig-1', 'o-charged', '{}', 't')",
        [],
    )
    .unwrap();
    let seq: i64 = conn
        .query_row("SELECT seq FROM outbox WHERE event_id = 'sig-1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(seq, 10);
    let duplicate = "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES ('sig-1', 'o-x', '{}', 't')";
    assert!(
        conn.execute(duplicate, []).is_err(),
        "event ids stay unique"
    );
    let indexes = strings(
        &conn,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' ORDER BY name",
    );
    assert!(
        indexes.contains(&"outbox_pending".to_owned()),
        "{indexes:?}"
    );
    assert!(
        indexes.contains(&"outbox_by_order".to_owned()),
        "{indexes:?}"
    );
    let plan = query_plan(
        &conn,
        "SELECT seq, payload, attempts FROM outbox
             WHERE published_at IS NULL AND dead_at IS NULL ORDER BY seq LIMIT 10",
    );
    assert!(
        plan.iter().any(|p| p.contains("outbox_pending")),
        "{plan:?}"
    );

    let bad_status =
        "INSERT INTO payments VALUES ('o-new', 'pay_1', 1, 'pm', 'CHARGED', NULL, 't', 't')";
    assert!(
        conn.execute(bad_status, []).is_err(),
        "only the new payment states"
    );
    conn.execute(
        "INSERT INTO shipments VALUES ('o-charged', 'TRK-1', 't')",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO payment_webhooks VALUES ('msg_1', 'o-charged', 'pay_1', 'payment.succeeded', 'applied', 't')",
        [],
    )
    .unwrap();

    // A second start migrates nothing again.
    migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
    assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
    assert_eq!(
        strings(&conn, "SELECT event_id FROM outbox ORDER BY seq").len(),
        3
    );
}

#[test]
fn version_6_marks_the_signals_already_in_the_outbox_and_those_written_after() {
    let conn = Connection::open_in_memory().unwrap();
    for sql in [V1, V2, V3, V4, V5] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 5").unwrap();
    let insert = |event: &str, kind: &str| {
        let payload = serde_json::json!({"type": kind, "id": event}).to_string();
        conn.execute(
            "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, 'o-1', ?2, 't')",
            [event, payload.as_str()],
        )
        .unwrap();
    };
    insert("ev-start", orders_domain::event::ORDER_CREATED);
    insert("ev-signal", orders_domain::event::TASK_SIGNAL);
    migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
    assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
    insert("ev-signal-after", orders_domain::event::TASK_SIGNAL);
    conn.execute(
        "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES ('ev-poison', 'o-1', '{not json', 't')",
        [],
    )
    .unwrap();
    let marked = strings(
        &conn,
        "SELECT event_id || '=' || signal FROM outbox ORDER BY seq",
    );
    assert_eq!(
        marked,
        [
            "ev-start=0",
            "ev-signal=1",
            "ev-signal-after=1",
            "ev-poison=0"
        ]
    );
    let plan = query_plan(
        &conn,
        "SELECT seq FROM outbox
             WHERE published_at IS NULL AND dead_at IS NULL AND signal = 1 ORDER BY seq",
    );
    assert!(
        plan.iter().any(|p| p.contains("outbox_pending_signals")),
        "the pending signals are read by their index: {plan:?}"
    );
}

#[test]
fn version_11_clusters_the_saga_rows_by_order_and_keeps_the_step_order() {
    let conn = Connection::open_in_memory().unwrap();
    version_4_with_orders(&conn);
    for (i, sql) in MIGRATIONS.iter().enumerate().take(10).skip(4) {
        conn.execute_batch(sql).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .unwrap();
    }
    // Two steps started in the same millisecond: their rowids were the order of the history.
    for (order, step, at) in [
        ("o-charged", "RequestPayment", "2026-01-01T00:00:00.002Z"),
        ("o-charged", "ReserveInventory", "2026-01-01T00:00:00.001Z"),
        ("o-charged", "SendNotification", "2026-01-01T00:00:00.002Z"),
        ("o-refunded", "ReserveInventory", "2026-01-01T00:00:00.001Z"),
    ] {
        conn.execute(
            "INSERT INTO saga_steps (order_id, step, status, attempts, started_at) VALUES (?1, ?2, 'SUCCEEDED', 1, ?3)",
            [order, step, at],
        )
        .unwrap();
    }
    conn.execute_batch(
        "INSERT INTO reservations VALUES ('o-charged', '[]', 'RESERVED', 't', 't');
         INSERT INTO notifications VALUES ('o-charged', 'order-placed', 'cust', 'm', 't');
         INSERT INTO shipments VALUES ('o-charged', 'TRK-1', 't');",
    )
    .unwrap();
    migrate(&conn, "2026-01-01T00:00:00.000Z").unwrap();
    assert_eq!(user_version(&conn), 11);

    assert_eq!(
        strings(
            &conn,
            "SELECT order_id || ':' || seq || ':' || step FROM saga_steps ORDER BY order_id, seq"
        ),
        [
            "o-charged:0:ReserveInventory",
            "o-charged:1:RequestPayment",
            "o-charged:2:SendNotification",
            "o-refunded:0:ReserveInventory",
        ]
    );
    assert_eq!(
        strings(
            &conn,
            "SELECT order_id || '=' || payment_id || '/' || status FROM payments ORDER BY order_id"
        ),
        ["o-charged=ch_1/SUCCEEDED", "o-refunded=ch_2/REFUNDED"]
    );
    for (table, rows) in [("reservations", 1), ("notifications", 1), ("shipments", 1)] {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, rows, "{table}");
    }
    // Each is its key's B-tree now: no rowid, and no index beside it.
    for table in [
        "saga_steps",
        "reservations",
        "payments",
        "notifications",
        "shipments",
    ] {
        let without_rowid: i64 = conn
            .query_row(
                "SELECT wr FROM pragma_table_list WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(without_rowid, 1, "{table}");
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_index_list(?1) WHERE origin != 'pk'",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0, "{table}");
    }
}
