//! `orders backup`: a copy taken while orders are being written is a complete database of one
//! commit (integrity check passes, every order it holds has its outbox row), opens as a store,
//! and serves the orders it holds; an existing file is never overwritten.

use orders_test_support as common;

use common::stack::{Stack, order_body};
use rusqlite::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_writes_is_consistent_and_opens_as_a_store() {
    let s = Stack::without_relay().await;
    s.put_inventory("gizmo", 100_000).await;
    let before: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                s.create(&order_body(&format!("cust-b{i}"), "gizmo", 1, 3.0))
                    .await,
            );
        }
        ids
    };
    // Writers keep committing while the copy is taken.
    let url = s.base_url();
    let writing = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for i in 0..200 {
            let body = order_body(&format!("cust-w{i}"), "gizmo", 1, 2.0);
            let r = client
                .post(format!("{url}/orders"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let (db, to) = (s.db(), copy.clone());
    let report = tokio::task::spawn_blocking(move || orders_sqlite::backup_to(&db, &to))
        .await
        .unwrap()
        .expect("backup");
    writing.await.unwrap();

    assert!(report.orders >= before.len() as u64, "{report:?}");
    assert!(report.bytes > 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the copy holds customers' orders");
    }
    let conn = Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let orders: i64 = conn
        .query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orders as u64, report.orders);
    // One commit's state: no order without the outbox row written in its transaction.
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS \
             (SELECT 1 FROM outbox x WHERE x.order_id = o.order_id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
    drop(conn);

    let restored = orders_sqlite::SqliteStore::open(&copy).expect("the copy opens as a store");
    for id in &before {
        let got = orders_domain::store::OrderStore::get_order(&restored, id.parse().unwrap())
            .await
            .unwrap();
        assert!(got.is_some(), "order {id} is in the copy");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_backup_never_overwrites_a_file_and_needs_a_database() {
    let s = Stack::without_relay().await;
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("taken.db");
    std::fs::write(&existing, b"precious").unwrap();
    let err = orders_sqlite::backup_to(&s.db(), &existing).unwrap_err();
    assert!(
        matches!(err, orders_sqlite::BackupError::TargetExists(_)),
        "{err}"
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");

    let missing = dir.path().join("nope.db");
    let err = orders_sqlite::backup_to(&missing, &dir.path().join("out.db")).unwrap_err();
    assert!(
        matches!(err, orders_sqlite::BackupError::NoDatabase(_)),
        "{err}"
    );
    assert!(!dir.path().join("out.db").exists());
    s.stop().await;
}
