//! The real release binary as a child process on 127.0.0.1: start (waiting for /health),
//! `kill -9`, SIGTERM, and the requests the tests make of it (keyed orders, raw bodies,
//! stock, JSON reads). Used by the `tests/process` suite, which must exercise what an
//! operator runs, not the router alone.

use reqwest::Client;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The service binary cargo built for these tests: `target/<profile>/orders`, beside the
/// `deps/` folder the test binary runs from.
pub fn bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe.parent().and_then(std::path::Path::parent);
    profile.expect("target/<profile>").join("orders")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Tiny dependency-free randomness for kill timing and request mix; seeded from the pid so
/// each run kills at other moments.
pub fn pick(n: u64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x =
        STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ std::process::id() as u64;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % n
}

/// A temp dir holding the database and the port to listen on, kept together so that a test
/// can stop the service and start it again on the same data and address.
pub struct Workdir {
    pub dir: TempDir,
    pub db: PathBuf,
    pub port: u16,
}

impl Workdir {
    /// A fresh dir with no database yet (the service creates `db_file` at its first start).
    pub fn new(db_file: &str) -> Workdir {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join(db_file);
        Workdir {
            dir,
            db,
            port: free_port(),
        }
    }

    /// [`Server::start`] on this dir's database and port.
    pub async fn start(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start(&self.db, self.port, args, env).await
    }

    /// [`Server::start_logging`] on this dir's database and port.
    pub async fn start_logging(&self, args: &[&str], env: &[(&str, &str)], log: &Path) -> Server {
        Server::start_logging(&self.db, self.port, args, env, Some(log)).await
    }
}

pub struct Server {
    child: Option<Child>,
    pub base: String,
}

impl Server {
    /// Starts the binary on `port` and `db` with extra flags and environment; waits until
    /// /health answers.
    pub async fn start(db: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_logging(db, port, args, env, None).await
    }

    /// As `start`, with the process's stdout and stderr (its log) written to `log`.
    pub async fn start_logging(
        db: &Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Server {
        let out = |log: Option<&Path>| {
            log.map_or_else(Stdio::null, |p| {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p);
                Stdio::from(f.expect("log file"))
            })
        };
        let child = Command::new(bin())
            .args(["--listen", &format!("127.0.0.1:{port}"), "--database"])
            .arg(db)
            .args(args)
            .envs(env.iter().copied())
            .stdout(out(log))
            .stderr(out(log))
            .spawn()
            .expect("spawn orders");
        let server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/health", server.base))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// SIGTERM, then waits (bounded) for the process to exit on its own.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the process did not exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How a keyed POST /orders ended for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// 201: acknowledged, with its orderId.
    Created(String),
    /// An answered refusal (4xx, 503): nothing was committed under the key.
    Refused(u16),
    /// No answer (connection refused or reset by a kill): unknown, the client retries.
    Lost,
}

pub async fn post_keyed(client: &Client, base: &str, key: &str, body: &Value) -> Posted {
    let Ok(res) = client
        .post(format!("{base}/orders"))
        .header("x-idempotency-key", key)
        .json(body)
        .send()
        .await
    else {
        return Posted::Lost;
    };
    let status = res.status().as_u16();
    if status != 201 {
        return Posted::Refused(status);
    }
    match res.json::<Value>().await {
        Ok(v) => Posted::Created(v["orderId"].as_str().expect("orderId").to_owned()),
        // The body was cut by the kill: the client cannot know the order id.
        Err(_) => Posted::Lost,
    }
}

/// What a keyed cancellation (PATCH /orders/{id}) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelSent {
    /// 202: acknowledged; the order must end CANCELLED.
    Accepted,
    /// An answered refusal (409 too late, ...): nothing changed.
    Refused(u16),
    /// No answer: unknown, the client retries with the same key.
    Lost,
}

pub async fn cancel_keyed(client: &Client, base: &str, key: &str, order: &str) -> CancelSent {
    let sent = client
        .patch(format!("{base}/orders/{order}"))
        .header("x-idempotency-key", key)
        .json(&serde_json::json!({"status": "CANCELLED", "reason": "changed my mind"}))
        .send()
        .await;
    let Ok(res) = sent else {
        return CancelSent::Lost;
    };
    match res.status().as_u16() {
        202 if res.bytes().await.is_ok() => CancelSent::Accepted,
        202 => CancelSent::Lost,
        status => CancelSent::Refused(status),
    }
}

/// POST /orders with `body` sent as it is (malformed, oversized: whatever the test needs the
/// service to refuse), under the idempotency key if there is one.
pub async fn post_raw(
    client: &Client,
    base: &str,
    body: impl Into<reqwest::Body>,
    key: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{base}/orders"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key {
        req = req.header("x-idempotency-key", k);
    }
    req.send().await.expect("POST /orders answered")
}

/// Sets a product's stock over the API, as an operator stocks a new deployment.
pub async fn put_stock(client: &Client, base: &str, product: &str, available: i64) {
    let res = client
        .put(format!("{base}/inventory/{product}"))
        .json(&json!({ "available": available }))
        .send()
        .await
        .expect("PUT inventory answered");
    assert_eq!(res.status().as_u16(), 200, "PUT inventory of {product}");
}

/// The JSON body of a GET on `base` + `path`.
pub async fn get_json(client: &Client, base: &str, path: &str) -> Value {
    let res = client.get(format!("{base}{path}")).send().await;
    let res = res.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    res.json()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}

pub fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
