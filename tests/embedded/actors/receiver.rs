//! A webhook endpoint of the test's own on 127.0.0.1: it records every attempt it is sent
//! and answers from a script (some 500s first, say), so a test awaits deliveries as events.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use orders_domain::standard_webhooks::{self, WebhookSecret};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// One attempt as received.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered it.
    pub answered: StatusCode,
}

impl Attempt {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON webhook body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether it verifies under `secret` now.
    pub fn verifies(&self, secret: &WebhookSecret) -> Result<(), standard_webhooks::VerifyError> {
        standard_webhooks::verify(
            secret,
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
            &self.body,
            chrono::Utc::now(),
        )
        .map(|_| ())
    }
}

struct Script {
    /// The first this many attempts are answered 500; the rest 204.
    failures: usize,
    seen: AtomicUsize,
    sent: mpsc::UnboundedSender<Attempt>,
}

pub struct Receiver {
    pub url: reqwest::Url,
    attempts: mpsc::UnboundedReceiver<Attempt>,
}

impl Receiver {
    /// Listening now; answers 500 to the first `failures` attempts.
    pub async fn start(failures: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (sent, attempts) = mpsc::unbounded_channel();
        let script = Arc::new(Script {
            failures,
            seen: AtomicUsize::new(0),
            sent,
        });
        let app = Router::new()
            .route("/webhooks/payments", post(record))
            .with_state(script);
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Receiver {
            url: reqwest::Url::parse(&format!("http://{addr}/webhooks/payments")).unwrap(),
            attempts,
        }
    }

    /// The next attempt, within `within`.
    pub async fn next(&mut self, within: Duration) -> Attempt {
        tokio::time::timeout(within, self.attempts.recv())
            .await
            .unwrap_or_else(|_| panic!("no webhook within {within:?}"))
            .expect("the receiver runs")
    }

    /// `None` if nothing more arrives within `quiet`.
    pub async fn nothing_within(&mut self, quiet: Duration) -> Option<Attempt> {
        tokio::time::timeout(quiet, self.attempts.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn record(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = script.seen.fetch_add(1, Ordering::SeqCst);
    let answered = if n < script.failures {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    let _ = script.sent.send(Attempt {
        headers,
        body,
        answered,
    });
    answered
}
