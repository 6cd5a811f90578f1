//! The local stack: the API, the outbox relay and the saga executor in one process on one
//! SQLite file. Start-up fails fast (port taken, database unusable); shutdown on SIGINT or
//! SIGTERM stops accepting, finishes in-flight requests, then lets the store's writer commit
//! everything it was handed before the process exits.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::http::{AppState, router};
use orders_processor::relay::RelayOptions;
use orders_sqlite::SqliteStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub mod saga;

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
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Config(String),
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
    let mut settings = config.api_settings();
    settings.identity = config.identity.local(config.listen).await?;
    let store = Arc::new(SqliteStore::open_with(
        &config.database,
        config.sqlite_options(),
    )?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StackError::Listen {
            addr: config.listen,
            source,
        })?;
    let state = AppState {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(settings),
    };
    let saga = saga::build(
        store.clone(),
        config.step_settings(),
        config.executor_options(),
        RelayOptions::default(),
    )?;
    let resumed = saga
        .executor
        .resume_unfinished()
        .await
        .map_err(saga::SagaSetupError::from)?;
    let (stop_relay, stopped) = watch::channel(false);
    let relay = tokio::spawn(saga.relay.run(stopped.clone()));
    let maintenance = tokio::spawn(maintain(store.clone(), saga.executor.clone(), stopped));

    let addr = listener.local_addr().map_err(StackError::Serve)?;
    tracing::info!(%addr, database = %config.database.display(), resumed, "orders listening on http://{addr}");
    let served = axum::serve(config.guard(listener), router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;

    // Order matters: no new requests, then no new sagas, then let running steps finish (or
    // stop them; they resume on the next start), then the writer commits what it holds.
    tracing::info!("shutting down: in-flight requests finished");
    let _ = stop_relay.send(true);
    let _ = relay.await;
    let _ = maintenance.await;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, saga.executor.idle())
        .await
        .is_err()
    {
        tracing::info!(
            running = saga.executor.running(),
            "stopping running sagas; they resume on the next start"
        );
    }
    saga.executor.shutdown().await;
    drop(saga.executor);
    drop(store);
    served.map_err(StackError::Serve)
}

/// The relay's dead letters as a JSON array (the `parked-events` command). The file must
/// exist: opening a store would otherwise create an empty database at a mistyped path.
pub async fn parked_events_json(database: &std::path::Path) -> Result<String, String> {
    if !database.is_file() {
        return Err(format!("no database at {}", database.display()));
    }
    let store = SqliteStore::open(database).map_err(|e| e.to_string())?;
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

/// How often stalled sagas are re-driven and expired idempotency records purged.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// Background upkeep. An execution whose state could not be persisted stops where it was and
/// stays RUNNING in the database; without this it would wait for the next process start.
/// Expired idempotency records are already ignored at read; purging them bounds the table.
async fn maintain(
    store: Arc<SqliteStore>,
    executor: Arc<orders_workflow::executor::Executor>,
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
        match store
            .purge_expired_idempotency(chrono::Utc::now(), 10_000)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired idempotency records purged"),
            // The store logs a full disk once per episode; the next tick tries again.
            Err(orders_domain::store::StoreError::StorageFull) => {}
            Err(e) => tracing::warn!(error = %e, "could not purge expired idempotency records"),
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
