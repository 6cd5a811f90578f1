//! The `orders-steps` binary as Lambda runs it: a stand-in Runtime API on a loopback port
//! hands it Task inputs, and what it posts back is what Step Functions would see. A failed
//! step must come back on the error route with `errorType` = the step error's name, since
//! that is what the state machine's Retry and Catch match.

use chrono::Utc;
use orders_aws::dynamodb::item::new_order_item;
use orders_aws::{TableNames, functions};
use orders_domain::store::NewOrder;
use orders_domain::validation::validate_order;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Stops the function process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the function posted: the path (`.../<id>/response` or `.../<id>/error`) and body.
type Posted = (String, Value);

struct RuntimeApi {
    events: Mutex<VecDeque<(String, Value)>>,
    posted: mpsc::UnboundedSender<Posted>,
}

/// One keep-alive connection of the runtime client: `next` hands out a queued event (and
/// never answers once the queue is empty), anything else is a result, recorded and accepted.
async fn connection(sock: TcpStream, api: Arc<RuntimeApi>) {
    let mut sock = BufReader::new(sock);
    loop {
        let mut request = String::new();
        if sock.read_line(&mut request).await.unwrap_or(0) == 0 {
            return;
        }
        let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            sock.read_line(&mut header).await.expect("header");
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("content length");
            }
        }
        let mut body = vec![0; length];
        sock.read_exact(&mut body).await.expect("body");
        let reply = if path.ends_with("/invocation/next") {
            let next = api.events.lock().unwrap().pop_front();
            let Some((id, event)) = next else {
                return std::future::pending().await;
            };
            let event = event.to_string();
            let deadline = Utc::now().timestamp_millis() + 60_000;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:orders-steps\r\ncontent-length: {}\r\n\r\n{event}",
                event.len()
            )
        } else {
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let _ = api.posted.send((path, body));
            "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_owned()
        };
        sock.get_mut()
            .write_all(reply.as_bytes())
            .await
            .expect("reply");
    }
}

/// A PENDING order of one unit of a product the catalogue lacks, put in the table as the API
/// writes it, and its saga input.
async fn put_order(client: &aws_sdk_dynamodb::Client, names: &TableNames) -> Value {
    let body = json!({
        "customerId": "c-fn",
        "items": [{"productId": "unheard-of", "quantity": 1, "price": 20}],
        "paymentMethod": "pm_card_visa",
    });
    let order = NewOrder::from_draft(validate_order(&body).expect("a valid order"), Utc::now());
    client
        .put_item()
        .table_name(&names.orders)
        .set_item(Some(new_order_item(&order).expect("encodable")))
        .send()
        .await
        .expect("put order");
    serde_json::to_value(order.saga_input()).unwrap()
}

fn function(runtime_api: &str, endpoint: &str, names: &TableNames) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orders-steps"));
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "orders-steps")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        // Required at cold start; no step of this test asks the provider.
        .env(functions::PAYMENT_PROVIDER_URL_ENV, "http://127.0.0.1:9/")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for spec in functions::STEPS.tables {
        cmd.env(spec.env_var, names.name_of(*spec));
    }
    cmd
}

#[tokio::test]
async fn the_function_answers_step_functions_with_results_and_named_errors() {
    let moto = orders_aws::moto::session().await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let names = TableNames::with_prefix("fn-");
    orders_aws::provision::create_tables(&client, &names)
        .await
        .unwrap();
    let order = put_order(&client, &names).await;

    let (posted, mut results) = mpsc::unbounded_channel();
    let api = Arc::new(RuntimeApi {
        events: Mutex::new(VecDeque::from([
            (
                "e1".to_owned(),
                json!({"step": "ReserveInventory", "input": order}),
            ),
            (
                "e2".to_owned(),
                json!({"step": "SendNotification", "input": order}),
            ),
            ("e3".to_owned(), json!({"step": "Teleport", "input": order})),
        ])),
        posted,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(connection(sock, api.clone()));
        }
    });
    // Its stderr goes to a file, so a function that exits at cold start says why.
    let log = std::env::temp_dir().join(format!("orders-steps-{}.stderr", std::process::id()));
    let mut function = Running(
        function(&address, &moto.endpoint, &names)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start orders-steps"),
    );

    let mut next =
        async || match tokio::time::timeout(Duration::from_secs(60), results.recv()).await {
            Ok(posted) => posted.expect("channel open"),
            Err(_) => panic!(
                "the function answered nothing within 60 s (exit: {:?}); its stderr:\n{}",
                function.0.try_wait(),
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
    let (path, body) = next().await;
    assert_eq!(path, "/2018-06-01/runtime/invocation/e1/error");
    assert_eq!(body["errorType"], json!("OutOfStock"), "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("unheard-of")
    );
    let (path, body) = next().await;
    assert_eq!(path, "/2018-06-01/runtime/invocation/e2/response");
    assert_eq!(body, json!({"notified": true}));
    let (path, body) = next().await;
    assert_eq!(path, "/2018-06-01/runtime/invocation/e3/error");
    assert_eq!(body["errorType"], json!("InvalidInput"), "{body}");
}

#[test]
fn the_function_refuses_to_start_with_a_bad_rate() {
    let names = TableNames::with_prefix("fn-");
    let out = function("127.0.0.1:9", "http://127.0.0.1:9", &names)
        .env("ORDERS_NOTIFICATION_FAILURE_RATE", "1.5")
        .output()
        .expect("run orders-steps");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ORDERS_NOTIFICATION_FAILURE_RATE"),
        "{stderr}"
    );
}
