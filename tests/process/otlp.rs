//! Traces over OTLP from the real binary: a small OTLP/HTTP receiver on 127.0.0.1 takes the
//! spans (`POST /v1/traces`, protobuf), the service runs one order with a caller's
//! `traceparent` to completion with a subscriber, and stops on SIGTERM: the batch delay is
//! longer than the test, so the spans arrive by the flush at shutdown. Every span of the order must be in the caller's trace and hang together:
//! the request span is the caller's child, and the relay's start, each saga step attempt and
//! each delivery have a parent the receiver got. Without the variable nothing is exported
//! and no exporter thread runs.

use orders_test_support as common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use common::process::{Workdir, http_client, put_stock};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PRODUCT: &str = "otlp-a";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// The saga's Tasks an order that completes without a voucher visits.
const STEPS: [&str; 6] = [
    "ReserveInventory",
    "RequestPayment",
    "SendNotification",
    "PrepareShipment",
    "MarkShipped",
    "MarkCompleted",
];

/// One span as received, ids in hex.
#[derive(Debug, Clone)]
struct Got {
    name: String,
    trace: String,
    id: String,
    parent: String,
    attrs: Vec<(String, String)>,
}

impl Got {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&Any>) -> String {
    match value {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

#[derive(Default)]
struct Receiver {
    spans: Mutex<Vec<Got>>,
    requests: Mutex<Vec<String>>,
}

async fn traces(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> &'static str {
    let kind = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    r.requests.lock().unwrap().push(kind);
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    let mut spans = r.spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for s in scope.spans {
                spans.push(Got {
                    name: s.name,
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    attrs: s
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, text(kv.value.and_then(|v| v.value).as_ref())))
                        .collect(),
                });
            }
        }
    }
    ""
}

/// The receiver, listening on a free loopback port: its endpoint, and what it got.
async fn receiver() -> (String, Arc<Receiver>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

/// A subscriber that records each delivery's `traceparent` header and answers 204.
async fn subscriber() -> (String, Arc<Mutex<Vec<(Value, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Arc<Mutex<Vec<(Value, String)>>> = Arc::default();
    let log = got.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            let trace = headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let event: Value = serde_json::from_slice(&body).expect("a CloudEvent");
            log.lock().unwrap().push((event, trace));
            axum::http::StatusCode::NO_CONTENT
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// The names of the process's threads.
fn threads(pid: u32) -> Vec<String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc of the service");
    dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Subscribes to every event, then creates one order with the caller's trace, and waits for
/// it to complete and for its order.completed delivery. Returns the order id.
async fn one_traced_order(
    base: &str,
    hook: &str,
    delivered: &Mutex<Vec<(Value, String)>>,
) -> String {
    let client = http_client();
    put_stock(&client, base, PRODUCT, 10).await;
    let types = [
        "order.created",
        "order.payment_processed",
        "order.shipped",
        "order.completed",
    ];
    let res = client
        .post(format!("{base}/subscriptions"))
        .json(&json!({ "url": hook, "types": types }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    let res = client
        .post(format!("{base}/orders"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"customerId": "otlp-c",
            "items": [{"productId": PRODUCT, "quantity": 1, "price": 12.0}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let order = res.json::<Value>().await.unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = delivered
            .lock()
            .unwrap()
            .iter()
            .any(|(e, _)| e["type"] == "order.completed");
        if done {
            return order;
        }
        assert!(
            Instant::now() < deadline,
            "order {order} not delivered as completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const ARGS: [&str; 5] = [
    "--allow-private-subscribers",
    "--retry-delay-scale",
    "0.01",
    "--shutdown-grace-secs",
    "5",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_the_request_through_the_saga_and_the_deliveries() {
    let (endpoint, got) = receiver().await;
    let (hook, delivered) = subscriber().await;
    let work = Workdir::new("otlp.db");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        // Longer than the test: what arrives was sent by the flush at shutdown.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ("OTEL_SERVICE_NAME", "orders-otlp-test"),
    ];
    let mut server = work.start(&ARGS, &env).await;
    assert!(
        threads(server.pid())
            .iter()
            .any(|t| t.starts_with("OpenTelemetry")),
        "an exporter thread runs: {:?}",
        threads(server.pid())
    );
    let order = one_traced_order(&server.base, &hook, &delivered).await;
    assert!(server.terminate(Duration::from_secs(20)).success());

    let spans = got.spans.lock().unwrap().clone();
    assert!(
        got.requests
            .lock()
            .unwrap()
            .iter()
            .all(|c| c == "application/x-protobuf")
    );
    let ids: HashSet<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    let resolves = |s: &Got| s.parent == CALLER_SPAN || ids.contains(s.parent.as_str());
    let show = |s: &Got| {
        format!(
            "{} {:?} parent {} in {}",
            s.name, s.attrs, s.parent, s.trace
        )
    };

    // The request's span is the caller's child, and what the order stored names it.
    let request = spans
        .iter()
        .find(|s| {
            s.name == "request"
                && s.attr("method") == Some("POST")
                && s.attr("path") == Some("/orders")
        })
        .unwrap_or_else(|| panic!("no POST /orders span in {} spans", spans.len()));
    assert_eq!(request.trace, CALLER_TRACE);
    assert_eq!(request.parent, CALLER_SPAN);

    // Every span of the order is in the caller's trace, with a parent that was received.
    let of_order = ["saga_start", "saga_execution", "saga_step", "delivery"];
    for s in spans.iter().filter(|s| of_order.contains(&s.name.as_str())) {
        assert_eq!(s.trace, CALLER_TRACE, "{}", show(s));
        assert!(resolves(s), "a parent not received: {}", show(s));
    }
    for s in spans.iter().filter(|s| s.trace == CALLER_TRACE) {
        assert!(resolves(s), "a parent not received: {}", show(s));
    }
    let start = spans
        .iter()
        .find(|s| s.name == "saga_start")
        .expect("the relay's start");
    assert_eq!(
        start.parent, request.id,
        "the relay continues the stored request span"
    );

    // One span per Task attempt, named by its state, with its attempt and outcome.
    for step in STEPS {
        let attempts: Vec<&Got> = spans
            .iter()
            .filter(|s| s.name == "saga_step" && s.attr("state") == Some(step))
            .collect();
        assert!(!attempts.is_empty(), "no span for {step}");
        for a in attempts {
            assert!(a.attr("attempt").is_some(), "{}", show(a));
            assert!(a.attr("outcome").is_some(), "{}", show(a));
        }
    }
    let completed = spans
        .iter()
        .find(|s| s.name == "saga_step" && s.attr("state") == Some("MarkCompleted"))
        .unwrap();
    assert_eq!(completed.attr("outcome"), Some("succeeded"));

    // Each delivery is a span of the trace, and the subscriber was sent that span as parent.
    let deliveries: Vec<&Got> = spans.iter().filter(|s| s.name == "delivery").collect();
    let sent = delivered.lock().unwrap().clone();
    assert!(sent.len() >= 4, "{sent:?}");
    for (event, header) in &sent {
        assert_eq!(event["subject"], order.as_str());
        let span_id = header
            .get(36..52)
            .unwrap_or_else(|| panic!("traceparent {header:?}"));
        assert_eq!(&header[3..35], CALLER_TRACE, "{header}");
        let span = deliveries
            .iter()
            .find(|d| d.id == span_id)
            .unwrap_or_else(|| panic!("no delivery span {span_id} for {}", event["type"]));
        assert_eq!(span.attr("event_type"), event["type"].as_str());
        assert_eq!(span.attr("outcome"), Some("delivered"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported() {
    let (hook, delivered) = subscriber().await;
    let work = Workdir::new("otlp-off.db");
    // Every other OTLP setting, but no endpoint: still off.
    let env = [
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_SERVICE_NAME", "orders-otlp-test"),
    ];
    let mut server = work.start(&ARGS, &env).await;
    one_traced_order(&server.base, &hook, &delivered).await;
    let names = threads(server.pid());
    assert!(
        !names.iter().any(|t| t.starts_with("OpenTelemetry")),
        "no exporter thread: {names:?}"
    );
    assert!(server.terminate(Duration::from_secs(20)).success());
    // The trace is still carried, with span ids of the service's own.
    for (event, header) in delivered.lock().unwrap().iter() {
        assert_eq!(&header[3..35], CALLER_TRACE, "{event}");
        assert_ne!(&header[36..52], CALLER_SPAN);
    }
}

#[test]
fn a_protocol_it_cannot_speak_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::process::bin())
        .args(["--listen", "127.0.0.1:0", "--database"])
        .arg(dir.path().join("refused.db"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .expect("run orders");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""),
        "{err}"
    );
    assert!(!dir.path().join("refused.db").exists(), "nothing started");
}
