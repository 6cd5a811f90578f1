//! A full disk, made portable: the database capped with `SqliteOptions::max_db_bytes` (SQLite's
//! `max_page_count` on the writer's connection) refuses writes exactly as a full disk does
//! (`SQLITE_FULL`). Space is "freed" by dropping a ballast table written before the cap, as an
//! operator frees a disk: nothing is restarted, and writes must resume by themselves.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use orders_sqlite::SqliteOptions;
use orders_test_support::invariants::wait_all_terminal;
use orders_test_support::stack::Stack;
use orders_workflow::steps::StepSettings;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// What the room left under the cap is worth in orders is not known in advance; this bounds
/// the filling loop.
const MAX_ORDERS: usize = 5_000;
/// The ballast, and the room the cap leaves above the database as seeded plus the ballast.
const BALLAST_BYTES: i64 = 512 * 1024;
const ROOM_BYTES: u64 = 192 * 1024;

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: Value,
}

async fn send(stack: &Stack, req: Request<Body>) -> Answer {
    let res = stack.router.clone().oneshot(req).await.expect("infallible");
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, retry_after) = (header(header::CONTENT_TYPE), header(header::RETRY_AFTER));
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        retry_after,
        body,
    }
}

async fn post(stack: &Stack, key: &str) -> Answer {
    let body = json!({"customerId": "customer-full",
        "items": [{"productId": "mouse", "quantity": 1, "price": 19.99}]});
    let req = Request::post("/orders")
        .header("content-type", "application/json")
        .header("x-idempotency-key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    send(stack, req).await
}

async fn health(stack: &Stack) -> Answer {
    send(stack, Request::get("/health").body(Body::empty()).unwrap()).await
}

fn assert_storage_full(a: &Answer, what: &str) {
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        a.body
    );
    assert_eq!(
        a.content_type.as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(
        a.body["type"], "/problems/storage-full",
        "{what}: {}",
        a.body
    );
    assert_eq!(a.body["status"], 503, "{what}");
    let retry: u64 = a
        .retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no Retry-After in seconds"));
    assert!(retry >= 1, "{what}");
}

fn side_connection(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// Seeds a database, then adds the ballast; returns the cap that leaves `ROOM_BYTES` above it.
async fn seeded_with_ballast(dir: &Path) -> u64 {
    let db = dir.join("orders.db");
    drop(orders_sqlite::SqliteStore::open(&db).expect("seed"));
    let conn = side_connection(&db);
    conn.execute_batch("CREATE TABLE ballast (b BLOB)").unwrap();
    conn.execute("INSERT INTO ballast VALUES (zeroblob(?1))", [BALLAST_BYTES])
        .unwrap();
    let (pages, size): (i64, i64) = conn
        .query_row(
            "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (pages * size) as u64 + ROOM_BYTES
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_database_answers_503_fails_health_and_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let cap = seeded_with_ballast(dir.path()).await;
    let options = SqliteOptions {
        max_db_bytes: Some(cap),
        ..Default::default()
    };
    let stack = Stack::open_with(dir, StepSettings::default(), true, options).await;
    assert_eq!(health(&stack).await.status, StatusCode::OK);

    // Fill to the cap: keyed POSTs until the first refusal.
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let refused = loop {
        assert!(
            acknowledged.len() < MAX_ORDERS,
            "the cap never refused a write"
        );
        let key = format!("fill-{}", acknowledged.len());
        let a = post(&stack, &key).await;
        if a.status != StatusCode::CREATED {
            break a;
        }
        acknowledged.push((key, a.body["orderId"].as_str().unwrap().to_owned()));
    };
    assert!(!acknowledged.is_empty(), "the cap left no room at all");
    assert_storage_full(&refused, "the first refused POST");

    // More writes while full: all refused the same way; /health fails and says why.
    // At the cap, a write that happens to fit into the pages left may still be accepted: go on
    // until twenty in a row are refused, each one the same way.
    let (mut in_a_row, mut refusals) = (0, 1);
    for i in 0..MAX_ORDERS {
        if in_a_row == 20 {
            break;
        }
        let key = format!("full-{i}");
        let a = post(&stack, &key).await;
        if a.status == StatusCode::CREATED {
            acknowledged.push((key, a.body["orderId"].as_str().unwrap().to_owned()));
            in_a_row = 0;
        } else {
            assert_storage_full(&a, "POST while full");
            (in_a_row, refusals) = (in_a_row + 1, refusals + 1);
        }
    }
    assert_eq!(in_a_row, 20, "writes kept being accepted at the cap");
    assert_storage_full(&health(&stack).await, "GET /health while full");
    let during = stack.store.write_refusals();
    assert!(during.refusing);
    assert_eq!(during.episodes, 1, "one episode, not one per request");
    assert!(during.refused >= refusals, "{during:?}");

    // Free space as an operator would, without a restart.
    let db = stack.db();
    side_connection(&db)
        .execute_batch("DROP TABLE ballast")
        .unwrap();

    // Writes resume by themselves (the first may race the refusal in flight), then /health.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut resumed = 0;
    while resumed < 5 {
        assert!(Instant::now() < deadline, "writes did not resume");
        let key = format!("after-{}", acknowledged.len());
        let a = post(&stack, &key).await;
        if a.status == StatusCode::CREATED {
            acknowledged.push((key, a.body["orderId"].as_str().unwrap().to_owned()));
            resumed += 1;
        } else {
            assert_storage_full(&a, "POST after space was freed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // /health recovers at a write that takes space a moment after the last refusal
    // (`space.rs`): a client's, or a background writer's.
    loop {
        let h = health(&stack).await;
        if h.status == StatusCode::OK {
            break;
        }
        assert_storage_full(&h, "GET /health before a write took space");
        assert!(
            Instant::now() < deadline,
            "health stayed failing: {}",
            h.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let key = format!("after-{}", acknowledged.len());
        let a = post(&stack, &key).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        acknowledged.push((key, a.body["orderId"].as_str().unwrap().to_owned()));
    }
    let after = stack.store.write_refusals();
    assert!(!after.refusing);
    assert_eq!(after.episodes, 1, "{after:?}");

    // Every acknowledged order is there, readable, and a replay of its key still answers it.
    for (key, id) in &acknowledged {
        let got = send(
            &stack,
            Request::get(format!("/orders/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "order {id}: {}", got.body);
        let replay = post(&stack, key).await;
        assert_eq!(replay.status, StatusCode::CREATED, "replay of {key}");
        assert_eq!(replay.body["orderId"].as_str(), Some(id.as_str()));
    }
    // And the sagas held up by the full disk finish without a restart.
    let finished = wait_all_terminal(&db, Duration::from_secs(60)).await;
    assert!(
        finished,
        "orders left unfinished after space returned: {}",
        unfinished(&db)
    );
}

/// The orders not terminal, with their executions' status and state, for the failure message.
fn unfinished(db: &std::path::Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT o.order_id || ' ' || o.status || ' execution ' || \
             COALESCE(e.status || ' ' || json_extract(e.snapshot, '$.state'), 'none') \
             FROM orders o LEFT JOIN executions e ON e.name LIKE o.order_id || '%' \
             WHERE o.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') LIMIT 10",
        )
        .unwrap();
    let rows: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rows.join("; ")
}
