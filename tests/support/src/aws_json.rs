//! One call of an AWS JSON-protocol API on moto over plain HTTP (moto routes it by
//! `X-Amz-Target` and does not check the signature), for the APIs the tests use without their
//! SDK crate: DynamoDB Streams, SQS.

use serde_json::Value;

/// POSTs `body` as `{target}` (e.g. `AmazonSQS.SendMessage`) to `endpoint`, signed for
/// `service` in name only; panics unless the answer is a 2xx with a JSON body.
pub async fn call(endpoint: &str, service: &str, target: &str, body: &Value) -> Value {
    // Never through a proxy: moto is on the loopback interface.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let response = client
        .post(endpoint)
        .header("Content-Type", "application/x-amz-json-1.0")
        .header("X-Amz-Target", target)
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    let status = response.status();
    let text = response.text().await.expect("answer body");
    assert!(status.is_success(), "{target}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{target} answer {text}: {e}"))
}
