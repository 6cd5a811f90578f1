//! `orders-peer-restate`: the Orders saga as a Restate service, for the side-by-side benchmark
//! (`bench/peers/restate/peer.sh` starts it beside restate-server and registers it).
//!
//! One process serves two listeners: the Restate service endpoint (HTTP/2, the `Order` and
//! `Inventory` virtual objects, invoked by restate-server) and the actors' HTTP
//! listener (the payment provider, its webhook endpoint, the warehouse and `GET /stats`).
//! SIGTERM or Ctrl-C stops both; all order state is in Restate, so nothing is lost but the
//! in-memory `/stats` side channel and webhooks not yet delivered (the payment then times out,
//! as with a provider outage).

mod actors;
mod order;
mod saga;
mod signing;

use clap::Parser;
use restate_sdk::prelude::{Endpoint, HttpServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "The Orders saga on Restate, for the benchmark")]
struct Args {
    /// Where the Restate service endpoint listens (register it with the admin API).
    #[arg(long, env = "PEER_SERVICE_LISTEN", default_value = "127.0.0.1:9080")]
    service_listen: SocketAddr,
    /// Where the actors (payment provider, webhooks, warehouse, /stats) listen.
    #[arg(long, env = "PEER_ACTORS_LISTEN", default_value = "127.0.0.1:9081")]
    actors_listen: SocketAddr,
    /// The Restate ingress the actors resolve awakeables through.
    #[arg(
        long,
        env = "PEER_INGRESS_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    ingress_url: String,
    /// The payment webhooks' Standard Webhooks secret (`whsec_<base64>`).
    #[arg(long, env = "PEER_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,orders_peer_restate=info".into()),
        )
        .with_ansi(false)
        .init();
    let args = Args::parse();
    let secret = signing::Secret::parse(&args.webhook_secret)?;
    // One pooled client for every hop; a bounded timeout so a stuck hop is retried.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let actors_listener = tokio::net::TcpListener::bind(args.actors_listen).await?;
    let actors_url = format!("http://{}", actors_listener.local_addr()?);
    let ingress = args.ingress_url.trim_end_matches('/').to_owned();
    let actors = Arc::new(actors::Actors::new(
        http.clone(),
        ingress,
        actors_url.clone(),
        secret,
    ));
    let deps = Arc::new(saga::Deps {
        http,
        actors: actors_url,
        finals: actors.finals.clone(),
    });

    let service_listener = tokio::net::TcpListener::bind(args.service_listen).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let actors_server = axum::serve(actors_listener, actors::router(actors))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let endpoint = Endpoint::builder()
        .bind(saga::Order(deps))
        .bind(saga::Inventory)
        .build();
    let service_server =
        HttpServer::new(endpoint).serve_with_cancel(service_listener, stopped(stop_rx));
    tracing::info!(service = %args.service_listen, actors = %args.actors_listen, "peer listening");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signal = async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        let _ = stop_tx.send(true);
    };
    let (served, (), ()) = tokio::join!(actors_server.into_future(), service_server, signal);
    served?;
    Ok(())
}
