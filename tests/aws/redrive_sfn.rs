//! `POST /executions/{name}/redrive` on the AWS side: the API's port over the SDK's
//! `RedriveExecution`, against a stand-in of Step Functions on 127.0.0.1 that speaks its JSON
//! protocol. moto 5.2.5 does not implement RedriveExecution (its stepfunctions backend has no
//! redrive), so the stand-in records what the SDK sends (the target and the execution ARN,
//! derived from the state machine's) and answers each error shape the API maps: unknown 404,
//! not redrivable 409, throttled 503, anything else 500. The reads are not served here.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use orders::http::ApiSettings;
use orders::http::executions::ExecutionsApi;
use orders::lambda::StepFunctionsExecutions;
use orders_aws::sfn::redrive::StepFunctionsRedrive;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:orders-saga";
const EXECUTIONS: &str = "arn:aws:states:us-east-1:123456789012:execution:orders-saga:";

/// What the stand-in was sent: `(X-Amz-Target, executionArn)`.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"__type": format!("com.amazonaws.states#{kind}"), "message": message});
    let headers = [("content-type", "application/x-amz-json-1.0")];
    (status, headers, body.to_string()).into_response()
}

/// Answers by the execution's name: `ok-*` redriven, `gone` unknown, `done` not redrivable,
/// `busy` throttled, anything else a validation error.
async fn stand_in(seen: Seen, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let arn = request["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push((target.clone(), arn.clone()));
    if target != "AWSStepFunctions.RedriveExecution" {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &target,
        );
    }
    match arn.strip_prefix(EXECUTIONS).unwrap_or_default() {
        name if name.starts_with("ok-") => {
            let headers = [("content-type", "application/x-amz-json-1.0")];
            (headers, json!({"redriveDate": 1.7e9}).to_string()).into_response()
        }
        "gone" => error(
            StatusCode::BAD_REQUEST,
            "ExecutionDoesNotExist",
            "Execution Does Not Exist",
        ),
        "done" => error(
            StatusCode::BAD_REQUEST,
            "ExecutionNotRedrivable",
            "Execution is SUCCEEDED and cannot be redriven",
        ),
        "busy" => error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        _ => error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "bad request",
        ),
    }
}

async fn start_stand_in() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let handler = {
        let seen = seen.clone();
        move |headers: HeaderMap, body: Bytes| stand_in(seen.clone(), headers, body)
    };
    let app = Router::new().route("/", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn the_api_redrives_through_step_functions_and_maps_each_error() {
    let (url, seen) = start_stand_in().await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            "testing", "testing", None, None, "stand-in",
        ))
        .endpoint_url(&url)
        // One request per call, so the stand-in's log is the API's calls.
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let redrive = StepFunctionsRedrive::from_sdk(&sdk, MACHINE).unwrap();
    let app = orders_test_support::app_with(ApiSettings {
        executions: Some(ExecutionsApi {
            redrive: Arc::new(StepFunctionsExecutions(redrive)),
            reads: None,
        }),
        ..ApiSettings::default()
    });
    let post = |name: &str| {
        Request::post(format!("/executions/{name}/redrive"))
            .body(Body::empty())
            .unwrap()
    };

    let reply = app.send(post("ok-1")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.json());
    assert_eq!(reply.json()["status"], "RUNNING");
    assert_eq!(
        reply.header("location"),
        None,
        "nothing to read it at on AWS"
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [(
            "AWSStepFunctions.RedriveExecution".to_owned(),
            format!("{EXECUTIONS}ok-1")
        )]
    );
    for (name, status) in [
        ("gone", StatusCode::NOT_FOUND),
        ("done", StatusCode::CONFLICT),
        ("busy", StatusCode::SERVICE_UNAVAILABLE),
        ("broken", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let reply = app.send(post(name)).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.json());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    let conflict = app.send(post("done")).await.json();
    assert!(
        conflict["detail"].as_str().unwrap().contains("SUCCEEDED"),
        "{conflict}"
    );
    assert!(app.send(post("busy")).await.header("retry-after").is_some());
    let sent = seen.lock().unwrap().len();
    // A name no execution ARN can hold is unknown without a call.
    assert_eq!(app.send(post("a:b")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(seen.lock().unwrap().len(), sent);
    // The reads are the embedded runtime's.
    assert_eq!(app.get("/executions").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/executions/ok-1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn step_functions_out_of_reach_is_a_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            "testing", "testing", None, None, "stand-in",
        ))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let redrive = StepFunctionsRedrive::from_sdk(&sdk, MACHINE).unwrap();
    let app = orders_test_support::app_with(ApiSettings {
        executions: Some(ExecutionsApi {
            redrive: Arc::new(StepFunctionsExecutions(redrive)),
            reads: None,
        }),
        ..ApiSettings::default()
    });
    let req = Request::post("/executions/ok-2/redrive")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.status, StatusCode::SERVICE_UNAVAILABLE);
}
