//! The whole local stack in process, started by the same wiring as `orders` itself
//! (`orders::local::assemble`): a temp SQLite store, the saga executor and the outbox relay
//! over it, the payment provider simulator and the warehouse worker, and the router, both
//! served on a real listener on 127.0.0.1 (the simulator posts its webhooks there) and driven
//! in process with `oneshot` by the request helpers.
//!
//! The actors' delays default to a few milliseconds; [`StackOptions`] sets them, the failure
//! rate, the timeout scale or an external provider for a test.

mod db;
mod http;

use axum::Router;
use orders::http::ApiSettings;
use orders::local::assemble::{
    ActorSettings, Actors, LocalSettings, Provider, assemble, webhook_url,
};
use orders::local::deliveries::DeliverySettings;
use orders::local::{saga, secret};
use orders_domain::standard_webhooks::WebhookSecret;
use orders_processor::relay::{Relay, RelayOptions};
use orders_sqlite::{SqliteOptions, SqliteStore};
use orders_workflow::executor::{Executor, ExecutorOptions};
use orders_workflow::steps::StepSettings;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long stopping one part may take before the test moves on.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a test may vary; [`StackOptions::default`] is a fast, well-behaved world.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub steps: StepSettings,
    /// Whether the relay runs from the start.
    pub relay: bool,
    pub sqlite: SqliteOptions,
    pub api: ApiSettings,
    /// Retry delays scaled to 0.001 and timeouts as written, unless a test says otherwise.
    pub executor: ExecutorOptions,
    /// From a charge to its webhook.
    pub sim_delay: Duration,
    pub packing: Duration,
    pub failure_rate: f64,
    /// A provider of the test's instead of the simulator.
    pub provider_url: Option<reqwest::Url>,
    pub warehouse_visibility: Duration,
    /// Unset: the database's own, generated beside it as `orders` does.
    pub webhook_secret: Option<WebhookSecret>,
    /// The subscriber deliveries, as `orders` runs them unless a test says otherwise.
    pub deliveries: DeliverySettings,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            steps: StepSettings::default(),
            relay: true,
            sqlite: SqliteOptions::default(),
            api: ApiSettings::default(),
            executor: ExecutorOptions {
                delay_scale: 0.001,
                ..Default::default()
            },
            sim_delay: Duration::from_millis(5),
            packing: Duration::from_millis(5),
            failure_rate: 0.0,
            provider_url: None,
            warehouse_visibility: Duration::from_secs(30),
            webhook_secret: None,
            deliveries: DeliverySettings::default(),
        }
    }
}

/// A running task and its stop switch.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    fn spawn<F>(f: impl FnOnce(watch::Receiver<bool>) -> F) -> Running
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        Running {
            stop,
            task: tokio::spawn(f(stopped)),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
        }
    }
}

pub struct Stack {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    pub executor: Arc<Executor>,
    /// Where the router is served.
    pub addr: SocketAddr,
    relay: Option<Running>,
    server: Option<Running>,
    actors: Option<Actors>,
    secret: WebhookSecret,
    // Last: the database file outlives everything that uses it.
    pub dir: TempDir,
}

impl Stack {
    /// A fresh database, default step settings, relay running.
    pub async fn new() -> Stack {
        Stack::with(StepSettings::default()).await
    }

    pub async fn with(steps: StepSettings) -> Stack {
        Stack::with_options(StackOptions {
            steps,
            ..Default::default()
        })
        .await
    }

    /// A fresh database and these options.
    pub async fn with_options(options: StackOptions) -> Stack {
        Stack::start(tempfile::tempdir().expect("tempdir"), options).await
    }

    /// A fresh database whose relay is not running: events stay in the outbox.
    pub async fn without_relay() -> Stack {
        Stack::with_options(StackOptions {
            relay: false,
            ..Default::default()
        })
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
        sqlite: SqliteOptions,
    ) -> Stack {
        let options = StackOptions {
            steps,
            relay,
            sqlite,
            ..Default::default()
        };
        Stack::start(dir, options).await
    }

    /// Starts the stack on `dir/orders.db` (new or existing) as `orders` starts.
    pub async fn start(dir: TempDir, o: StackOptions) -> Stack {
        let db = dir.path().join("orders.db");
        let (secret, _) = secret::resolve(o.webhook_secret.as_ref(), &db).expect("webhook secret");
        let store = Arc::new(SqliteStore::open_with(&db, o.sqlite).expect("open store"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let provider = match o.provider_url {
            Some(url) => Provider::External { url, key: None },
            None => Provider::Simulator {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                delay: o.sim_delay,
            },
        };
        let settings = LocalSettings {
            api: o.api,
            steps: o.steps,
            executor: o.executor,
            relay: RelayOptions::default(),
            actors: ActorSettings {
                provider,
                packing: o.packing,
                failure_rate: o.failure_rate,
                warehouse_concurrency: 64,
                warehouse_visibility: o.warehouse_visibility,
            },
            webhook_secret: secret.clone(),
            deliveries: o.deliveries,
        };
        let local = assemble(store.clone(), addr, settings)
            .await
            .expect("assemble the local stack");
        let app = local.router.clone();
        let server = Running::spawn(move |mut stopped| async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .expect("serve");
        });
        let mut stack = Stack {
            router: local.router,
            store,
            executor: local.executor,
            addr,
            relay: None,
            server: Some(server),
            actors: Some(local.actors),
            secret,
            dir,
        };
        if o.relay {
            stack.spawn_relay(local.relay);
        }
        stack
    }

    /// Stops everything in `orders`' order (listener, relay, actors, executor) and hands
    /// back the database, so a new `Stack::open` on it behaves like a restarted process.
    pub async fn stop(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.stop_relay().await;
        if let Some(actors) = self.actors.take() {
            actors.stop(STOP_GRACE).await;
        }
        self.executor.shutdown().await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("orders.db")
    }

    /// The secret webhooks to this stack must be signed with.
    pub fn webhook_secret(&self) -> &WebhookSecret {
        &self.secret
    }

    /// `http://127.0.0.1:<port>`, where the router is served.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL the payment simulator posts to.
    pub fn webhook_url(&self) -> reqwest::Url {
        webhook_url(self.addr)
    }

    /// The simulator's base URL (`None` with an external provider).
    pub fn simulator_url(&self) -> Option<reqwest::Url> {
        self.actors.as_ref().and_then(Actors::simulator_url)
    }

    /// Runs a relay (the same one `saga::build` makes) unless one is running.
    pub fn start_relay(&mut self) {
        if self.relay.is_none() {
            let relay = saga::relay(&self.store, &self.executor, RelayOptions::default());
            self.spawn_relay(relay);
        }
    }

    fn spawn_relay(&mut self, relay: Relay) {
        self.relay = Some(Running::spawn(|stopped| relay.run(stopped)));
    }

    /// Stops the relay and waits for it to finish its batch.
    pub async fn stop_relay(&mut self) {
        if let Some(r) = self.relay.take() {
            let _ = r.stop.send(true);
            r.task.await.expect("relay task");
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for running in [self.relay.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            let _ = running.stop.send(true);
        }
        if let (Some(actors), Ok(rt)) = (self.actors.take(), tokio::runtime::Handle::try_current())
        {
            rt.spawn(actors.stop(STOP_GRACE));
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
