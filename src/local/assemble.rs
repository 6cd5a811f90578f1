//! How the local stack is put together, once for `orders` and for the in-process test stack:
//! the saga over the store, the payment provider it asks (the simulator started here, or an
//! external one), the warehouse worker, the dispatcher of the subscribers' deliveries, and
//! the router with its settings (the subscription and console routes included).
//!
//! The order is what makes a start safe: the simulator listens before any execution can run
//! RequestPayment; executions are resumed before the warehouse takes messages; the service's
//! own listener is bound by the caller before this runs, so a webhook sent before the router
//! serves waits in the listen backlog instead of being refused. [`Actors::stop`] is called
//! after the relay stopped and before the executor shuts down, so no actor answers a task
//! the executor can no longer record.

use super::StackError;
use super::deliveries::{Deliveries, DeliverySettings};
use super::executions::LocalExecutions;
use super::saga::{self, SagaSetupError};
use super::warehouse::{Warehouse, WarehouseSettings};
use crate::clock::SystemClock;
use crate::http::console::ConsoleApi;
use crate::http::subscriptions::SubscriptionApi;
use crate::http::{ApiSettings, AppState, router};
use crate::metrics::MetricsApi;
use crate::payment_sim::{PaymentSim, RetryPolicy, SimSettings};
use axum::Router;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_processor::relay::{Relay, RelayOptions};
use orders_sqlite::SqliteStore;
use orders_workflow::asl::{Integration, State};
use orders_workflow::executor::{Executor, ExecutorOptions};
use orders_workflow::steps::StepSettings;
use orders_workflow::steps::payment::http::{HttpProvider, ProviderKey};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The queue the warehouse consumes: the PrepareShipment Task's QueueUrl substitution.
pub const WAREHOUSE_QUEUE: &str = "WarehouseQueueUrl";

/// Who answers charges.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    /// The simulator, started here, listening on `listen`, answering after `delay`. It
    /// takes charges only with a key made for this process, which only the saga holds.
    Simulator { listen: SocketAddr, delay: Duration },
    /// A provider elsewhere (`--payment-provider-url`, `--payment-provider-key`); nothing
    /// is started.
    External {
        url: reqwest::Url,
        key: Option<ProviderKey>,
    },
}

/// The outside actors' settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorSettings {
    pub provider: Provider,
    pub packing: Duration,
    pub failure_rate: f64,
    pub warehouse_concurrency: usize,
    /// How long a shipment request stays hidden once received, unless a heartbeat extends it.
    pub warehouse_visibility: Duration,
}

/// Everything the local stack is started with besides its store and listener.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub api: ApiSettings,
    pub steps: StepSettings,
    pub executor: ExecutorOptions,
    pub relay: RelayOptions,
    pub actors: ActorSettings,
    pub webhook_secret: WebhookSecret,
    pub deliveries: DeliverySettings,
}

/// What talks to the world outside, running: the simulator, the warehouse, and the
/// deliveries to subscribers.
pub struct Actors {
    simulator: Option<PaymentSim>,
    warehouse: Warehouse,
    deliveries: Deliveries,
}

impl Actors {
    /// The simulator's base URL, when it runs here.
    pub fn simulator_url(&self) -> Option<reqwest::Url> {
        self.simulator.as_ref().map(PaymentSim::url)
    }

    /// Stops the deliveries, the simulator, then the warehouse (each within `grace`).
    pub async fn stop(self, grace: Duration) {
        self.deliveries.stop(grace).await;
        if let Some(sim) = self.simulator {
            sim.stop(grace).await;
        }
        if tokio::time::timeout(grace, self.warehouse.stop())
            .await
            .is_err()
        {
            tracing::warn!("the warehouse worker did not stop in time");
        }
    }
}

/// The local stack, wired and resumed; the relay is the caller's to run.
pub struct Assembled {
    pub executor: Arc<Executor>,
    pub relay: Relay,
    pub router: Router,
    pub actors: Actors,
    /// Executions carried on from the store.
    pub resumed: usize,
    /// What `/metrics` renders, for a listener of its own (`--metrics-listen`).
    pub metrics: MetricsApi,
}

/// The URL the simulator posts webhooks to: the service's own listener (on the loopback
/// address when it listens on all of them).
pub fn webhook_url(service: SocketAddr) -> reqwest::Url {
    let ip = match service.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, service.port());
    reqwest::Url::parse(&format!("http://{addr}/webhooks/payments"))
        .expect("a socket address is a host")
}

/// Wires the stack over `store` for a service listening on `service`, starts its actors and
/// resumes unfinished executions.
pub async fn assemble(
    store: Arc<SqliteStore>,
    service: SocketAddr,
    settings: LocalSettings,
) -> Result<Assembled, StackError> {
    let secret = settings.webhook_secret;
    let simulator = match &settings.actors.provider {
        Provider::Simulator { listen, delay } => {
            let mut sim = SimSettings::new(webhook_url(service), secret.clone(), *delay);
            sim.listen = *listen;
            sim.api_key = Some(ProviderKey::generate());
            sim.retry = RetryPolicy {
                scale: settings.executor.delay_scale,
                ..RetryPolicy::default()
            };
            Some(PaymentSim::start(sim).await?)
        }
        Provider::External { .. } => None,
    };
    let (provider_url, provider_key) = match (&settings.actors.provider, &simulator) {
        (Provider::External { url, key }, _) => (url.clone(), key.clone()),
        (_, Some(sim)) => (sim.url(), sim.api_key()),
        (Provider::Simulator { .. }, None) => unreachable!("the simulator was started above"),
    };
    let provider = HttpProvider::new(&provider_url, provider_key).map_err(StackError::Provider)?;
    let saga = saga::build(
        store.clone(),
        settings.steps,
        settings.executor,
        settings.relay,
        Arc::new(provider),
    )?;
    let resumed = saga
        .executor
        .resume_unfinished()
        .await
        .map_err(SagaSetupError::from)?;
    let heartbeat = warehouse_heartbeat(&saga.executor, settings.executor.timeout_scale);
    let a = &settings.actors;
    let mut warehouse = WarehouseSettings::new(a.packing, a.failure_rate, heartbeat);
    warehouse.queue = WAREHOUSE_QUEUE.to_owned();
    warehouse.concurrency = a.warehouse_concurrency;
    warehouse.visibility = a.warehouse_visibility;
    warehouse.poll = warehouse.poll.min(a.warehouse_visibility);
    let warehouse = Warehouse::start(store.clone(), saga.executor.clone(), warehouse);
    let created = Arc::new(tokio::sync::Notify::new());
    let deliveries = Deliveries::start(
        store.clone(),
        store.events_signal(),
        created.clone(),
        settings.deliveries,
    )?;
    let subscriptions = SubscriptionApi {
        store: store.clone(),
        policy: settings.deliveries.policy(),
        created,
    };
    let console = ConsoleApi {
        store: store.clone(),
    };
    // Metrics: the recorder is the process's (installed by the first stack), the backlog this
    // store's.
    let metrics = MetricsApi::new(crate::metrics::install()?, store.clone());
    let state = AppState {
        store,
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings {
            console: Some(console),
            metrics: Some(metrics.clone()),
            executions: Some(LocalExecutions::api(saga.executor.clone())),
            ..api_settings(settings.api, secret, subscriptions)
        }),
    };
    Ok(Assembled {
        executor: saga.executor,
        relay: saga.relay,
        router: router(state),
        metrics,
        actors: Actors {
            simulator,
            warehouse,
            deliveries,
        },
        resumed,
    })
}

/// The API settings with the webhook secret the simulator signs with, and the subscriptions
/// this stack delivers.
fn api_settings(
    api: ApiSettings,
    secret: WebhookSecret,
    subscriptions: SubscriptionApi,
) -> ApiSettings {
    ApiSettings {
        payment_webhook_secret: Some(secret),
        subscriptions: Some(subscriptions),
        ..api
    }
}

/// The warehouse Task's HeartbeatSeconds as the executor applies it (scaled).
fn warehouse_heartbeat(executor: &Executor, timeout_scale: f64) -> Option<Duration> {
    executor.machine().states.values().find_map(|s| match s {
        State::Task(t)
            if t.integration == Integration::SqsCallback && t.resource == WAREHOUSE_QUEUE =>
        {
            t.heartbeat_seconds
                .map(|h| Duration::from_secs(h).mul_f64(timeout_scale))
        }
        _ => None,
    })
}
