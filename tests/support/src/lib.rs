//! The support of the three test binaries (`tests/embedded`, `tests/aws`, `tests/process`),
//! in one tree: a fresh SQLite store in a temp dir, the router over it, small request
//! helpers, the whole local stack in process, the binary as a process, the DynamoDB
//! environment and Cognito on moto, API Gateway events, a stand-in of the Lambda Runtime API,
//! and the contract suites every adapter must pass ([`contract`] for
//! `OrderStore`, [`saga_contract`] for `StepStore`).

pub mod apigw;
pub mod aws_json;
pub mod cognito;
pub mod contract;
pub mod dynamodb;
pub mod invariants;
pub mod lifecycle_contract;
pub mod moto_stack;
pub mod process;
pub mod requests;
pub mod runtime_api;
pub mod saga_contract;
pub mod stack;
pub mod streams;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use orders::clock::{Clock, ManualClock, SystemClock};
use orders::http::{ApiSettings, AppState, router};
use orders_sqlite::SqliteStore;
use std::sync::Arc;
use tempfile::TempDir;
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
}

pub fn temp_store() -> (Arc<SqliteStore>, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("orders.db")).expect("open store");
    (Arc::new(store), dir)
}

pub fn app_with(settings: ApiSettings) -> TestApp {
    let (store, dir) = temp_store();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let state = AppState {
        store: store.clone(),
        clock: clock.clone(),
        settings: Arc::new(settings),
    };
    TestApp {
        router: router(state),
        store,
        clock,
        dir,
    }
}

pub fn app() -> TestApp {
    app_with(ApiSettings::default())
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_order(&self, key: Option<&str>, body: &str) -> Reply {
        let mut req = Request::post("/orders").header("content-type", "application/json");
        if let Some(k) = key {
            req = req.header("x-idempotency-key", k);
        }
        self.send(req.body(Body::from(body.to_owned())).unwrap())
            .await
    }

    /// Rows in a table, read straight from the database file.
    pub fn count(&self, table: &str) -> i64 {
        count_rows(&self.dir.path().join("orders.db"), table)
    }
}

pub fn count_rows(db: &std::path::Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

pub const LAPTOP: &str = r#"{"customerId":"customer-123","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}"#;
