//! Prometheus metrics of the local stack: the recorder, installed once per process when the
//! stack starts, and what `GET /metrics` renders from it (text exposition format 0.0.4).
//!
//! Every crate records through the `metrics` facade only; its macros are no-ops until a
//! recorder is installed, which only the local stack does ([`install`]). The API Lambda and
//! the other Lambdas install none, so there the same lines cost next to nothing, and
//! `/metrics` is not mounted (CloudWatch has the AWS services' own metrics).
//!
//! Labels are bounded sets, never ids: routes are the router's templates (`/orders/{id}`, or
//! `unmatched`), methods the standard ones (else `other`), and every other label is one of a
//! fixed list below. Histograms have explicit buckets (so they render as Prometheus
//! histograms, not summaries). Counters are created as they first move, so a family appears
//! in the output once something happened; the outbox backlog is read from the store at each
//! scrape.
//!
//! # Metrics
//!
//! | family | type | labels | what |
//! |---|---|---|---|
//! | `orders_http_requests_total` | counter | `route`, `method`, `status` | requests answered |
//! | `orders_http_request_duration_seconds` | histogram | `route`, `method` | time to answer |
//! | `orders_created_total` | counter | | orders created (not replays) |
//! | `orders_replayed_total` | counter | | `POST /orders` answered from its idempotency record |
//! | `orders_refused_total` | counter | `reason` ([`Refusal`]) | `POST /orders` refused by its handler |
//! | `orders_saga_outcomes_total` | counter | `outcome`: `completed`, `failed`, `cancelled` | sagas that reached their end |
//! | `orders_executions_finished_total` | counter | `status`: `succeeded`, `failed` | executions that ended |
//! | `orders_saga_step_duration_seconds` | histogram | `step` | one run of a step handler |
//! | `orders_saga_step_retries_total` | counter | `step` | Task retries scheduled |
//! | `orders_relay_lag_seconds` | histogram | | order.created committed -> its saga started |
//! | `orders_relay_events_total` | counter | `outcome`: `started`, `signalled`, `public`, `parked`, `failed` | outbox rows handled |
//! | `orders_outbox_backlog` | gauge | | outbox rows pending (unpublished, not parked), read at scrape |
//! | `orders_deliveries_total` | counter | `outcome` ([`DeliveryOutcome`]) | webhook delivery attempts |
//! | `orders_writer_queue_depth` | gauge | | jobs waiting for the SQLite writer after its last commit |
//! | `orders_writer_commit_jobs` | histogram | | jobs committed in one group transaction |

use async_trait::async_trait;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orders_domain::store::StoreError;
use orders_domain::subscriptions::AttemptResult;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use orders_processor::relay::{RELAY_EVENTS_TOTAL, RELAY_LAG_SECONDS};
pub use orders_sqlite::metrics::{WRITER_COMMIT_JOBS, WRITER_QUEUE_DEPTH};
pub use orders_workflow::executor::{EXECUTIONS_FINISHED_TOTAL, STEP_RETRIES_TOTAL};
pub use orders_workflow::steps::{SAGA_OUTCOMES_TOTAL, STEP_DURATION_SECONDS};

pub const HTTP_REQUESTS_TOTAL: &str = "orders_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "orders_http_request_duration_seconds";
pub const ORDERS_CREATED_TOTAL: &str = "orders_created_total";
pub const ORDERS_REPLAYED_TOTAL: &str = "orders_replayed_total";
pub const ORDERS_REFUSED_TOTAL: &str = "orders_refused_total";
pub const OUTBOX_BACKLOG: &str = "orders_outbox_backlog";
pub const DELIVERIES_TOTAL: &str = "orders_deliveries_total";

/// How a family is declared to the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every family with its help text (the `# HELP` line). A histogram must also have its
/// buckets in [`builder`]: without them it would render as a summary.
const FAMILIES: [(&str, Kind, &str); 15] = [
    (
        HTTP_REQUESTS_TOTAL,
        Kind::Counter,
        "HTTP requests answered, by route template, method and status code.",
    ),
    (
        HTTP_REQUEST_DURATION_SECONDS,
        Kind::Histogram,
        "Time to answer an HTTP request, by route template and method.",
    ),
    (
        ORDERS_CREATED_TOTAL,
        Kind::Counter,
        "Orders created (idempotent replays not counted).",
    ),
    (
        ORDERS_REPLAYED_TOTAL,
        Kind::Counter,
        "POST /orders answered from the idempotency record of its key.",
    ),
    (
        ORDERS_REFUSED_TOTAL,
        Kind::Counter,
        "POST /orders refused, by reason.",
    ),
    (
        SAGA_OUTCOMES_TOTAL,
        Kind::Counter,
        "Sagas that reached their end, by outcome (completed, failed, cancelled).",
    ),
    (
        EXECUTIONS_FINISHED_TOTAL,
        Kind::Counter,
        "Saga executions that ended, by status (succeeded, failed).",
    ),
    (
        STEP_DURATION_SECONDS,
        Kind::Histogram,
        "Time one run of a saga step handler takes, by step.",
    ),
    (
        STEP_RETRIES_TOTAL,
        Kind::Counter,
        "Retries of saga Task states scheduled, by step.",
    ),
    (
        RELAY_LAG_SECONDS,
        Kind::Histogram,
        "Time from an order.created outbox row's commit to the start of its saga.",
    ),
    (
        RELAY_EVENTS_TOTAL,
        Kind::Counter,
        "Outbox rows the relay handled, by outcome.",
    ),
    (
        OUTBOX_BACKLOG,
        Kind::Gauge,
        "Outbox rows the relay has yet to act on (unpublished, not parked).",
    ),
    (
        DELIVERIES_TOTAL,
        Kind::Counter,
        "Webhook delivery attempts to subscribers, by outcome.",
    ),
    (
        WRITER_QUEUE_DEPTH,
        Kind::Gauge,
        "Jobs waiting for the SQLite writer when its last group committed.",
    ),
    (
        WRITER_COMMIT_JOBS,
        Kind::Histogram,
        "Jobs committed together in one SQLite group transaction.",
    ),
];

/// Bucket bounds: seconds for request and step latencies, from half a millisecond.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The relay's lag: from milliseconds (it wakes on commit) to minutes (a backlog).
const LAG_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0,
];
/// Jobs per group: powers of two up to the writer's bound (256).
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// How often histogram samples are folded into their buckets between scrapes, so memory
/// stays bounded when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot configure the metrics recorder: {0}")]
    Build(#[from] metrics_exporter_prometheus::BuildError),
    #[error("another metrics recorder is installed in this process")]
    Taken,
    #[error("cannot start the metrics upkeep thread: {0}")]
    Thread(std::io::Error),
}

/// The process's recorder, once installed.
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process's global one (at the first call; later
/// calls, such as a second in-process stack in tests, get the same handle) and starts the
/// thread that keeps its histograms folded.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = builder()?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::Taken)?;
    describe();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        })
        .map_err(MetricsError::Thread)?;
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Each histogram's bucket bounds.
const HISTOGRAM_BUCKETS: [(&str, &[f64]); 4] = [
    (HTTP_REQUEST_DURATION_SECONDS, &LATENCY_BUCKETS),
    (STEP_DURATION_SECONDS, &LATENCY_BUCKETS),
    (RELAY_LAG_SECONDS, &LAG_BUCKETS),
    (WRITER_COMMIT_JOBS, &BATCH_BUCKETS),
];

/// The recorder's settings: the histograms' buckets.
fn builder() -> Result<PrometheusBuilder, MetricsError> {
    let mut builder = PrometheusBuilder::new();
    for (name, bounds) in HISTOGRAM_BUCKETS {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), bounds)?;
    }
    Ok(builder)
}

fn describe() {
    for (name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// The store's gauges read at scrape time.
#[async_trait]
pub trait OutboxBacklog: Send + Sync {
    async fn outbox_backlog(&self) -> Result<u64, StoreError>;
}

#[async_trait]
impl OutboxBacklog for orders_sqlite::SqliteStore {
    async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        orders_sqlite::SqliteStore::outbox_backlog(self).await
    }
}

/// What `/metrics` renders: the recorder's handle and the store it reads gauges from.
#[derive(Clone)]
pub struct MetricsApi {
    handle: PrometheusHandle,
    backlog: Arc<dyn OutboxBacklog>,
}

impl std::fmt::Debug for MetricsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsApi").finish_non_exhaustive()
    }
}

impl MetricsApi {
    pub fn new(handle: PrometheusHandle, backlog: Arc<dyn OutboxBacklog>) -> Self {
        MetricsApi { handle, backlog }
    }

    /// The exposition: the gauges read now, then everything recorded. A store that cannot
    /// answer leaves the backlog at its last value (and says so in the log): the rest of the
    /// scrape is still worth having.
    pub async fn render(&self) -> String {
        match self.backlog.outbox_backlog().await {
            Ok(n) => metrics::gauge!(OUTBOX_BACKLOG).set(n as f64),
            Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outbox backlog"),
        }
        self.handle.render()
    }
}

/// Why `POST /orders` was refused: the `reason` label of `orders_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400, 413, 415: the body, a field, or the idempotency key header.
    Invalid,
    /// 401: no valid token.
    Unauthorized,
    /// 403: an order for another customer without the admin scope.
    Forbidden,
    /// 422: the idempotency key was used with another body.
    KeyReused,
    /// 409: the voucher is unknown, not READY, or another customer's.
    Voucher,
    /// 503: storage busy or full.
    Unavailable,
    /// 500.
    Internal,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::Unauthorized => "unauthorized",
            Refusal::Forbidden => "forbidden",
            Refusal::KeyReused => "key_reused",
            Refusal::Voucher => "voucher",
            Refusal::Unavailable => "unavailable",
            Refusal::Internal => "internal",
        }
    }

    pub fn count(self) {
        metrics::counter!(ORDERS_REFUSED_TOTAL, "reason" => self.as_str()).increment(1);
    }
}

/// What one delivery attempt came to: the `outcome` label of `orders_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; tried again after a backoff.
    Failed,
    /// Failed for the last time: the retry window is over.
    DeadLettered,
    /// 410 Gone: the subscription was disabled.
    Gone,
}

impl DeliveryOutcome {
    pub fn of(result: &AttemptResult) -> Self {
        match result {
            AttemptResult::Delivered => DeliveryOutcome::Delivered,
            AttemptResult::Retry { .. } => DeliveryOutcome::Failed,
            AttemptResult::Dead => DeliveryOutcome::DeadLettered,
            AttemptResult::Gone => DeliveryOutcome::Gone,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::DeadLettered => "dead_lettered",
            DeliveryOutcome::Gone => "gone",
        }
    }

    pub fn count(self) {
        metrics::counter!(DELIVERIES_TOTAL, "outcome" => self.as_str()).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    #[test]
    fn every_family_is_named_by_the_prometheus_rules_and_every_histogram_has_buckets() {
        let mut names: Vec<_> = FAMILIES.iter().map(|(n, ..)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "a family is listed twice");
        for (name, kind, help) in FAMILIES {
            assert!(valid_name(name) && name.starts_with("orders_"), "{name}");
            assert!(!help.is_empty());
            assert_eq!(name.ends_with("_total"), kind == Kind::Counter, "{name}");
            let buckets = HISTOGRAM_BUCKETS.iter().find(|(n, _)| *n == name);
            assert_eq!(buckets.is_some(), kind == Kind::Histogram, "{name}");
            if let Some((_, bounds)) = buckets {
                assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{name}");
            }
        }
    }

    #[test]
    fn histograms_render_as_histograms_with_their_help() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            metrics::histogram!(RELAY_LAG_SECONDS).record(0.02);
            metrics::histogram!(RELAY_LAG_SECONDS).record(40.0);
            Refusal::KeyReused.count();
        });
        let text = handle.render();
        assert!(
            text.contains("# TYPE orders_relay_lag_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("orders_relay_lag_seconds_bucket{le=\"0.025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("orders_relay_lag_seconds_bucket{le=\"120\"} 2"),
            "{text}"
        );
        assert!(text.contains("orders_relay_lag_seconds_count 2"), "{text}");
        assert!(
            text.contains("# HELP orders_refused_total POST /orders refused"),
            "{text}"
        );
        assert!(
            text.contains("orders_refused_total{reason=\"key_reused\"} 1"),
            "{text}"
        );
    }
}
