//! `GET /metrics` of the real binary, read as a stock Prometheus would: the text is parsed by
//! PyPI `prometheus-client`'s parser (pinned in scripts/requirements-dev.txt, installed into
//! .venv by scripts/setup-venv.sh), and the counters must move with what the test does:
//! orders created, a key replayed, bodies refused with their reason, a declined card's saga
//! compensated, notification retries. Labels stay bounded (route templates, never ids),
//! histogram buckets are cumulative, the outbox backlog is a gauge. With identity on, the
//! route is an admin's (401 without a token, 403 with a customer's), and `--metrics-listen`
//! serves it without one.

use orders::identity::dev::DevKeys;
use orders_test_support as common;

use common::process::{Workdir, free_port, http_client, post_raw};
use reqwest::Client;
use scrape::scrape;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

mod scrape;

fn order(quantity: u32, method: &str) -> Value {
    json!({"customerId": "metrics-customer", "paymentMethod": method,
        "items": [{"productId": "laptop", "quantity": quantity, "price": 10.0}]})
}

async fn post(client: &Client, base: &str, key: &str, body: &Value) -> (u16, Value) {
    let res = post_raw(client, base, body.to_string(), Some(key)).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_move_with_orders_replays_refusals_and_compensations() {
    let work = Workdir::new("metrics.db");
    let client = http_client();
    // Every notification attempt fails: each order retries it (4 times, as the ASL says)
    // and goes on without it.
    let args = [
        "--retry-delay-scale",
        "0.01",
        "--notification-failure-rate",
        "1",
    ];
    let server = work.start(&args, &[]).await;
    let base = server.base.clone();
    let url = format!("{base}/metrics");
    let before = scrape(&client, &url, None).await;
    assert!(
        before.has("orders_outbox_backlog"),
        "the backlog gauge is always there"
    );

    let mut ids = Vec::new();
    for i in 1..=3 {
        let (status, body) =
            post(&client, &base, &format!("m-{i}"), &order(i, "pm_card_visa")).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["orderId"].as_str().unwrap().to_owned());
    }
    let declined = post(
        &client,
        &base,
        "m-declined",
        &order(1, "pm_card_chargeDeclined"),
    )
    .await;
    assert_eq!(declined.0, 201);
    let replay = post(&client, &base, "m-1", &order(1, "pm_card_visa")).await;
    assert_eq!((replay.0, &replay.1["orderId"]), (201, &json!(ids[0])));
    assert_eq!(
        post(&client, &base, "m-1", &order(2, "pm_card_visa"))
            .await
            .0,
        422
    );
    assert_eq!(
        post_raw(&client, &base, "{not json", Some("m-bad"))
            .await
            .status(),
        400
    );
    for id in &ids {
        let res = client
            .get(format!("{base}/orders/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }

    // The sagas end on their own time: poll the scrape, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let now = scrape(&client, &url, None).await;
        let moved = |name: &str, labels: &[(&str, &str)]| {
            now.value(name, labels) - before.value(name, labels)
        };
        if moved("orders_saga_outcomes_total", &[("outcome", "completed")]) >= 3.0
            && moved("orders_saga_outcomes_total", &[("outcome", "failed")]) >= 1.0
        {
            break now;
        }
        assert!(Instant::now() < deadline, "the sagas did not end in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(moved("orders_created_total", &[]), 4.0);
    assert_eq!(moved("orders_replayed_total", &[]), 1.0);
    assert_eq!(
        moved("orders_refused_total", &[("reason", "key_reused")]),
        1.0
    );
    assert_eq!(moved("orders_refused_total", &[("reason", "invalid")]), 1.0);
    assert_eq!(moved("orders_refused_total", &[]), 2.0);
    assert_eq!(
        moved("orders_saga_outcomes_total", &[("outcome", "completed")]),
        3.0
    );
    assert_eq!(
        moved("orders_saga_outcomes_total", &[("outcome", "failed")]),
        1.0
    );
    assert_eq!(
        moved("orders_saga_outcomes_total", &[("outcome", "cancelled")]),
        0.0
    );
    assert_eq!(
        moved(
            "orders_saga_step_retries_total",
            &[("step", "SendNotification")]
        ),
        12.0
    );
    assert_eq!(
        moved("orders_relay_events_total", &[("outcome", "started")]),
        4.0
    );
    assert_eq!(moved("orders_relay_lag_seconds_count", &[]), 4.0);
    assert!(
        moved(
            "orders_saga_step_duration_seconds_count",
            &[("step", "ReserveInventory")]
        ) >= 4.0
    );
    assert!(after.value("orders_writer_commit_jobs_count", &[]) > 0.0);
    assert!(after.has("orders_writer_queue_depth"));
    assert!(after.has("orders_outbox_backlog"));

    // No id ever becomes a label; requests are counted by route template.
    for s in &after.0 {
        for value in s.labels.values() {
            assert!(
                !ids.iter().any(|id| value.contains(id.as_str()))
                    && uuid::Uuid::parse_str(value).is_err(),
                "an id in a label: {} {:?}",
                s.name,
                s.labels
            );
        }
    }
    let posts = [("route", "/orders"), ("method", "POST")];
    assert_eq!(
        moved(
            "orders_http_requests_total",
            &[posts[0], posts[1], ("status", "201")]
        ),
        5.0
    );
    assert_eq!(
        moved(
            "orders_http_requests_total",
            &[posts[0], posts[1], ("status", "422")]
        ),
        1.0
    );
    let reads = [
        ("route", "/orders/{id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(moved("orders_http_requests_total", &reads), 3.0);
    assert!(
        moved(
            "orders_http_request_duration_seconds_count",
            &[("route", "/orders/{id}")]
        ) >= 3.0
    );
    let unknown = client
        .get(format!("{base}/nowhere/{}", ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let last = scrape(&client, &url, None).await;
    assert!(
        last.value(
            "orders_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );
    last.assert_histograms_cumulative();
}

const ISSUER: &str = "https://issuer.metrics.test";
const AUDIENCE: &str = "orders-api";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_token_or_the_separate_listener_is_needed_with_identity_on() {
    let work = Workdir::new("metrics-auth.db");
    let keys = DevKeys::generate().unwrap();
    let (_, jwks) = keys.write(work.dir.path()).unwrap();
    let scraper = format!("127.0.0.1:{}", free_port());
    let jwks = jwks.to_str().unwrap().to_owned();
    let args = [
        "--auth",
        "jwt",
        "--jwks",
        &jwks,
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
        "--metrics-listen",
        &scraper,
    ];
    let server = work.start(&args, &[]).await;
    let client = http_client();
    let url = format!("{}/metrics", server.base);

    let problem = |res: reqwest::Response, status: u16| async move {
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], status);
    };
    problem(client.get(&url).send().await.unwrap(), 401).await;
    let customer = keys.token("metrics-customer", ISSUER, AUDIENCE, None, 600);
    problem(
        client
            .get(&url)
            .bearer_auth(&customer)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let admin = keys.token("ops", ISSUER, AUDIENCE, Some("orders/admin"), 600);
    let scraped = scrape(&client, &url, Some(&admin)).await;
    assert!(scraped.has("orders_outbox_backlog"));
    // The refusals above were measured, by route template.
    let refused = [("route", "/metrics"), ("status", "401")];
    assert!(scraped.value("orders_http_requests_total", &refused) >= 1.0);

    // The scraper's own listener: no token, and nothing but /metrics.
    let open = scrape(&client, &format!("http://{scraper}/metrics"), None).await;
    assert!(open.has("orders_outbox_backlog"));
    let other = client
        .get(format!("http://{scraper}/orders"))
        .send()
        .await
        .unwrap();
    problem(other, 404).await;

    // Documented, as an admin's operation.
    let doc: Value = client
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let op = &doc["paths"]["/metrics"]["get"];
    assert!(
        op["responses"]["200"]["content"]
            .get("text/plain; version=0.0.4")
            .is_some(),
        "{op}"
    );
    assert!(
        op["responses"]["401"].is_object() && op["responses"]["403"].is_object(),
        "{op}"
    );
}

#[test]
fn a_taken_metrics_address_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_orders"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &addr,
            "--database",
        ])
        .arg(dir.path().join("m.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}
