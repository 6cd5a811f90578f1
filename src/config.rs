//! Configuration: typed, read once at start from flags or environment, refused early.
//!
//! Every setting has a flag and an `ORDERS_*` variable (`orders --help` lists them); a bad
//! value stops the process before it listens, with a message naming the setting.

use clap::{Parser, Subcommand, ValueEnum};
use orders_aws::functions;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_workflow::steps;
use orders_workflow::steps::payment::http::ProviderKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "orders",
    version,
    about = "Order service: idempotent POST /orders with a transactional outbox and a saga.",
    long_about = "Order service: idempotent POST /orders with a transactional outbox and a saga.\n\n\
    Runs the HTTP API, the outbox relay and the saga executor in one process on an embedded \
    SQLite database, with the outside actors the saga waits for simulated in process: a \
    payment provider answering charges with signed webhooks to POST /webhooks/payments, and \
    a warehouse worker shipping orders from the local queue. Every setting can also be given \
    by the environment variable shown.\n\n\
    Without a command it serves; `orders parked-events --database PATH` prints the outbox \
    events the relay parked (dead letters) as JSON and exits; `orders backup --database PATH \
    --to FILE` copies the database while it serves; `orders dev-keys` and \
    `orders dev-token --sub ID` make a signing key and tokens for --auth jwt locally."
)]
pub struct Config {
    /// An operations command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on.
    #[arg(long, env = "ORDERS_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// SQLite database file (created, with its directory, if missing).
    #[arg(
        long,
        env = "ORDERS_DATABASE",
        default_value = "./data/orders.db",
        global = true
    )]
    pub database: PathBuf,

    /// How long an idempotency key is remembered, in seconds.
    #[arg(long, env = functions::IDEMPOTENCY_TTL_ENV, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idempotency_ttl_secs: u64,

    /// Refuse POST /orders without an idempotency key (400).
    #[arg(long, env = functions::REQUIRE_IDEMPOTENCY_KEY_ENV, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub require_idempotency_key: bool,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = functions::BODY_LIMIT_ENV, default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1_024..=10_485_760))]
    pub body_limit: u64,

    /// Requests handled at once; one more is refused at once with 503 (load shedding).
    #[arg(long, env = "ORDERS_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_in_flight: u64,

    /// Seconds to answer one request, reading its body included; then 503.
    #[arg(long, env = "ORDERS_REQUEST_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_secs: u64,

    /// Open connections at most; more wait to be accepted.
    #[arg(long, env = "ORDERS_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Seconds a connection may send nothing (stalled mid-request or idle between
    /// requests) before it is closed.
    #[arg(long, env = "ORDERS_CLIENT_IDLE_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub client_idle_timeout_secs: u64,

    /// Share (0.0-1.0) of payment attempts that fail transiently (fault injection).
    #[arg(long, env = steps::PAYMENT_TRANSIENT_RATE_ENV, default_value_t = 0.0, value_parser = steps::parse_rate)]
    pub payment_transient_error_rate: f64,

    /// Share (0.0-1.0) of notification attempts that fail transiently (fault injection).
    #[arg(long, env = steps::NOTIFICATION_FAILURE_RATE_ENV, default_value_t = 0.0, value_parser = steps::parse_rate)]
    pub notification_failure_rate: f64,

    /// Multiplies the state machine's retry delays, and the subscriber deliveries' backoff
    /// and one-day retry window (1.0 as written; 0.01 for fast test runs; at 0 a failed
    /// delivery is dead-lettered at once).
    #[arg(long, env = "ORDERS_RETRY_DELAY_SCALE", default_value_t = 1.0, value_parser = scale)]
    pub retry_delay_scale: f64,

    /// Multiplies the state machine's TimeoutSeconds and HeartbeatSeconds (1.0 as written;
    /// 0.01 for fast test runs and drills). Above 0, at most 100.
    #[arg(long, env = "ORDERS_TIMEOUT_SCALE", default_value_t = 1.0, value_parser = timeout_scale)]
    pub timeout_scale: f64,

    /// Saga steps allowed to run at once.
    #[arg(long, env = "ORDERS_SAGA_CONCURRENCY", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub saga_concurrency: u64,

    /// On shutdown, how long to let running saga steps finish before stopping them (they
    /// resume on the next start), in seconds.
    #[arg(long, env = "ORDERS_SHUTDOWN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub shutdown_grace_secs: u64,

    /// WAL pages (2 KiB each on a new database) committed between checkpoints. More gives
    /// higher write throughput (fewer bytes copied and fsynced per order) and a longer pause
    /// for the writes queued behind each checkpoint (higher tail latency). The WAL file is cut
    /// back to twice this many pages when a burst or a migration made it outgrow them.
    #[arg(long, env = "ORDERS_WAL_AUTOCHECKPOINT", default_value_t = orders_sqlite::SqliteOptions::default().wal_autocheckpoint, value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    pub wal_autocheckpoint: u32,

    // Memory: the store's page caches are fixed by these, not by the load or the database's
    // size (at most writer + readers x reader cache).
    /// The SQLite writer connection's page cache, in MiB.
    #[arg(long, env = "ORDERS_WRITER_CACHE_MIB", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub writer_cache_mib: u32,

    /// Each SQLite read connection's page cache, in MiB.
    #[arg(long, env = "ORDERS_READER_CACHE_MIB", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub reader_cache_mib: u32,

    /// SQLite read connections open at once; more reads wait for one.
    #[arg(long, env = "ORDERS_READERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub readers: u32,

    /// MiB of the database file each read connection maps into memory (0: none; at most
    /// 2047, SQLite's cap): pages the caches do not hold are read from the kernel's page cache
    /// in place rather than copied by a read call. Mapped pages are the kernel's, shared and
    /// reclaimable, but count in RSS.
    #[arg(long, env = "ORDERS_READER_MMAP_MIB", default_value_t = orders_sqlite::SqliteOptions::default().reader_mmap_bytes >> 20, value_parser = clap::value_parser!(u64).range(0..=orders_sqlite::MAX_MMAP_BYTES >> 20))]
    pub reader_mmap_mib: u64,

    /// Most bytes the SQLite database may hold (unset: as much as the disk takes). At the
    /// limit, writes answer 503 `storage-full` and /health fails, as on a full disk, while reads
    /// go on; the WAL is not counted. At least 1 MiB.
    #[arg(long, env = "ORDERS_MAX_DB_BYTES", value_parser = clap::value_parser!(u64).range(1_048_576..))]
    pub max_db_size: Option<u64>,

    /// The Standard Webhooks secret (`whsec_` and base64) payment webhooks are signed with.
    /// Unset locally: generated on the first start, saved owner-only beside the database as
    /// `<database>.webhook-secret`, printed once, and read from there on later starts.
    #[arg(long, env = crate::local::secret::WEBHOOK_SECRET_ENV, hide_env_values = true, value_parser = webhook_secret)]
    pub payment_webhook_secret: Option<WebhookSecret>,

    /// The payment provider's base URL (it serves `POST /charges`). Unset: the built-in
    /// provider simulator is started on --payment-sim-listen and answers with signed webhooks
    /// to this service's own listener.
    #[arg(long, env = "ORDERS_PAYMENT_PROVIDER_URL", value_parser = provider_url)]
    pub payment_provider_url: Option<reqwest::Url>,

    /// The payment provider's secret API key (at least 16 characters), sent with each charge
    /// as `Authorization: Bearer`. Only with --payment-provider-url: the built-in simulator
    /// takes a key made at each start.
    #[arg(long, env = "ORDERS_PAYMENT_PROVIDER_KEY", hide_env_values = true, requires = "payment_provider_url", value_parser = provider_key)]
    pub payment_provider_key: Option<ProviderKey>,

    /// Where the provider simulator listens (port 0: any free port). Unused with
    /// --payment-provider-url.
    #[arg(long, env = "ORDERS_PAYMENT_SIM_LISTEN", default_value = "127.0.0.1:0")]
    pub payment_sim_listen: SocketAddr,

    /// Milliseconds from an accepted charge to the simulator's webhook. Cards:
    /// `pm_card_noAnswer` is never answered (the payment times out), a method containing
    /// `Declined` fails, any other succeeds.
    #[arg(long, env = "ORDERS_PAYMENT_SIM_DELAY_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub payment_sim_delay_ms: u64,

    /// Milliseconds the warehouse worker takes to pack a parcel; it sends task heartbeats
    /// meanwhile (about three per HeartbeatSeconds).
    #[arg(long, env = "ORDERS_WAREHOUSE_PACKING_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    pub warehouse_packing_ms: u64,

    /// Share (0.0-1.0) of shipments the warehouse refuses (the task fails with
    /// `WarehouseRefused` and the order is compensated).
    #[arg(long, env = "ORDERS_WAREHOUSE_FAILURE_RATE", default_value_t = 0.0, value_parser = steps::parse_rate)]
    pub warehouse_failure_rate: f64,

    /// Parcels the warehouse worker packs at once.
    #[arg(long, env = "ORDERS_WAREHOUSE_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub warehouse_concurrency: u64,

    /// Allow subscriptions to loopback and private addresses (127/8, 10/8, 172.16/12,
    /// 192.168/16, 100.64/10, ::1, fc00::/7 and the like), for tests and local development.
    /// Link-local and cloud metadata addresses are refused regardless.
    #[arg(long, env = "ORDERS_ALLOW_PRIVATE_SUBSCRIBERS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_subscribers: bool,

    /// Deliveries in flight at once to each subscriber; a slow one uses up only its own.
    #[arg(long, env = "ORDERS_DELIVERY_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub delivery_concurrency: u64,

    // Metrics.
    /// A second address serving only GET /metrics, without a token, for a Prometheus on a
    /// private network (unset: /metrics is served on --listen only, an admin's with identity
    /// on).
    #[arg(long, env = "ORDERS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    // Retention.
    /// Days the history is kept before it is deleted (at least 1): finished saga executions
    /// with their step log, processed outbox events with their deliveries, queue tombstones
    /// and payment webhook records; expired idempotency records go at once. Orders,
    /// payments, reservations, shipments and vouchers are kept for good. On AWS: the outbox
    /// items' DynamoDB TTL.
    #[arg(long, env = functions::RETENTION_DAYS_ENV, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub retention_days: u64,

    /// For drills: the retention period in seconds, instead of --retention-days.
    #[arg(long, env = "ORDERS_RETENTION_SECS", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_secs: Option<u64>,

    #[command(flatten)]
    pub identity: crate::identity::IdentityArgs,

    /// Log format; `json` is the default under AWS Lambda.
    #[arg(long, env = "ORDERS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

fn scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=100.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number from 0 to 100")),
    }
}

fn webhook_secret(s: &str) -> Result<WebhookSecret, String> {
    WebhookSecret::parse(s).map_err(|e| e.to_string())
}

/// An absolute http(s) URL; a provider's path may follow the host (`http://h/sim/`).
fn provider_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{s:?} is not an http(s) URL with a host"));
    }
    // `charges` is joined to it: without the slash a last path segment would be replaced.
    if url.path().ends_with('/') {
        Ok(url)
    } else {
        reqwest::Url::parse(&format!("{s}/")).map_err(|e| e.to_string())
    }
}

fn provider_key(s: &str) -> Result<ProviderKey, String> {
    ProviderKey::parse(s)
}

/// Like `scale`, but 0 is refused: a deadline scaled to nothing would time out every wait.
fn timeout_scale(s: &str) -> Result<f64, String> {
    match scale(s) {
        Ok(r) if r > 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a number above 0 and at most 100")),
    }
}

/// Operations commands: they run against the database file and exit, and may run beside a
/// serving process on the same file.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Print the outbox events the relay parked because they can never be decoded (dead
    /// letters: kept with their reason, never retried, not blocking the events behind them)
    /// as a JSON array of {seq, eventId, orderId, reason, parkedAt}, oldest first.
    ParkedEvents,
    /// Write a consistent copy of the database (--database) to a new file while the service
    /// runs (SQLite `VACUUM INTO`: one read transaction, compacted, owner-only; an existing
    /// file is never overwritten), then print {path, bytes, orders} as JSON.
    Backup {
        /// The new file.
        #[arg(long)]
        to: PathBuf,
    },
    /// Write an ES256 key pair for local tokens: DIR/private.pem (owner-only) and
    /// DIR/jwks.json, then print the settings that make the service accept its tokens.
    DevKeys {
        #[arg(long, default_value = "./dev-keys")]
        dir: PathBuf,
    },
    /// Print a token signed with the key `dev-keys` wrote, for `Authorization: Bearer`.
    DevToken(DevToken),
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DevToken {
    /// The customer id the token stands for (its `sub`).
    #[arg(long)]
    pub sub: String,
    /// Give the token the admin scope (ORDERS_ADMIN_SCOPE's value).
    #[arg(long)]
    pub admin: bool,
    /// The directory `orders dev-keys` wrote.
    #[arg(long, default_value = "./dev-keys")]
    pub dir: PathBuf,
    /// The token's `iss`.
    #[arg(long, default_value = crate::identity::dev::DEV_ISSUER)]
    pub issuer: String,
    /// The token's `aud`.
    #[arg(long, default_value = crate::identity::dev::DEV_AUDIENCE)]
    pub audience: String,
    /// Seconds the token is valid.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400 * 30))]
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn step_settings(&self) -> orders_workflow::steps::StepSettings {
        orders_workflow::steps::StepSettings {
            payment_transient_rate: self.payment_transient_error_rate,
            notification_failure_rate: self.notification_failure_rate,
        }
    }

    pub fn executor_options(&self) -> orders_workflow::executor::ExecutorOptions {
        orders_workflow::executor::ExecutorOptions {
            max_concurrent: self.saga_concurrency as usize,
            delay_scale: self.retry_delay_scale,
            timeout_scale: self.timeout_scale,
        }
    }

    /// The local stack's settings around `api` and the webhook secret in use.
    pub fn local_settings(
        &self,
        api: crate::http::ApiSettings,
        webhook_secret: WebhookSecret,
    ) -> crate::local::assemble::LocalSettings {
        use crate::local::assemble::{ActorSettings, LocalSettings, Provider};
        let provider = match &self.payment_provider_url {
            Some(url) => Provider::External {
                url: url.clone(),
                key: self.payment_provider_key.clone(),
            },
            None => Provider::Simulator {
                listen: self.payment_sim_listen,
                delay: Duration::from_millis(self.payment_sim_delay_ms),
            },
        };
        LocalSettings {
            api,
            steps: self.step_settings(),
            executor: self.executor_options(),
            relay: orders_processor::relay::RelayOptions::default(),
            actors: ActorSettings {
                provider,
                packing: Duration::from_millis(self.warehouse_packing_ms),
                failure_rate: self.warehouse_failure_rate,
                warehouse_concurrency: self.warehouse_concurrency as usize,
                warehouse_visibility: Duration::from_secs(30),
            },
            webhook_secret,
            deliveries: self.delivery_settings(),
        }
    }

    /// The subscriber deliveries' settings.
    pub fn delivery_settings(&self) -> crate::local::deliveries::DeliverySettings {
        crate::local::deliveries::DeliverySettings {
            concurrency: self.delivery_concurrency as usize,
            delay_scale: self.retry_delay_scale,
            allow_private: self.allow_private_subscribers,
        }
    }

    /// Retention: how long history is kept (the drill setting in seconds wins), and the
    /// purge's pace.
    pub fn retention(&self) -> orders_sqlite::Retention {
        let keep = match self.retention_secs {
            Some(secs) => Duration::from_secs(secs),
            None => Duration::from_secs(self.retention_days.saturating_mul(86_400)),
        };
        orders_sqlite::Retention::new(keep)
    }

    pub fn sqlite_options(&self) -> orders_sqlite::SqliteOptions {
        orders_sqlite::SqliteOptions {
            wal_autocheckpoint: self.wal_autocheckpoint,
            max_db_bytes: self.max_db_size,
            writer_cache_kib: self.writer_cache_mib * 1024,
            reader_cache_kib: self.reader_cache_mib * 1024,
            max_readers: self.readers as usize,
            reader_mmap_bytes: self.reader_mmap_mib << 20,
        }
    }

    /// The listener the HTTP API serves on: at most `max_connections` open, idle ones closed.
    pub fn guard(&self, listener: tokio::net::TcpListener) -> crate::http::limits::GuardedListener {
        crate::http::limits::GuardedListener::new(
            listener,
            self.max_connections as usize,
            std::time::Duration::from_secs(self.client_idle_timeout_secs),
        )
    }

    pub fn api_settings(&self) -> crate::http::ApiSettings {
        crate::http::ApiSettings {
            idempotency_ttl: std::time::Duration::from_secs(self.idempotency_ttl_secs),
            require_idempotency_key: self.require_idempotency_key,
            body_limit: self.body_limit as usize,
            max_in_flight: self.max_in_flight as usize,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            // Established by the composition root (`local`, `lambda`): it may fetch keys.
            identity: crate::identity::Identity::None,
            payment_webhook_secret: self.payment_webhook_secret.clone(),
            // Given by the local stack, which runs their deliveries.
            subscriptions: None,
            // Given by the local stack, whose store serves the console.
            console: None,
            // Given by the runtime: the local executor, or Step Functions on AWS.
            executions: None,
            // Given by the local stack, which installs the recorder.
            metrics: None,
        }
    }
}

#[cfg(test)]
mod tests;
