//! The local stack: the API, the outbox relay, the saga executor, the outside actors it
//! simulates (the payment provider, the warehouse) and the webhook deliveries to the
//! subscribers of its domain events, in one process on one SQLite file.
//! Start-up fails fast (a port taken, the database or the webhook secret unusable); shutdown
//! on SIGINT or SIGTERM stops accepting, finishes in-flight requests, stops the relay, then
//! the actors, then lets running steps finish before the store's writer commits everything
//! it was handed and the process exits.
//!
//! [`assemble`] is the wiring itself, shared with the in-process test stack.

use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub mod assemble;
pub mod deliveries;
pub mod executions;
pub mod saga;
pub mod secret;
pub mod signals;
pub mod warehouse;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Store(#[from] orders_sqlite::OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Saga(#[from] saga::SagaSetupError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    WebhookSecret(#[from] secret::SecretFileError),
    #[error(transparent)]
    Simulator(#[from] crate::payment_sim::SimError),
    #[error("payment provider: {0}")]
    Provider(String),
    #[error(transparent)]
    Deliveries(#[from] deliveries::DeliveryError),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

pub async fn run(config: Config) -> Result<(), StackError> {
    // While a request is being handled the connection still waits for the client's next
    // bytes, so an idle timeout shorter than the request timeout would cut slow answers.
    if config.client_idle_timeout_secs <= config.request_timeout_secs {
        return Err(StackError::Config(format!(
            "--client-idle-timeout-secs ({}) must be longer than --request-timeout-secs ({})",
            config.client_idle_timeout_secs, config.request_timeout_secs
        )));
    }
    // Before the database or the port: a service that would run unprotected, or could not
    // verify a single token, does not start at all.
    let mut api = config.api_settings();
    api.identity = config.identity.local(config.listen).await?;
    let (webhook_secret, source) =
        secret::resolve(config.payment_webhook_secret.as_ref(), &config.database)?;
    if let secret::SecretSource::Generated(path) = &source {
        println!("{}", secret::generated_notice(path, &webhook_secret));
    }
    let store = Arc::new(orders_sqlite::SqliteStore::open_with(
        &config.database,
        config.sqlite_options(),
    )?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StackError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(StackError::Serve)?;
    // Metrics: a scraper's listener of its own, bound now so that a taken address stops the
    // start like the service's own.
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StackError::Listen { addr, source })?,
        ),
        None => None,
    };
    let local = assemble::assemble(
        store.clone(),
        addr,
        config.local_settings(api, webhook_secret),
    )
    .await?;
    let (stop_relay, stopped) = watch::channel(false);
    let relay = tokio::spawn(local.relay.run(stopped.clone()));
    let metrics_server = metrics_listener
        .map(|l| tokio::spawn(serve_metrics(l, local.metrics.clone(), stopped.clone())));
    let maintenance = tokio::spawn(maintain(
        store.clone(),
        local.executor.clone(),
        config.retention(),
        stopped,
    ));

    let provider = local
        .actors
        .simulator_url()
        .or_else(|| config.payment_provider_url.clone())
        .map_or_else(String::new, |u| u.to_string());
    tracing::info!(%addr, database = %config.database.display(), resumed = local.resumed, payment_provider = %provider, "orders listening on http://{addr}");
    let served = axum::serve(config.guard(listener), local.router)
        .with_graceful_shutdown(shutdown_signal())
        .await;

    // Order matters: no new requests, then no new sagas, then no more answers from the
    // actors, then let running steps finish (or stop them; they resume on the next start),
    // then the writer commits what it holds.
    tracing::info!("shutting down: in-flight requests finished");
    let _ = stop_relay.send(true);
    let _ = relay.await;
    let _ = maintenance.await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    local.actors.stop(grace).await;
    let executor = local.executor;
    if tokio::time::timeout(grace, executor.idle()).await.is_err() {
        tracing::info!(
            running = executor.running(),
            "stopping running sagas; they resume on the next start"
        );
    }
    executor.shutdown().await;
    drop(executor);
    drop(store);
    served.map_err(StackError::Serve)
}

/// Serves `/metrics` alone, without a token, on `listener` until `stop` turns true.
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    api: crate::metrics::MetricsApi,
    mut stop: watch::Receiver<bool>,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening on http://{addr}/metrics");
    }
    let served = axum::serve(listener, crate::http::metrics::scrape_router(api))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "the metrics listener stopped");
    }
}

/// The relay's dead letters as a JSON array (the `parked-events` command). The file must
/// exist: opening a store would otherwise create an empty database at a mistyped path.
pub async fn parked_events_json(database: &std::path::Path) -> Result<String, String> {
    if !database.is_file() {
        return Err(format!("no database at {}", database.display()));
    }
    let store = orders_sqlite::SqliteStore::open(database).map_err(|e| e.to_string())?;
    let parked = store.parked_events().await.map_err(|e| e.to_string())?;
    let events: Vec<serde_json::Value> = parked
        .into_iter()
        .map(|p| {
            serde_json::json!({
                "seq": p.seq, "eventId": p.event_id, "orderId": p.order_id,
                "reason": p.reason, "parkedAt": p.parked_at,
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&events).expect("JSON values serialize"))
}

/// The `backup` command: a copy of the database taken online, described as JSON.
pub fn backup_json(database: &std::path::Path, to: &std::path::Path) -> Result<String, String> {
    let report = orders_sqlite::backup_to(database, to).map_err(|e| e.to_string())?;
    let described = serde_json::json!({
        "path": to.display().to_string(), "bytes": report.bytes, "orders": report.orders,
    });
    Ok(serde_json::to_string_pretty(&described).expect("JSON values serialize"))
}

/// How often stalled sagas are re-driven and retention's pass runs.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// Background upkeep. An execution whose state could not be persisted stops where it was and
/// stays RUNNING in the database; without this it would wait for the next process start.
/// Retention (`orders_sqlite::Retention`) deletes what is older than its period, expired
/// idempotency records included (already ignored at read), so the database stays bounded.
async fn maintain(
    store: Arc<orders_sqlite::SqliteStore>,
    executor: Arc<orders_workflow::executor::Executor>,
    retention: orders_sqlite::Retention,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        match executor.resume_unfinished().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(resumed = n, "re-drove stalled sagas"),
            Err(e) => tracing::warn!(error = %e, "could not look for stalled sagas"),
        }
        // A shutdown ends the pass between two of its jobs.
        let stopping = stop.clone();
        let started = std::time::Instant::now();
        match store
            .purge(&retention, chrono::Utc::now(), move || *stopping.borrow())
            .await
        {
            Ok(p) if p.rows() == 0 => {}
            Ok(p) => tracing::info!(
                executions = p.executions,
                history_rows = p.history_rows,
                outbox_events = p.outbox_events,
                deliveries = p.deliveries,
                idempotency = p.idempotency,
                rows = p.rows(),
                jobs = p.jobs,
                ms = started.elapsed().as_millis() as u64,
                "retention: purged history older than the retention period"
            ),
            // The store logs a full disk once per episode; the next tick tries again.
            Err(orders_domain::store::StoreError::StorageFull) => {}
            Err(e) => tracing::warn!(error = %e, "retention: could not purge"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
