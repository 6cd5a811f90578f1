//! The real binary: start-up refusals, --help, and two processes sharing one database.
//! Nothing is decided from one process's memory, so two processes must agree on a key.

use orders_test_support as common;

use common::process::{Server, free_port};
use std::net::TcpListener;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

#[test]
fn help_lists_every_setting_with_its_env_var() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "ORDERS_LISTEN",
        "ORDERS_DATABASE",
        "ORDERS_IDEMPOTENCY_TTL_SECS",
        "ORDERS_REQUIRE_IDEMPOTENCY_KEY",
        "ORDERS_BODY_LIMIT",
        "ORDERS_LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help does not mention {var}:\n{help}");
    }
}

#[test]
fn refuses_a_taken_port_and_an_unusable_database() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--listen", &addr, "--database"])
        .arg(dir.path().join("a.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");

    // A directory where the database file should be.
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--database"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the database"), "{err}");

    let out = Command::new(BIN)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_database_agree_on_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let ports = [free_port(), free_port()];
    let _a = Server::start(&db, ports[0], &[], &[]).await;
    let _b = Server::start(&db, ports[1], &[], &[]).await;
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let client = client.clone();
            let port = ports[i % 2];
            tokio::spawn(async move {
                let r = client
                    .post(format!("http://127.0.0.1:{port}/orders"))
                    .header("content-type", "application/json")
                    .header("x-idempotency-key", "shared-key")
                    .body(common::LAPTOP)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    let mut bodies = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        bodies.insert(body);
    }
    assert_eq!(bodies.len(), 1);
    assert_eq!(common::count_rows(&db, "orders"), 1);
    assert_eq!(common::count_rows(&db, "outbox"), 1);
}
