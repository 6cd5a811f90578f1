//! The moto server harness for tests: one emulator per test process, started on a free
//! loopback port, shared by the tests of that process one at a time, reset before each, and
//! stopped by PID when the process ends.
//!
//! Why one per process and a lock: moto takes seconds to start, and its state is global, so
//! tests that ran at once would see each other's tables. A reset between tests keeps every
//! table small, which matters because moto deep-copies the tables a transaction touches.
//! The process is stopped by a watchdog holding both PIDs, because a `static` is never
//! dropped when a test binary exits.
//!
//! Requests reach the emulator one at a time. moto serves requests on parallel threads, but
//! its conditional writes and `TransactWriteItems` are not isolated: a condition is checked and
//! the write applied without a lock, and a cancelled transaction restores copies of whole
//! tables taken when it began, erasing what other requests committed meanwhile. DynamoDB
//! applies each request atomically (and cancels a concurrent transaction on the same item with
//! `TransactionConflict`), which is what the stores build on. Serializing at the HTTP client
//! gives the emulator that atomicity, so a concurrency test checks our decisions (read, then
//! conditional write, then re-read on conflict), not the emulator's races. What it cannot
//! produce is a real `TransactionConflict`; unit tests cover how the stores answer one.

use aws_sdk_dynamodb::config::{Credentials, Region, RuntimeComponents};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What moto must do to run state machines without Docker: Lambda tasks echo their input.
const CONFIG: &str =
    r#"{"lambda":{"use_docker":false},"stepfunctions":{"execute_state_machine":true}}"#;

pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    _child: Child,
}

static SHARED: OnceLock<Moto> = OnceLock::new();
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A test's exclusive use of the process's emulator, reset when it was taken.
pub struct MotoSession {
    pub moto: &'static Moto,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for MotoSession {
    type Target = Moto;
    fn deref(&self) -> &Moto {
        self.moto
    }
}

/// Waits for this process's emulator (starting it the first time), resets it, and holds it
/// until the session is dropped.
pub async fn session() -> MotoSession {
    let turn = TURN.lock().await;
    let moto = tokio::task::spawn_blocking(|| SHARED.get_or_init(Moto::start))
        .await
        .expect("moto start-up thread");
    moto.reset();
    MotoSession { moto, _turn: turn }
}

impl Moto {
    fn start() -> Moto {
        let server = server_path();
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // moto builds the URLs it hands back (stream ARNs, callbacks) from MOTO_PORT.
            .env("MOTO_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        // Not waited for on purpose: the watchdog outlives this process (that is its job) and is
        // reaped by init when it exits.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args([
                "-c",
                r#"while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; kill "$2" 2>/dev/null"#,
                "moto-watchdog",
                &std::process::id().to_string(),
                &child.id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the moto watchdog");
        let moto = Moto {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(port, "GET", "/moto-api/", "").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Forgets every resource, then re-applies the execution settings.
    pub fn reset(&self) {
        http(self.port, "POST", "/moto-api/reset", "").expect("reset moto");
        http(self.port, "POST", "/moto-api/config", CONFIG).expect("configure moto");
    }

    /// SDK configuration pointing at this emulator with dummy credentials, on the SDK's own
    /// default HTTP client with its requests serialized (see the module docs).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .http_client(Serial(http))
            .load()
            .await
    }
}

/// One request in flight to the emulator at a time, process-wide.
static IN_FLIGHT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug)]
struct Serial(SharedHttpClient);

impl HttpClient for Serial {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SerialConnector(self.0.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct SerialConnector(SharedHttpConnector);

impl HttpConnector for SerialConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            // Held until the response has arrived, when moto has finished the request.
            let _turn = IN_FLIGHT.lock().await;
            inner.call(request).await
        })
    }
}

/// `ORDERS_MOTO_SERVER`, or the workspace's `.venv/bin/moto_server`.
fn server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ORDERS_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    // adapters/aws -> the workspace root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the aws crate sits in the workspace's adapters/")
        .to_path_buf();
    let path = root.join(".venv/bin/moto_server");
    assert!(
        path.exists(),
        "moto server not found at {}: run scripts/setup-venv.sh (or set ORDERS_MOTO_SERVER)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A minimal HTTP/1.1 exchange with the emulator's control API; `Err` unless 2xx.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let ok = answer
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if ok {
        Ok(answer)
    } else {
        Err(std::io::Error::other(format!(
            "{method} {path}: {}",
            answer.lines().next().unwrap_or("no answer")
        )))
    }
}
