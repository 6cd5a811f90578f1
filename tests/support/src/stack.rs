//! The whole local stack in process: a temp SQLite store, the saga executor and the outbox
//! relay over it (wired as `src/local.rs` does), and the router, driven with `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use orders::local::saga::{ExecutorStarter, build};
use orders_processor::relay::{Relay, RelayOptions};
use orders_sqlite::{SqliteOptions, SqliteStore};
use orders_workflow::executor::{Executor, ExecutorOptions};
use orders_workflow::steps::StepSettings;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// A running relay: its stop switch and its task.
struct RunningRelay {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct Stack {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    pub executor: Arc<Executor>,
    relay: Option<RunningRelay>,
    // Last: the database file outlives everything that uses it.
    pub dir: TempDir,
}

impl Stack {
    /// A fresh database, default step settings, relay running.
    pub async fn new() -> Stack {
        Stack::with(StepSettings::default()).await
    }

    pub async fn with(steps: StepSettings) -> Stack {
        Stack::open(tempfile::tempdir().expect("tempdir"), steps, true).await
    }

    /// A fresh database whose relay is not running: events stay in the outbox.
    pub async fn without_relay() -> Stack {
        Stack::open(
            tempfile::tempdir().expect("tempdir"),
            StepSettings::default(),
            false,
        )
        .await
    }

    /// Opens the stack on `dir/orders.db` (new or existing), resuming unfinished executions
    /// as the real process does at start-up.
    pub async fn open(dir: TempDir, steps: StepSettings, relay: bool) -> Stack {
        Stack::open_with(dir, steps, relay, SqliteOptions::default()).await
    }

    /// [`Stack::open`] with other store settings (a size limit, say).
    pub async fn open_with(
        dir: TempDir,
        steps: StepSettings,
        relay: bool,
        options: SqliteOptions,
    ) -> Stack {
        let store = Arc::new(
            SqliteStore::open_with(&dir.path().join("orders.db"), options).expect("open store"),
        );
        let saga = build(
            store.clone(),
            steps,
            ExecutorOptions {
                delay_scale: 0.001,
                ..Default::default()
            },
            RelayOptions::default(),
        )
        .expect("saga");
        saga.executor.resume_unfinished().await.expect("resume");
        let state = AppState {
            store: store.clone(),
            clock: Arc::new(SystemClock),
            settings: Arc::new(ApiSettings::default()),
        };
        let mut stack = Stack {
            router: router(state),
            store,
            executor: saga.executor,
            relay: None,
            dir,
        };
        if relay {
            stack.spawn_relay(saga.relay);
        }
        stack
    }

    /// Stops the saga side (relay, then running executions) and hands back the database, so
    /// a new `Stack::open` on it behaves like a restarted process.
    pub async fn stop(mut self) -> TempDir {
        self.stop_relay().await;
        self.executor.shutdown().await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("orders.db")
    }

    /// Runs a relay (the same one `saga::build` makes) unless one is running.
    pub fn start_relay(&mut self) {
        if self.relay.is_none() {
            let relay = Relay {
                source: self.store.clone(),
                starter: Arc::new(ExecutorStarter(self.executor.clone())),
                signal: self.store.outbox_signal(),
                options: RelayOptions::default(),
            };
            self.spawn_relay(relay);
        }
    }

    fn spawn_relay(&mut self, relay: Relay) {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(relay.run(stopped));
        self.relay = Some(RunningRelay { stop, task });
    }

    /// Stops the relay and waits for it to finish its batch.
    pub async fn stop_relay(&mut self) {
        if let Some(r) = self.relay.take() {
            let _ = r.stop.send(true);
            r.task.await.expect("relay task");
        }
    }

    pub async fn request(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    pub async fn post_order(&self, body: &Value) -> (StatusCode, Value) {
        let req = Request::post("/orders")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.request(req).await
    }

    /// POSTs an order that must be accepted; returns its id.
    pub async fn create(&self, body: &Value) -> String {
        let (status, json) = self.post_order(body).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["orderId"].as_str().expect("orderId").to_owned()
    }

    /// POSTs an order that must be refused with `status`; returns the problem it got.
    pub async fn refused(&self, body: &Value, status: StatusCode) -> Value {
        let (got, problem) = self.post_order(body).await;
        assert_eq!(got, status, "{problem}");
        problem
    }

    pub async fn get_json(&self, uri: &str) -> Value {
        let (status, json) = self
            .request(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "GET {uri}: {json}");
        json
    }

    pub async fn put_inventory(&self, product: &str, available: i64) {
        let req = Request::put(format!("/inventory/{product}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({ "available": available }).to_string()))
            .unwrap();
        let (status, json) = self.request(req).await;
        assert_eq!(status, StatusCode::OK, "PUT inventory: {json}");
    }

    pub async fn stock(&self, product: &str) -> i64 {
        self.get_json(&format!("/inventory/{product}")).await["available"]
            .as_i64()
            .expect("available")
    }

    pub async fn vouchers(&self, customer: &str) -> Vec<Value> {
        let v = self
            .get_json(&format!("/customers/{customer}/vouchers"))
            .await;
        v["vouchers"].as_array().expect("vouchers").clone()
    }

    /// Polls the order every 10 ms until it is COMPLETED or FAILED and its history has
    /// settled: the step that sets the final status records its own outcome in a later
    /// commit, so the first terminal read may still show that step RUNNING (see
    /// `a_terminal_order_shows_its_last_step_finished`).
    pub async fn wait_terminal(&self, order_id: &str, timeout: Duration) -> Value {
        self.poll(order_id, timeout, Duration::from_millis(10), true)
            .await
    }

    /// The first read, polling every millisecond, that shows COMPLETED or FAILED.
    pub async fn wait_status(&self, order_id: &str, timeout: Duration) -> Value {
        self.poll(order_id, timeout, Duration::from_millis(1), false)
            .await
    }

    async fn poll(&self, id: &str, timeout: Duration, every: Duration, settled: bool) -> Value {
        let deadline = Instant::now() + timeout;
        let uri = format!("/orders/{id}");
        loop {
            let order = self.get_json(&uri).await;
            let terminal = matches!(order["status"].as_str(), Some("COMPLETED" | "FAILED"));
            let steps = order["history"].as_array().expect("history");
            if terminal && (!settled || steps.iter().all(|s| !s["finishedAt"].is_null())) {
                return order;
            }
            if Instant::now() >= deadline {
                panic!("order {id} not terminal (settled: {settled}) after {timeout:?}: {order}");
            }
            tokio::time::sleep(every).await;
        }
    }

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

    /// The status (`SUCCEEDED`, `FAILED`) of the one execution whose input is this order's,
    /// once it has finished (within 10 s). The order's last step commits in the step's own
    /// transaction and the executor records the end of the execution after it, so a reader who
    /// saw the order terminal may still find the execution RUNNING for a moment.
    pub async fn execution_status(&self, order: &str) -> String {
        let conn = rusqlite::Connection::open(self.db()).expect("open db");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
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

    /// Whether the order's outbox row is marked published.
    pub fn published(&self, order: &str) -> bool {
        self.query_i64(
            "SELECT published_at IS NOT NULL FROM outbox WHERE order_id = ?1",
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
        let conn = rusqlite::Connection::open(self.db()).expect("open db");
        conn.query_row(
            "SELECT payload FROM outbox WHERE order_id = ?1",
            [order],
            |r| r.get(0),
        )
        .expect("outbox row")
    }

    /// Writes an outbox row behind the store's back (no commit signal).
    pub fn insert_outbox_row(&self, event_id: &str, order_id: &str, payload: &str) {
        let conn = rusqlite::Connection::open(self.db()).expect("open db");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn.execute(
            "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
            [event_id, order_id, payload, "2024-01-01T00:00:00.000Z"],
        )
        .expect("insert outbox row");
    }

    /// One query on the database file, outside the store.
    pub fn query_i64(&self, sql: &str, params: impl rusqlite::Params) -> i64 {
        let conn = rusqlite::Connection::open(self.db()).expect("open db");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn.query_row(sql, params, |r| r.get(0)).expect(sql)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(r) = self.relay.take() {
            let _ = r.stop.send(true);
        }
    }
}

/// The step of this name in an order's history.
pub fn step<'a>(order: &'a Value, name: &str) -> Option<&'a Value> {
    order["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|s| s["step"] == name)
}

/// The step of this name, which must be in the order's history with `status`; returned for
/// the checks a test adds (attempts, error).
pub fn assert_step<'a>(order: &'a Value, name: &str, status: &str) -> &'a Value {
    let st = step(order, name).unwrap_or_else(|| panic!("no {name} in {order}"));
    assert_eq!(st["status"], status, "{name}: {order}");
    st
}

pub fn order_body(customer: &str, product: &str, quantity: u32, price: f64) -> Value {
    json!({
        "customerId": customer,
        "items": [{"productId": product, "quantity": quantity, "price": price}],
    })
}

pub fn with_payment(mut body: Value, payment_method: &str) -> Value {
    body["paymentMethod"] = payment_method.into();
    body
}

pub fn assert_failed_with(order: &Value, reason: &str) {
    assert_eq!(order["status"], "FAILED", "{order}");
    let got = order["failureReason"].as_str().unwrap_or_default();
    assert!(got.starts_with(reason), "failureReason {got:?}: {order}");
}
