//! The order service: the HTTP API and the two composition roots that serve it.
//!
//! # Layout
//!
//! - [`http`]: the axum router, one module per resource, the extractors (JSON body, the
//!   idempotency key) and the one `ApiError` that becomes problem+json. The operator's
//!   resources are there too: `/executions` (redrive), `/admin/orders`, `/outbox/parked`,
//!   `/metrics` and the console page (`http::console`, its files compiled in).
//! - [`identity`]: who a request comes from (none, bearer tokens verified here, or the claims
//!   API Gateway verified), and `orders dev-keys` / `dev-token` for local tokens.
//! - [`config`]: every setting, typed, from flags or `ORDERS_*` variables, read once.
//! - [`local`]: the local stack: the router, the outbox relay and the saga executor in one
//!   process over `orders-sqlite`.
//! - [`lambda`]: the same router under `lambda_http` over the DynamoDB store of `orders-aws`.
//! - [`payment_sim`]: the payment provider simulator, an outside actor with its own HTTP
//!   server: in process beside the local stack, or as a Lambda of its own on AWS
//!   (`orders-payment-sim`).
//! - [`clock`], [`telemetry`]: injectable time, and log set-up (with the OTLP export of
//!   `orders-telemetry` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
//! - [`metrics`]: the Prometheus recorder of the local stack and the families it exposes on
//!   `GET /metrics`.
//!
//! The arrows point down: this crate uses the adapters (`orders-sqlite`, `orders-aws`), which
//! implement the ports of `orders-domain` (the API's store), `orders-workflow` (the steps' and
//! the executor's stores) and `orders-processor` (the outbox source, the saga starter). None of
//! those depends on this crate, so the step and stream Lambdas do not link the HTTP service.

pub mod clock;
pub mod config;
pub mod http;
pub mod identity;
pub mod lambda;
pub mod local;
pub mod metrics;
pub mod payment_sim;
pub mod telemetry;
