//! API Gateway HTTP API (payload format 2.0) events, as the API Lambda receives them: for the
//! route `$default`, with the JWT authorizer's verified claims when `claims` is given (API
//! Gateway passes each claim as a string).

use serde_json::{Value, json};

pub fn http_api_event(
    method: &str,
    path: &str,
    query: &str,
    claims: Option<Value>,
    headers: Value,
    body: Option<&str>,
) -> Value {
    let mut context = json!({
        "accountId": "123456789012",
        "apiId": "api-id",
        "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "api-id",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                 "sourceIp": "192.0.2.1", "userAgent": "test"},
        "requestId": "request-id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "22/Nov/2026:00:00:00 +0000",
        "timeEpoch": 1_795_305_600_000_i64
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": false
    })
}
