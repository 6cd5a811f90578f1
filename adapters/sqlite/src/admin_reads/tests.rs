//! The console's reads on a real database: newest first across customers, each filter alone
//! and together, pages that neither skip nor repeat, counts per status, the plans that keep a
//! page off a table scan; a parked event tried again, and the refusals that change nothing.

use super::{PARKED_SQL, page_sql};
use crate::{SqliteStore, exec, sqlite_err};
use orders_domain::store::{AllOrders, OperatorStore, RetryParked};
use orders_domain::{CustomerId, EventId, OrderId, OrderStatus};
use rusqlite::params;

struct Db {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    Db { store, _dir: dir }
}

/// An order row of `customer` in `status`, created at second `at` of a fixed minute.
async fn order(store: &SqliteStore, customer: &str, status: OrderStatus, at: u32) -> OrderId {
    let (id, customer) = (OrderId::new(), customer.to_owned());
    store
        .write(move |conn| {
            let created = format!("2026-01-01T00:00:{at:02}.000Z");
            exec(
                conn,
                "INSERT INTO orders (order_id, customer_id, status, version, items, subtotal_cents,
                     discount_cents, total_cents, currency, payment_method, created_at, updated_at,
                     execution)
                 VALUES (?1, ?2, ?3, 1, '[]', 500, 0, 500, 'EUR', 'pm_card_visa', ?4, ?4, ?5)",
                params![
                    id.to_string(),
                    customer,
                    status.as_str(),
                    created,
                    format!("x-{at}")
                ],
            )
            .map_err(sqlite_err)
        })
        .await
        .unwrap();
    id
}

fn query(status: Option<OrderStatus>, customer: Option<&str>, limit: u32) -> AllOrders {
    AllOrders {
        status,
        customer: customer.map(|c| CustomerId::parse(c).unwrap()),
        limit,
        after: None,
    }
}

/// Every page of `q`, followed by cursor, as ids.
async fn every_page(store: &SqliteStore, mut q: AllOrders) -> Vec<OrderId> {
    let mut ids = Vec::new();
    loop {
        let page = store.all_orders(&q).await.unwrap();
        assert!(page.orders.len() <= q.limit as usize);
        ids.extend(page.orders.iter().map(|o| o.id));
        match page.next {
            Some(next) => q.after = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn lists_every_order_newest_first_by_status_and_customer_in_pages() {
    use OrderStatus::*;
    let db = db();
    let s = &db.store;
    let a1 = order(s, "alice", Completed, 1).await;
    let b2 = order(s, "bob", Failed, 2).await;
    let a3 = order(s, "alice", Failed, 3).await;
    let b4 = order(s, "bob", Pending, 4).await;
    let a5 = order(s, "alice", Completed, 5).await;

    assert_eq!(
        every_page(s, query(None, None, 2)).await,
        [a5, b4, a3, b2, a1]
    );
    assert_eq!(every_page(s, query(Some(Failed), None, 1)).await, [a3, b2]);
    assert_eq!(
        every_page(s, query(None, Some("alice"), 2)).await,
        [a5, a3, a1]
    );
    let both = query(Some(Completed), Some("alice"), 1);
    assert_eq!(every_page(s, both).await, [a5, a1]);
    assert!(
        every_page(s, query(Some(Shipped), None, 5))
            .await
            .is_empty()
    );

    let one = s.all_orders(&query(None, None, 5)).await.unwrap();
    assert!(
        one.next.is_none(),
        "a page that holds the rest has no cursor"
    );
    let top = &one.orders[0];
    assert_eq!((top.status, top.customer_id.as_str()), (Completed, "alice"));
    assert_eq!(top.execution.as_deref(), Some("x-5"));
    assert_eq!(s.order_summary(b4).await.unwrap().unwrap().status, Pending);
    assert!(s.order_summary(OrderId::new()).await.unwrap().is_none());
}

#[tokio::test]
async fn counts_orders_by_status_in_lifecycle_order() {
    use OrderStatus::*;
    let db = db();
    let s = &db.store;
    for (i, (customer, status)) in [
        ("alice", Failed),
        ("bob", Completed),
        ("alice", Completed),
        ("alice", Pending),
    ]
    .into_iter()
    .enumerate()
    {
        order(s, customer, status, i as u32).await;
    }
    let all = s.status_counts(None).await.unwrap();
    assert_eq!(all, [(Pending, 1), (Completed, 2), (Failed, 1)]);
    let bob = CustomerId::parse("bob").unwrap();
    assert_eq!(s.status_counts(Some(&bob)).await.unwrap(), [(Completed, 1)]);
    let nobody = CustomerId::parse("nobody").unwrap();
    assert!(s.status_counts(Some(&nobody)).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_page_and_the_counts_read_an_index_backwards() {
    let db = db();
    let plans = db
        .store
        .write(|conn| {
            let plan = |sql: &str, params: Vec<rusqlite::types::Value>| {
                let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                });
                rows.unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap()
                    .join("; ")
            };
            let mut out = Vec::new();
            for (status, customer) in [
                (None, None),
                (Some(OrderStatus::Failed), None),
                (None, Some("alice")),
                (Some(OrderStatus::Failed), Some("alice")),
            ] {
                let (sql, mut params) = page_sql(&query(status, customer, 10));
                params.push(rusqlite::types::Value::Integer(11));
                out.push(plan(&sql, params));
            }
            out.push(plan(
                "SELECT status, count(*) FROM orders GROUP BY status",
                vec![],
            ));
            out.push(plan(PARKED_SQL, vec![]));
            Ok(out)
        })
        .await
        .unwrap();
    let expect = [
        "orders_by_time",
        "orders_by_status",
        "orders_by_customer",
        // Both filters: either index serves the order; which is the planner's choice.
        "INDEX orders_by_",
        "COVERING INDEX orders_by_status",
        "outbox_parked",
    ];
    for (plan, index) in plans.iter().zip(expect) {
        assert!(plan.contains(index), "expected {index}: {plan}");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "sorts instead of reading {index}: {plan}"
        );
    }
}

/// An outbox row of a new order, parked when `parked`; returns its event id.
async fn outbox_row(store: &SqliteStore, parked: bool) -> EventId {
    let event = EventId::new();
    store
        .write(move |conn| {
            exec(
                conn,
                "INSERT INTO outbox (event_id, order_id, payload, created_at, attempts, last_error, dead_at)
                 VALUES (?1, ?2, '{\"type\":\"order.created\"}', '2026-01-01T00:00:00.000Z', 3,
                         'poison', CASE WHEN ?3 THEN '2026-01-01T00:00:01.000Z' END)",
                params![event.to_string(), OrderId::new().to_string(), parked],
            )
            .map_err(sqlite_err)
        })
        .await
        .unwrap();
    event
}

#[tokio::test]
async fn a_parked_event_is_tried_again_once_and_others_are_refused() {
    let db = db();
    let s = &db.store;
    let parked = outbox_row(s, true).await;
    let pending = outbox_row(s, false).await;
    let listed = s.parked().await.unwrap();
    assert_eq!(listed.len(), 1);
    let p = &listed[0];
    assert_eq!(p.event_id, parked.to_string());
    assert_eq!(
        (p.event_type.as_deref(), p.reason.as_str(), p.attempts),
        (Some("order.created"), "poison", 3)
    );

    let signal = s.outbox_signal();
    let woken = signal.notified();
    assert_eq!(s.retry_parked(parked).await.unwrap(), RetryParked::Retried);
    tokio::time::timeout(std::time::Duration::from_secs(5), woken)
        .await
        .expect("the relay is woken");
    assert!(s.parked().await.unwrap().is_empty());
    let row = s
        .read(move |conn| {
            crate::one(
                conn,
                "SELECT attempts, dead_at FROM outbox WHERE event_id = ?1",
                [parked.to_string()],
                |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .map_err(sqlite_err)
        })
        .await
        .unwrap();
    assert_eq!(row, (0, None), "pending again, with a fresh attempt count");

    assert_eq!(
        s.retry_parked(parked).await.unwrap(),
        RetryParked::NotParked
    );
    assert_eq!(
        s.retry_parked(pending).await.unwrap(),
        RetryParked::NotParked
    );
    let unknown = EventId::new();
    assert_eq!(
        s.retry_parked(unknown).await.unwrap(),
        RetryParked::NotFound
    );
}
