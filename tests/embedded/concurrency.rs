//! Concurrency through a real socket: many clients, one idempotency key, one order.

use orders_test_support as common;

use common::{LAPTOP, count_rows, temp_store};
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_posts_with_one_key_create_one_order() {
    let (store, dir) = temp_store();
    let state = AppState {
        store,
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings::default()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let client = reqwest::Client::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, barrier) = (client.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let r = client
                    .post(format!("http://{addr}/orders"))
                    .header("content-type", "application/json")
                    .header("x-idempotency-key", "one-key-for-all")
                    .body(LAPTOP)
                    .send()
                    .await
                    .expect("request");
                let replayed = r.headers().contains_key("idempotent-replayed");
                (r.status().as_u16(), replayed, r.text().await.expect("body"))
            })
        })
        .collect();
    let mut bodies = HashSet::new();
    let mut replays = 0;
    for t in tasks {
        let (status, replayed, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        replays += usize::from(replayed);
        bodies.insert(body);
    }
    assert_eq!(
        bodies.len(),
        1,
        "every client got the first response byte for byte"
    );
    assert_eq!(replays, 49);
    let db = dir.path().join("orders.db");
    assert_eq!(count_rows(&db, "orders"), 1);
    assert_eq!(count_rows(&db, "outbox"), 1);
    assert_eq!(count_rows(&db, "idempotency"), 1);
    server.abort();
}
