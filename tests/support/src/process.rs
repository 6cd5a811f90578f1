//! The real release binary as a child process on 127.0.0.1: start (waiting for /health),
//! `kill -9`, SIGTERM, and keyed order requests. Used by the crash loop, the fault-injection
//! and the shutdown tests, which must exercise what an operator runs, not the router alone.

use reqwest::Client;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

pub fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
