//! The local stack: the API, the outbox relay and the saga executor in one process on one
//! SQLite file. Start-up fails fast (port taken, database unusable); shutdown on SIGINT or
//! SIGTERM stops accepting, finishes in-flight requests, then lets the store's writer commit
//! everything it was handed before the process exits.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::http::{AppState, router};
use crate::store::sqlite::SqliteStore;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::sqlite::OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

pub async fn run(config: Config) -> Result<(), StartError> {
    let store = Arc::new(SqliteStore::open(&config.database)?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let state = AppState {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(config.api_settings()),
    };
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(%addr, database = %config.database.display(), "orders listening on http://{addr}");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(StartError::Serve)?;
    tracing::info!("shutting down: in-flight requests finished");
    drop(store);
    Ok(())
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
