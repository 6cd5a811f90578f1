//! One delivery attempt: the stored CloudEvent as the body, exactly as written (structured
//! mode, `application/cloudevents+json`), signed per Standard Webhooks with the
//! subscription's secret (`webhook-id` is the event id, the same on every attempt, so a
//! subscriber can drop a redelivery), and the event's trace continued in `traceparent`.
//!
//! The client follows no redirect, uses no proxy, and resolves names only through
//! [`CheckedResolver`], so every connection obeys the URL rules; an address in the URL itself
//! is checked here before each attempt (the rules may have changed since the subscription was
//! made). Every attempt is bounded by the timeout, connecting and the answer included.

use crate::http::subscriptions::{CheckedResolver, UrlPolicy};
use chrono::{DateTime, Utc};
use orders_domain::Traceparent;
use orders_domain::standard_webhooks::Signed;
use orders_domain::subscriptions::{DueDelivery, Target};
use serde::Deserialize;
use std::error::Error as _;
use std::time::Duration;

/// The media type of a structured-mode CloudEvent.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
/// The most of an error answer's body kept in `last_error`.
const ERROR_BODY_BYTES: usize = 256;
/// The longest `last_error` kept.
const MAX_ERROR_LEN: usize = 512;

/// What the subscriber made of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Delivered(u16),
    /// 410 Gone: the subscriber wants no more.
    Gone,
    /// Anything else: another status, no answer in time, no connection, a refused address.
    Failed { status: Option<u16>, error: String },
}

pub struct Sender {
    client: reqwest::Client,
    policy: UrlPolicy,
}

/// The one envelope field a delivery adds a header for.
#[derive(Deserialize)]
struct Head {
    traceparent: Option<String>,
}

/// The trace to send on: a child of the event's, when it has one.
fn traceparent(payload: &str) -> Option<Traceparent> {
    let head: Head = serde_json::from_str(payload).ok()?;
    Traceparent::parse(&head.traceparent?)
        .ok()
        .map(|t| t.child())
}

/// An error with its causes, which is where reqwest says what actually went wrong.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer in time".to_owned()
    } else {
        e.to_string()
    };
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    truncate(text)
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl Sender {
    pub fn new(policy: UrlPolicy, timeout: Duration, per_host: usize) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(CheckedResolver(policy))
            .pool_max_idle_per_host(per_host)
            .user_agent(concat!("orders-deliveries/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { client, policy })
    }

    /// Posts `delivery` to `target`, signed at `now`.
    pub async fn attempt(
        &self,
        target: &Target,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
    ) -> Answer {
        let failed = |error: String| Answer::Failed {
            status: None,
            error,
        };
        let url = match self.policy.check_form(target.url.as_str()) {
            Ok(url) => url,
            Err(refused) => return failed(format!("url {refused}")),
        };
        let body = delivery.payload.as_bytes();
        let id = delivery.event_id.to_string();
        let signed = match Signed::new(&target.secret, &id, now.timestamp(), body) {
            Ok(signed) => signed,
            Err(e) => return failed(e.to_string()),
        };
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, CLOUDEVENTS_JSON)
            .body(delivery.payload.clone());
        for (name, value) in signed.headers() {
            request = request.header(name, value);
        }
        if let Some(trace) = traceparent(&delivery.payload) {
            request = request.header("traceparent", trace.as_str());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Delivered(status.as_u16());
        }
        if status == reqwest::StatusCode::GONE {
            return Answer::Gone;
        }
        Answer::Failed {
            status: Some(status.as_u16()),
            error: truncate(format!("HTTP {status}{}", snippet(response).await)),
        }
    }
}

/// The start of an error answer's body (`: ...`), for the operator reading the dead letter.
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ERROR_BODY_BYTES);
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}
