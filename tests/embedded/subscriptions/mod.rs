//! Subscriptions to the domain events on the whole local stack: the API ([`api`]), the
//! deliveries of every event in order ([`delivery`]), one subscriber that hangs and one that
//! fails beside a healthy one ([`isolation`]), dead letters, their retry and 410 Gone
//! ([`dead_letters`]), the signatures checked by the Standard Webhooks reference library
//! ([`reference`]), the URL rules applied again when a delivery is sent ([`url_rules`]), and
//! the documented example subscriber, `docs/examples/consumer.py` ([`consumer_example`]).
//! Subscribers are small axum servers on 127.0.0.1 that record every request and answer as
//! the test says.

mod api;
mod consumer_example;
mod dead_letters;
mod delivery;
mod isolation;
mod reference;
mod url_rules;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use orders::local::deliveries::DeliverySettings;
use orders_test_support::stack::{Stack, StackOptions};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The stack with private subscribers allowed (the subscribers here are on 127.0.0.1) and
/// the deliveries' delays multiplied by `delay_scale`.
pub async fn stack(delay_scale: f64) -> Stack {
    Stack::with_options(StackOptions {
        deliveries: DeliverySettings {
            allow_private: true,
            delay_scale,
            ..DeliverySettings::default()
        },
        ..StackOptions::default()
    })
    .await
}

/// One request a subscriber received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: DateTime<Utc>,
    /// How it was answered.
    pub reply: Reply,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn webhook_id(&self) -> String {
        self.header("webhook-id").expect("webhook-id").to_owned()
    }

    pub fn order(&self) -> String {
        self.event()["subject"]
            .as_str()
            .expect("subject")
            .to_owned()
    }

    /// Answered 2xx: a delivery made.
    pub fn delivered(&self) -> bool {
        matches!(self.reply, Reply::Status(s) if (200..300).contains(&s))
    }

    pub fn sequence(&self) -> u64 {
        self.event()["sequence"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a decimal sequence")
    }
}

/// How a subscriber answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Never answers.
    Hang,
}

/// Decides the answer to a request, given how many earlier requests carried its webhook-id.
pub type Behaviour = Arc<dyn Fn(&Received, usize) -> Reply + Send + Sync>;

struct Shared {
    log: Mutex<Vec<Received>>,
    count: watch::Sender<usize>,
    behaviour: Mutex<Behaviour>,
}

pub struct Subscriber {
    pub url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut received = Received {
        headers,
        body,
        at: Utc::now(),
        reply: Reply::Hang,
    };
    let reply = {
        let mut log = s.log.lock().unwrap();
        let id = received.header("webhook-id").map(str::to_owned);
        let earlier = log
            .iter()
            .filter(|r| r.header("webhook-id").map(str::to_owned) == id)
            .count();
        let behaviour = s.behaviour.lock().unwrap().clone();
        received.reply = behaviour(&received, earlier);
        let reply = received.reply;
        log.push(received);
        reply
    };
    s.count.send_modify(|n| *n += 1);
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

impl Subscriber {
    /// A subscriber answering every request with `status`.
    pub async fn answering(status: u16) -> Subscriber {
        Subscriber::start(Arc::new(move |_, _| Reply::Status(status))).await
    }

    pub async fn start(behaviour: Behaviour) -> Subscriber {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            behaviour: Mutex::new(behaviour),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Subscriber {
            url: format!("http://{addr}/hook"),
            shared,
            server,
        }
    }

    /// From now on, answers as `behaviour` says.
    pub fn answer(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Waits until what was received satisfies `done`, at most `timeout`; returns it.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let mut changed = self.shared.count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let log = self.received();
            if done(&log) {
                return log;
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                panic!(
                    "the subscriber at {} got {} requests within {timeout:?}, not what was awaited",
                    self.url,
                    log.len()
                );
            }
        }
    }
}

/// The requests answered 2xx: the deliveries that were made.
pub fn delivered(log: &[Received]) -> Vec<Received> {
    log.iter().filter(|r| r.delivered()).cloned().collect()
}

/// `POST /subscriptions` with this body, whatever the answer.
pub async fn post_subscription(stack: &Stack, body: &Value) -> (StatusCode, Value) {
    let req = Request::post("/subscriptions")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    stack.request(req).await
}

/// Subscribes `url` to `types`; returns `(id, secret)`.
pub async fn subscribe(stack: &Stack, url: &str, types: &[&str]) -> (String, String) {
    let (status, json) = post_subscription(stack, &json!({ "url": url, "types": types })).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let id = json["id"].as_str().expect("id").to_owned();
    let secret = json["secret"].as_str().expect("secret").to_owned();
    (id, secret)
}

/// Every public event type.
pub const ALL_TYPES: [&str; 7] = [
    "order.created",
    "order.payment_processed",
    "order.shipped",
    "order.completed",
    "order.cancelled",
    "order.failed",
    "voucher.issued",
];

/// A stored public event: its id, order, sequence and payload as written.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub order: String,
    pub sequence: u64,
    pub payload: String,
}

/// Every public event in the outbox (signals are not), in commit order.
pub fn stored_events(stack: &Stack) -> Vec<Stored> {
    let conn = rusqlite::Connection::open(stack.db()).unwrap();
    let mut st = conn
        .prepare(
            "SELECT event_id, order_id, payload FROM outbox
             WHERE json_extract(payload, '$.type') <> 'orders.internal.task-signal' ORDER BY seq",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))
        .unwrap()
        .map(|row| {
            let (id, order, payload) = row.unwrap();
            let event: Value = serde_json::from_str(&payload).unwrap();
            let sequence = event["sequence"].as_str().unwrap().parse().unwrap();
            Stored {
                id,
                order,
                sequence,
                payload,
            }
        })
        .collect()
}

/// Rows of `deliveries` for the subscription, read from the database file.
pub fn delivery_rows(stack: &Stack, subscription: &str) -> i64 {
    let conn = rusqlite::Connection::open(stack.db()).unwrap();
    conn.query_row(
        "SELECT count(*) FROM deliveries WHERE subscription_id = ?1",
        [subscription],
        |r| r.get(0),
    )
    .unwrap()
}

/// Polls the subscription's deliveries (`?status=`) every 20 ms until `n` are listed.
pub async fn wait_listed(s: &Stack, id: &str, status: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let uri = format!("/subscriptions/{id}/deliveries?status={status}");
    loop {
        let page = s.get_json(&uri).await;
        let listed = page["deliveries"].as_array().unwrap().clone();
        if listed.len() >= n {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "{n} {status} deliveries awaited: {page}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The subscription's deliveries (`?status=`) now.
pub async fn listed(s: &Stack, id: &str, status: &str) -> Vec<Value> {
    let page = s
        .get_json(&format!("/subscriptions/{id}/deliveries?status={status}"))
        .await;
    page["deliveries"].as_array().unwrap().clone()
}
