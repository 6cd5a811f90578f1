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
use tracing::Instrument;

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

/// The envelope fields a delivery reads: the trace it continues, and the type its span names.
#[derive(Deserialize)]
struct Head {
    traceparent: Option<String>,
    #[serde(rename = "type", default)]
    event_type: String,
}

fn head(payload: &str) -> Option<Head> {
    serde_json::from_str(payload).ok()
}

/// The event's stored trace, when it has one.
fn event_trace(head: Option<&Head>) -> Option<Traceparent> {
    Traceparent::parse(head?.traceparent.as_deref()?).ok()
}

/// The attempt's span, when spans are exported (otherwise none, at no cost): a child of the
/// event's stored trace, so it joins the trace of the request that created the order.
fn attempt_span(target: &Target, delivery: &DueDelivery, head: Option<&Head>) -> tracing::Span {
    if !orders_telemetry::exporting() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "delivery",
        subscription = %target.id,
        event_id = %delivery.event_id,
        event_type = head.map_or("", |h| h.event_type.as_str()),
        attempt = delivery.attempts + 1,
        outcome = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    if let Some(parent) = event_trace(head) {
        orders_telemetry::continue_trace(&span, &parent);
    }
    span
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

    /// Posts `delivery` to `target`, signed at `now`; exported as the `delivery` span.
    pub async fn attempt(
        &self,
        target: &Target,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
    ) -> Answer {
        let head = head(&delivery.payload);
        let span = attempt_span(target, delivery, head.as_ref());
        let trace = event_trace(head.as_ref());
        let answer = self
            .send(target, delivery, now, trace)
            .instrument(span.clone())
            .await;
        let (outcome, status) = match &answer {
            Answer::Delivered(status) => ("delivered", Some(*status)),
            Answer::Gone => ("gone", Some(410)),
            Answer::Failed { status, .. } => ("failed", *status),
        };
        span.record("outcome", outcome);
        if let Some(status) = status {
            span.record("status", status);
        }
        answer
    }

    async fn send(
        &self,
        target: &Target,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
        trace: Option<Traceparent>,
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
        // The subscriber's work is a child of this attempt: its exported span, or else a
        // new span id in the event's trace.
        let sent_trace = orders_telemetry::traceparent_of(&tracing::Span::current())
            .or_else(|| trace.map(|t| t.child()));
        if let Some(trace) = sent_trace {
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
