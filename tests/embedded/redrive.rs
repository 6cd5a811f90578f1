//! Redrive of a failed saga through `POST /executions/{name}/redrive`, on the whole local
//! stack: a release refused by the database (a trigger stands in for the fault) exhausts
//! compensation's retries, the execution ends FAILED in `CompensationFailedAtReleaseInventory`
//! with the order COMPENSATING and holding its stock; the cause is fixed (the trigger
//! dropped), the execution redriven, and the order ends CANCELLED (or FAILED) with nothing
//! left undone and no earlier step run again. Also the reads, 404/409, concurrent redrives
//! and, with identity on, 401/403.

mod executor;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use orders::http::ApiSettings;
use orders_test_support::stack::{
    Stack, StackOptions, assert_failed_with, assert_step, order_body, with_payment,
};
use orders_workflow::executor::ExecutorOptions;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;

const T: Duration = Duration::from_secs(30);

async fn call(
    s: &Stack,
    method: &str,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = s
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

async fn redrive(s: &Stack, name: &str) -> (StatusCode, HeaderMap, Value) {
    call(s, "POST", &format!("/executions/{name}/redrive"), None).await
}

/// Compensation's retries exhausted in a blink; parcels packed slowly enough to cancel one.
fn options() -> StackOptions {
    StackOptions {
        executor: ExecutorOptions {
            delay_scale: 0.000_01,
            ..ExecutorOptions::default()
        },
        packing: Duration::from_millis(1500),
        ..StackOptions::default()
    }
}

/// From now on the database refuses to give stock back, as a broken release would.
fn refuse_releases(s: &Stack) {
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_release BEFORE UPDATE OF available ON inventory
         WHEN NEW.available > OLD.available BEGIN SELECT RAISE(ABORT, 'release refused'); END;",
    )
    .unwrap();
}

/// The cause fixed.
fn allow_releases(s: &Stack) {
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch("DROP TRIGGER refuse_release").unwrap();
}

fn attempts(s: &Stack, order: &str, step: &str) -> i64 {
    s.query_i64(
        "SELECT attempts FROM saga_steps WHERE order_id = ?1 AND step = ?2",
        [order, step],
    )
}

/// The order's execution, once it has failed for good.
async fn failed_execution(s: &Stack, order: &str) -> String {
    s.wait_published(order, T).await;
    assert_eq!(s.execution_status(order).await, "FAILED");
    s.execution_name(order)
}

#[tokio::test]
async fn a_cancelled_order_stuck_in_compensation_is_redriven_to_cancelled_with_nothing_left_undone()
{
    let s = Stack::with_options(options()).await;
    s.put_inventory("gizmo", 10).await;
    let earn = s
        .create(&order_body("cust-rd1", "laptop", 1, 1299.99))
        .await;
    assert_eq!(s.wait_terminal(&earn, T).await["status"], "COMPLETED");
    let code = s.vouchers("cust-rd1").await[0]["voucherCode"].clone();

    refuse_releases(&s);
    let mut body = with_payment(order_body("cust-rd1", "gizmo", 3, 20.0), "pm_card_visa");
    body["voucherCode"] = code;
    let id = s.create(&body).await;
    s.wait_for_status(&id, "PAYMENT_PROCESSED", T).await;
    let name = s.execution_name(&id);
    let (status, _, problem) = redrive(&s, &name).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a RUNNING execution: {problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("RUNNING"),
        "{problem}"
    );
    let (status, _) = s.cancel(&id, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    assert_eq!(failed_execution(&s, &id).await, name);
    let stuck = s.get_json(&format!("/orders/{id}")).await;
    assert_eq!(stuck["status"], "COMPENSATING", "{stuck}");
    assert_eq!(s.stock("gizmo").await, 7, "the reservation is still held");
    assert_eq!(s.vouchers("cust-rd1").await[0]["status"], "USED");
    assert_eq!(
        s.payments(&id, Some("REFUNDED")),
        1,
        "the refund ran before the release"
    );
    let (_, _, list) = call(&s, "GET", "/executions?status=FAILED", None).await;
    let listed = &list["executions"][0];
    assert_eq!(listed["name"], name.as_str(), "{list}");
    assert_eq!(
        listed["error"], "CompensationFailed.ReleaseInventory",
        "{list}"
    );

    allow_releases(&s);
    let (status, headers, accepted) = redrive(&s, &name).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(headers["location"], format!("/executions/{name}").as_str());
    assert_eq!(accepted["status"], "RUNNING");
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "CANCELLED", "{o}");
    for step in ["ReleaseInventory", "RestoreVoucher", "MarkCancelled"] {
        assert_step(&o, step, "SUCCEEDED");
    }
    assert_eq!(s.stock("gizmo").await, 10, "the stock is back");
    assert_eq!(s.vouchers("cust-rd1").await[0]["status"], "READY");
    assert_eq!(s.payments(&id, Some("REFUNDED")), 1, "refunded once");
    assert_eq!(s.execution_status(&id).await, "SUCCEEDED");
    for step in [
        "ReserveInventory",
        "RequestPayment",
        "BeginCompensation",
        "RefundPayment",
    ] {
        assert_eq!(attempts(&s, &id, step), 1, "{step} did not run again");
    }

    let (status, _, detail) = call(&s, "GET", &format!("/executions/{name}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&detail["status"], &detail["redriveCount"]),
        (&"SUCCEEDED".into(), &1.into())
    );
    let history = detail["history"].as_array().unwrap();
    let of = |kind: &str, state: &str| {
        history
            .iter()
            .filter(|e| e["type"] == kind && e["state"] == state)
            .count()
    };
    assert_eq!(of("ExecutionRedriven", "ReleaseInventory"), 1, "{detail}");
    assert_eq!(of("StateEntered", "ReleaseInventory"), 2);
    assert_eq!(of("StateEntered", "RefundPayment"), 1);
    assert!(
        history
            .iter()
            .all(|e| e.get("attempt").is_some() && e.get("timestamp").is_some())
    );

    let (status, _, problem) = redrive(&s, &name).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a SUCCEEDED execution: {problem}"
    );
    let (status, _, problem) = redrive(&s, "no-such-execution").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(problem["status"], 404);
    let (status, _, _) = call(&s, "GET", "/executions/no-such-execution", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn of_two_concurrent_redrives_one_wins_and_the_declined_order_ends_failed() {
    let s = Stack::with_options(options()).await;
    s.put_inventory("gizmo", 10).await;
    refuse_releases(&s);
    let body = with_payment(
        order_body("cust-rd2", "gizmo", 4, 5.0),
        "pm_card_chargeDeclined",
    );
    let id = s.create(&body).await;
    let name = failed_execution(&s, &id).await;
    assert_eq!(
        s.get_json(&format!("/orders/{id}")).await["status"],
        "COMPENSATING"
    );
    assert_eq!(s.stock("gizmo").await, 6);

    allow_releases(&s);
    let (a, b) = tokio::join!(redrive(&s, &name), redrive(&s, &name));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{} {}",
        a.2,
        b.2
    );
    let o = s.wait_terminal(&id, T).await;
    assert_failed_with(&o, "PaymentDeclined");
    assert_eq!(
        attempts(&s, &id, "ReleaseInventory"),
        62,
        "61 refused, then the redrive's"
    );
    assert_step(&o, "ReleaseInventory", "SUCCEEDED");
    assert_eq!(s.stock("gizmo").await, 10);
    assert_eq!(s.execution_status(&id).await, "SUCCEEDED");
    let (_, _, detail) = call(&s, "GET", &format!("/executions/{name}"), None).await;
    assert_eq!(detail["redriveCount"], 1, "one redrive landed");
}

#[tokio::test]
async fn with_identity_on_only_admins_see_and_redrive_executions() {
    use crate::identity::{AUDIENCE, ISSUER};
    let dir = tempfile::tempdir().unwrap();
    let (keys, identity) = crate::identity::dev_identity(dir.path()).await;
    let mut options = options();
    options.api = ApiSettings {
        identity,
        ..ApiSettings::default()
    };
    let s = Stack::with_options(options).await;
    let admin = keys.token("ops", ISSUER, AUDIENCE, Some("orders/admin"), 3600);
    let customer = keys.token("alice", ISSUER, AUDIENCE, None, 3600);
    for (method, uri) in [
        ("POST", "/executions/some-name/redrive"),
        ("GET", "/executions?status=FAILED"),
        ("GET", "/executions/some-name"),
    ] {
        let (status, headers, _) = call(&s, method, uri, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, problem) = call(&s, method, uri, Some(&customer)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {problem}");
    }
    let (status, _, _) = call(&s, "POST", "/executions/some-name/redrive", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, list) =
        call(&s, "GET", "/executions?status=failed&limit=5", Some(&admin)).await;
    assert_eq!(
        (status, &list["executions"]),
        (StatusCode::OK, &Value::Array(vec![]))
    );
    let (status, _, problem) = call(&s, "GET", "/executions?status=DONE", Some(&admin)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}
