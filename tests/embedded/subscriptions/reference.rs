//! A delivery as captured by a subscriber, verified by the Standard Webhooks reference
//! library (`standardwebhooks` on PyPI, in .venv by scripts/setup-venv.sh, the same check
//! tests/process/standard_webhooks.rs makes of the signing code) with the secret the
//! subscription was created with; the same delivery with its body changed is refused.

use super::{Subscriber, stack, subscribe};
use orders_test_support::stack::order_body;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Reads `{secret, deliveries: [{headers, body}]}` and prints, per delivery, the payload the
/// library returns, or `null` where it refuses the signature.
const SCRIPT: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
wh = Webhook(request["secret"])
out = []
for d in request["deliveries"]:
    try:
        out.append(wh.verify(d["body"].encode(), d["headers"]))
    except WebhookVerificationError:
        out.append(None)
print(json.dumps(out))
"#;

fn python() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} not found: run scripts/setup-venv.sh (it installs the standardwebhooks reference library)",
        path.display()
    );
    path
}

fn reference(request: &Value) -> Value {
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(request.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().expect("python runs");
    assert!(
        out.status.success(),
        "the reference script failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

#[tokio::test]
async fn the_reference_library_verifies_a_delivery_with_the_subscription_secret() {
    let s = stack(1.0).await;
    let subscriber = Subscriber::answering(200).await;
    let (_, secret) = subscribe(&s, &subscriber.url, &["order.created", "order.completed"]).await;
    let order = s.create(&order_body("ref-1", "mouse", 1, 10.0)).await;
    s.wait_terminal(&order, Duration::from_secs(20)).await;
    let log = subscriber
        .wait_until(Duration::from_secs(20), |log| log.len() == 2)
        .await;

    let mut deliveries = Vec::new();
    for r in &log {
        let headers: serde_json::Map<String, Value> =
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .iter()
                .map(|h| ((*h).to_owned(), json!(r.header(h).expect(h))))
                .collect();
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        deliveries.push(json!({"headers": headers, "body": body}));
        let tampered = body.replace(&order, &uuid::Uuid::now_v7().to_string());
        deliveries.push(json!({"headers": headers, "body": tampered}));
    }
    let verified = reference(&json!({"secret": secret, "deliveries": deliveries}));
    let verified = verified.as_array().unwrap();
    assert_eq!(verified.len(), 4);
    for (r, pair) in log.iter().zip(verified.chunks(2)) {
        assert_eq!(pair[0], r.event(), "verified, and the payload is the event");
        assert!(pair[1].is_null(), "a changed body is refused");
    }
    let other = reference(&json!({
        "secret": orders_domain::standard_webhooks::WebhookSecret::generate().unwrap().to_string(),
        "deliveries": [deliveries[0].clone()],
    }));
    assert_eq!(
        other,
        json!([null]),
        "another subscription's secret does not verify it"
    );
}
