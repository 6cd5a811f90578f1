//! `orders_domain::standard_webhooks` held to the Standard Webhooks reference library
//! (`standardwebhooks` on PyPI, pinned in scripts/requirements-dev.txt and installed into
//! .venv by scripts/setup-venv.sh): with a secret Rust generated, Python signs messages that
//! Rust must verify and sign byte for byte the same, and Python verifies messages Rust signed,
//! refusing a tampered one. The bodies are the awkward ones (empty, control characters, NUL,
//! multi-byte and combining characters, a large one), since the signed content is raw bytes.

use chrono::{DateTime, Utc};
use orders_domain::standard_webhooks::{Signed, WebhookSecret, sign, verify};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Reads `{secret, sign: [{id, timestamp, body}], verify: [{id, timestamp, signature, body}]}`
/// on stdin and prints `{signatures: [..], verified: [..]}`. Only the library's own refusal
/// counts as `false`; any other exception fails the run.
const SCRIPT: &str = r#"
import json, sys
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
wh = Webhook(request["secret"])

def verified(case):
    headers = {
        "webhook-id": case["id"],
        "webhook-timestamp": str(case["timestamp"]),
        "webhook-signature": case["signature"],
    }
    try:
        wh.verify(case["body"].encode(), headers, json_parse=False)
        return True
    except WebhookVerificationError:
        return False

print(json.dumps({
    "signatures": [
        wh.sign(c["id"], datetime.fromtimestamp(c["timestamp"], tz=timezone.utc), c["body"])
        for c in request["sign"]
    ],
    "verified": [verified(c) for c in request["verify"]],
}))
"#;

fn python() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} not found: run scripts/setup-venv.sh (it installs the standardwebhooks reference \
         library this test checks against)",
        path.display()
    );
    path
}

/// Runs [`SCRIPT`] on `request` and returns its answer.
fn reference(request: &Value) -> Value {
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(request.to_string().as_bytes())
        .expect("python reads the request");
    drop(stdin);
    let out = child.wait_with_output().expect("python runs");
    assert!(
        out.status.success(),
        "the reference script failed ({}); is standardwebhooks installed (scripts/setup-venv.sh)?\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

fn bodies() -> Vec<String> {
    vec![
        String::new(),
        r#"{"type":"payment.succeeded","data":{"amount":1999}}"#.to_owned(),
        "\u{0}\u{1}\u{7f}\r\n\t\\\"".to_owned(),
        "Zürich € 𝄞 日本語 e\u{301} \u{feff}\u{200d}".to_owned(),
        "0123456789abcdef ü".repeat(2048),
    ]
}

fn ids() -> [String; 4] {
    [
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".to_owned(),
        "0190b6f2-7a3c-7c41-9d2e-5f1b0a6e8c11".to_owned(),
        "a".to_owned(),
        "x_-~".repeat(63),
    ]
}

#[test]
fn rust_and_the_reference_library_sign_alike_and_accept_each_other() {
    let secret = WebhookSecret::generate().expect("random source");
    let now = Utc::now();
    let timestamps = [0, 1_614_265_330, now.timestamp(), 4_102_444_800];

    // (a) Python signs; Rust must produce the same value and verify Python's.
    let mut to_sign = Vec::new();
    for (i, body) in bodies().into_iter().enumerate() {
        for (j, id) in ids().into_iter().enumerate() {
            let timestamp = timestamps[(i + j) % timestamps.len()];
            to_sign.push((id, timestamp, body.clone()));
        }
    }

    // (b) Rust signs at the current time (the library checks its own clock); one body is
    // tampered with after signing and must be refused.
    let mut to_verify = Vec::new();
    for (body, id) in bodies().into_iter().zip(ids()) {
        let signed = Signed::new(&secret, &id, now.timestamp(), body.as_bytes()).expect("valid id");
        to_verify.push((signed, body, true));
    }
    let signed =
        Signed::new(&secret, "msg_tampered", now.timestamp(), b"{\"amount\":1}").expect("valid id");
    to_verify.push((signed, "{\"amount\":2}".to_owned(), false));

    let request = json!({
        "secret": secret.to_string(),
        "sign": to_sign.iter().map(|(id, timestamp, body)| {
            json!({"id": id, "timestamp": timestamp, "body": body})
        }).collect::<Vec<_>>(),
        "verify": to_verify.iter().map(|(signed, body, _)| json!({
            "id": signed.id,
            "timestamp": signed.timestamp.parse::<i64>().expect("integer seconds"),
            "signature": signed.signature,
            "body": body,
        })).collect::<Vec<_>>(),
    });
    let answer = reference(&request);

    let signatures = answer["signatures"].as_array().expect("a signature list");
    assert_eq!(signatures.len(), to_sign.len());
    for ((id, timestamp, body), theirs) in to_sign.iter().zip(signatures) {
        let theirs = theirs.as_str().expect("a string signature");
        let label = format!(
            "id {id:?}, timestamp {timestamp}, {} body bytes",
            body.len()
        );
        assert_eq!(
            sign(&secret, id, *timestamp, body.as_bytes()),
            theirs,
            "{label}"
        );
        let at = DateTime::from_timestamp(*timestamp, 0).expect("in range");
        let ours = verify(
            &secret,
            Some(id),
            Some(&timestamp.to_string()),
            Some(theirs),
            body.as_bytes(),
            at,
        );
        assert!(
            ours.is_ok(),
            "Rust refused the reference signature ({label}): {ours:?}"
        );
    }

    let verified = answer["verified"].as_array().expect("a verdict list");
    assert_eq!(verified.len(), to_verify.len());
    for ((signed, body, expected), verdict) in to_verify.iter().zip(verified) {
        assert_eq!(
            verdict.as_bool(),
            Some(*expected),
            "the reference library on id {:?} with {} body bytes",
            signed.id,
            body.len()
        );
    }
}
