//! The public domain events the local stack writes: one per status change a subscriber may
//! care about, in the transaction of that change, in `sequence` order per order, in the trace
//! of the request that created the order, and each one valid against its documented JSON
//! Schema (`docs/events/`, checked with the PyPI `jsonschema` validator from .venv).

use orders_test_support as common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::stack::{Stack, order_body, with_payment};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// The order's public events (every outbox row but the signals), in the order written.
fn events(s: &Stack, order: &str) -> Vec<Value> {
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let mut st = conn
        .prepare("SELECT payload FROM outbox WHERE order_id = ?1 AND signal = 0 ORDER BY seq")
        .unwrap();
    st.query_map([order], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| serde_json::from_str(&p.unwrap()).unwrap())
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn sequences(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn create_traced(s: &Stack, body: &Value, traceparent: &str) -> String {
    let req = Request::post("/orders")
        .header("content-type", "application/json")
        .header("traceparent", traceparent)
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, json) = s.request(req).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["orderId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_completed_order_publishes_each_change_at_its_version_in_its_trace() {
    let s = Stack::new().await;
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let id = create_traced(&s, &order_body("cust-ev", "laptop", 1, 1299.99), caller).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    let evs = events(&s, &id);
    assert_eq!(
        types(&evs),
        [
            "order.created",
            "order.payment_processed",
            "order.shipped",
            "voucher.issued",
            "order.completed"
        ]
    );
    let seqs = sequences(&evs);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs[0], 1);
    assert_eq!(
        seqs.last().copied(),
        o["version"].as_u64(),
        "the last event is at the order's version"
    );
    for e in &evs {
        assert_eq!(e["subject"], id.as_str(), "{e}");
        let trace = e["traceparent"].as_str().unwrap_or_else(|| panic!("{e}"));
        assert_eq!(&trace[3..35], &caller[3..35], "one trace: {e}");
        assert_ne!(
            &trace[36..52],
            &caller[36..52],
            "the service's own span: {e}"
        );
    }
    let data = |t: &str| &evs.iter().find(|e| e["type"] == t).unwrap()["data"];
    assert_eq!(
        data("order.payment_processed")["paymentId"],
        o["payment"]["paymentId"]
    );
    assert_eq!(
        data("order.shipped")["trackingNumber"],
        o["shipment"]["trackingNumber"]
    );
    assert_eq!(data("order.completed")["totalCents"], 129_999);
    assert_eq!(data("order.completed")["status"], "COMPLETED");
    let voucher = data("voucher.issued");
    assert_eq!(voucher["discountCents"], 500);
    assert_eq!(
        s.vouchers("cust-ev").await[0]["voucherCode"],
        voucher["voucherCode"],
        "the code the customer holds"
    );
    validate(&evs);
}

#[tokio::test]
async fn failures_and_cancellations_publish_their_reason_and_nothing_before() {
    let s = Stack::new().await;
    let declined = s
        .create(&with_payment(
            order_body("cust-ev2", "laptop", 1, 50.0),
            "pm_card_chargeDeclined",
        ))
        .await;
    let waiting = s
        .create(&with_payment(
            order_body("cust-ev2", "laptop", 1, 50.0),
            "pm_card_noAnswer",
        ))
        .await;
    s.wait_for_status(&waiting, "AWAITING_PAYMENT", T).await;
    let (status, body) = s.cancel(&waiting, Some("changed my mind")).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(s.wait_terminal(&declined, T).await["status"], "FAILED");
    assert_eq!(s.wait_terminal(&waiting, T).await["status"], "CANCELLED");

    let failed = events(&s, &declined);
    assert_eq!(types(&failed), ["order.created", "order.failed"]);
    let reason = failed[1]["data"]["failureReason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.starts_with("PaymentDeclined"), "{}", failed[1]);
    let cancelled = events(&s, &waiting);
    assert_eq!(types(&cancelled), ["order.created", "order.cancelled"]);
    assert_eq!(
        cancelled[1]["data"]["cancellationReason"],
        "changed my mind"
    );
    assert!(
        cancelled[1]["data"].get("failureReason").is_none(),
        "{}",
        cancelled[1]
    );
    // A request without a trace header still starts one, which later events continue.
    let trace = |e: &Value| e["traceparent"].as_str().unwrap()[3..35].to_owned();
    assert_eq!(trace(&failed[0]), trace(&failed[1]));
    assert_ne!(trace(&failed[0]), trace(&cancelled[0]));
    validate(&[failed, cancelled].concat());
}

/// Checks each event against `docs/events/<type>.v1.schema.json` with the reference
/// validator (format checks on), failing with its message.
fn validate(events: &[Value]) {
    const SCRIPT: &str = r#"
import json, sys, pathlib
from jsonschema import Draft202012Validator
request = json.load(sys.stdin)
errors = []
for event in request["events"]:
    path = pathlib.Path(request["dir"]) / (event["type"] + ".v1.schema.json")
    schema = json.loads(path.read_text())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors += [f'{event["type"]}: {e.message} at {list(e.absolute_path)}' for e in validator.iter_errors(event)]
print(json.dumps(errors))
"#;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "run scripts/setup-venv.sh (jsonschema)");
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let request = json!({"dir": root.join("docs/events"), "events": events});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the validator failed");
    let errors: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
}
