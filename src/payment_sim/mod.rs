//! The payment provider simulator: a stand-in for a card processor with its own HTTP server
//! (on the loopback interface beside the local stack, or behind a function URL on AWS, see
//! [`lambda`]), answering the service only the way a real provider would, by signed webhooks
//! to `POST /webhooks/payments`. It shares nothing with the service but the webhook secret and
//! the provider key: no store, no executor.
//!
//! `POST /charges` takes a [`ChargeRequest`] with `Idempotency-Key: <paymentId>` and, when
//! it has a key, `Authorization: Bearer <key>` (401 otherwise: whoever may ask for charges can
//! fail any order's payment). It answers `202 Accepted`; the result follows after the
//! configured delay (see [`webhook`] for the cards and the delivery), or, with
//! [`Answer::AfterDelivery`], before the 202 (see [`lambda`]). Invariants:
//!
//! - One webhook per payment id: a charge asked again (the RequestPayment Task run again after
//!   a crash or a retry) is answered 202 and delivers nothing more. The ids remembered are
//!   bounded ([`SimSettings::remembered`]); past that the oldest are forgotten.
//! - Bounded memory: at most [`SimSettings::max_pending`] deliveries wait or retry at once; a
//!   charge beyond that is answered 503 with `Retry-After`, which the provider client retries.
//! - Stopping ends the server and abandons the deliveries still waiting, as a provider outage
//!   would: their payments then reach their `TimeoutSeconds`.

pub mod lambda;
mod webhook;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use orders_domain::PaymentId;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_workflow::steps::payment::ChargeRequest;
use orders_workflow::steps::payment::http::ProviderKey;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
pub use webhook::{Outcome, RetryPolicy};

/// When a charge is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// At once; the webhook follows from a task of the simulator's (a long-lived process).
    Accepted,
    /// Once the webhook was delivered (or the card is never answered); a webhook given up is
    /// answered 503 and forgotten, so the charge asked again is delivered again. For a
    /// function whose process is frozen between invocations, where no task outlives its
    /// answer.
    AfterDelivery,
}

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Where it listens; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The service's webhook endpoint (`http://127.0.0.1:3000/webhooks/payments`).
    pub webhook_url: reqwest::Url,
    pub secret: WebhookSecret,
    /// From an accepted charge to its first webhook attempt.
    pub delay: Duration,
    pub retry: RetryPolicy,
    /// Payment ids remembered for idempotency.
    pub remembered: usize,
    /// Deliveries waiting or retrying at once.
    pub max_pending: usize,
    /// The key a charge must carry; `None` takes any.
    pub api_key: Option<ProviderKey>,
    pub answer: Answer,
    /// How long one webhook attempt may take.
    pub request_timeout: Duration,
}

impl SimSettings {
    /// The defaults around the three settings that vary.
    pub fn new(webhook_url: reqwest::Url, secret: WebhookSecret, delay: Duration) -> Self {
        SimSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_url,
            secret,
            delay,
            retry: RetryPolicy::default(),
            remembered: 100_000,
            max_pending: 10_000,
            api_key: None,
            answer: Answer::Accepted,
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the payment simulator cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the payment simulator's HTTP client: {0}")]
    Client(String),
}

/// The payment ids already charged, oldest first, at most `capacity`.
struct Remembered {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Remembered {
    /// Whether `id` is new; it is remembered from now on.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity.max(1)
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }

    fn forget(&mut self, id: &str) {
        if self.ids.remove(id) {
            self.order.retain(|o| o != id);
        }
    }
}

pub(crate) struct Shared {
    settings: SimSettings,
    client: reqwest::Client,
    remembered: Mutex<Remembered>,
    /// Deliveries in progress; `stop` waits for 0.
    pending: watch::Sender<usize>,
    stop: watch::Sender<bool>,
}

impl Shared {
    fn new(settings: SimSettings) -> Result<Arc<Shared>, SimError> {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| SimError::Client(e.to_string()))?;
        Ok(Arc::new(Shared {
            remembered: Mutex::new(Remembered {
                ids: HashSet::new(),
                order: VecDeque::new(),
                capacity: settings.remembered,
            }),
            settings,
            client,
            pending: watch::Sender::new(0),
            stop: watch::Sender::new(false),
        }))
    }
}

/// The simulator's HTTP API over `shared`.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/charges", post(charge))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such resource") })
        .with_state(shared)
}

/// A running simulator.
pub struct PaymentSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl PaymentSim {
    /// Binds and serves. Fails if the address is taken.
    pub async fn start(settings: SimSettings) -> Result<PaymentSim, SimError> {
        let addr = settings.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Listen { addr, source })?;
        let shared = Shared::new(settings)?;
        let app = router(shared.clone());
        let mut stopped = shared.stop.subscribe();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "payment simulator server failed");
            }
        });
        tracing::info!(%addr, "payment simulator listening on http://{addr}");
        Ok(PaymentSim {
            addr,
            shared,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL the provider client is given.
    pub fn url(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}/", self.addr)).expect("a socket address is a host")
    }

    /// The key charges must carry.
    pub fn api_key(&self) -> Option<ProviderKey> {
        self.shared.settings.api_key.clone()
    }

    /// Deliveries waiting or retrying now.
    pub fn pending(&self) -> usize {
        *self.shared.pending.borrow()
    }

    /// Stops serving and abandons the deliveries still waiting, within `grace` at most.
    pub async fn stop(self, grace: Duration) {
        let _ = self.shared.stop.send(true);
        let abandoned = self.pending();
        let mut pending = self.shared.pending.subscribe();
        let drained = tokio::time::timeout(grace, pending.wait_for(|n| *n == 0));
        if drained.await.is_err() {
            tracing::warn!("payment simulator deliveries did not stop in time");
        }
        let _ = tokio::time::timeout(grace, self.server).await;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "payment simulator stopped with webhooks undelivered; their payments time out"
            );
        }
    }
}

async fn charge(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(key) = &shared.settings.api_key {
        let given = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !key.authorizes(given) {
            let mut res = problem(StatusCode::UNAUTHORIZED, "a valid API key is required");
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return res;
        }
    }
    let request: ChargeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed charge: {e}")),
    };
    if let Err(why) = check(&request, &headers) {
        return problem(StatusCode::BAD_REQUEST, &why);
    }
    let id = request.payment_id.as_str().to_owned();
    let new = shared
        .remembered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(&id);
    if !new {
        return accepted(&request.payment_id);
    }
    // Checked and counted in one step, so a burst cannot overshoot the bound.
    let admitted = shared.pending.send_if_modified(|n| {
        let room = *n < shared.settings.max_pending;
        *n += usize::from(room);
        room
    });
    if !admitted {
        return retry_later(&shared, &id, "too many charges in flight");
    }
    tracing::info!(payment_id = %id, order_id = %request.order_id, "charge accepted");
    let payment_id = request.payment_id.clone();
    match shared.settings.answer {
        Answer::Accepted => {
            tokio::spawn(webhook::deliver(shared, request));
        }
        Answer::AfterDelivery => {
            if !webhook::deliver(shared.clone(), request).await {
                return retry_later(&shared, &id, "the payment webhook could not be delivered");
            }
        }
    }
    accepted(&payment_id)
}

/// 503 with `Retry-After`, the charge forgotten: the client's retry of it must be taken.
fn retry_later(shared: &Shared, id: &str, detail: &str) -> Response {
    forget(shared, id);
    let mut res = problem(StatusCode::SERVICE_UNAVAILABLE, detail);
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    res
}

fn forget(shared: &Shared, id: &str) {
    shared
        .remembered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .forget(id);
}

/// What a charge must satisfy beyond its shape.
fn check(request: &ChargeRequest, headers: &HeaderMap) -> Result<(), String> {
    PaymentId::parse(request.payment_id.as_str()).map_err(|e| format!("paymentId {e}"))?;
    if request.amount_cents <= 0 {
        return Err("amountCents must be above 0".into());
    }
    if request.currency != "EUR" {
        return Err(format!("currency {:?} is not supported", request.currency));
    }
    if request.payment_method.is_empty() {
        return Err("paymentMethod is empty".into());
    }
    let key = headers
        .get("idempotency-key")
        .ok_or("the Idempotency-Key header is required")?;
    if key.as_bytes() != request.payment_id.as_str().as_bytes() {
        return Err("Idempotency-Key must be the paymentId".into());
    }
    Ok(())
}

fn accepted(payment_id: &PaymentId) -> Response {
    let body = serde_json::json!({ "paymentId": payment_id, "status": "pending" });
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_ids_are_bounded_oldest_first() {
        let mut r = Remembered {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: 2,
        };
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
        assert!(r.insert("c"));
        assert!(r.insert("a"), "the oldest was forgotten");
        assert!(!r.insert("c"));
        assert_eq!(r.order.len(), 2);
        r.forget("c");
        assert!(r.insert("c"));
    }
}
