//! The deployed Lambda artifacts, booted here: a stand-in of the Lambda Runtime API on a free
//! loopback port, and the cargo-lambda `bootstrap` of a function started against it as Lambda
//! starts it (under `qemu-aarch64` on a machine that is not arm64).
//!
//! Why: the in-process tests call the handlers, and the binary tests run host builds; neither
//! shows that the arm64 file that is uploaded starts, finds its configuration, reaches
//! DynamoDB and Step Functions, and speaks the Runtime API. The stand-in does what Lambda's
//! does for one function instance: `GET /2018-06-01/runtime/invocation/next` is a long poll
//! that hands out the next event with its request id, deadline, function ARN and trace
//! headers; `POST .../invocation/{id}/response`, `.../invocation/{id}/error` and
//! `/2018-06-01/runtime/init/error` are what the function answers, recorded and accepted.
//!
//! Each function's stdout and stderr (its JSON log lines) are kept and printed when the
//! process is gone, so a CI log shows how every artifact booted, passed or failed.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

/// Where the cargo-lambda output (`<binary>/bootstrap`) is found.
pub const LAMBDA_DIR_ENV: &str = "ORDERS_LAMBDA_DIR";
/// The Debian arm64 sysroot (`libc6-arm64-cross`) the dynamic loader of a glibc build needs.
pub const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";
const ACCOUNT: &str = "123456789012";

/// The directory of the built artifacts. An unset variable fails the test instead of skipping
/// it: a boot test that passes without a bootstrap would prove nothing.
pub fn lambda_dir() -> PathBuf {
    let dir = std::env::var_os(LAMBDA_DIR_ENV).unwrap_or_else(|| {
        panic!(
            "{LAMBDA_DIR_ENV} is not set: point it at cargo-lambda's output directory \
             (<target>/lambda, holding <binary>/bootstrap); scripts/lambda-boot.sh builds the \
             artifacts and runs these tests with it set"
        )
    });
    PathBuf::from(dir)
}

/// Whether `path` is an ELF file for arm64 (`e_machine` 183, little-endian, at byte 18).
fn elf_is_aarch64(path: &FsPath) -> bool {
    let mut header = [0u8; 20];
    let read = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut header)
    });
    read.is_ok()
        && header[..4] == *b"\x7fELF"
        && u16::from_le_bytes([header[18], header[19]]) == 183
}

/// What a function posted back for one invocation (or for its start).
#[derive(Debug, Clone, PartialEq)]
pub enum Posted {
    Response { id: String, body: Value },
    Error { id: String, body: Value },
    InitError { body: Value },
}

struct Invocation {
    id: String,
    payload: Value,
}

struct Shared {
    queue: Mutex<mpsc::UnboundedReceiver<Invocation>>,
    posted: mpsc::UnboundedSender<Posted>,
    function_arn: String,
    polls: AtomicUsize,
}

/// The Runtime API of one function instance; the server stops when this is dropped.
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    queue: mpsc::UnboundedSender<Invocation>,
    posted: Mutex<mpsc::UnboundedReceiver<Posted>>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl RuntimeApi {
    /// Binds a free loopback port and serves the Runtime API of `function` there.
    pub async fn start(function: &str) -> RuntimeApi {
        let (queue, queued) = mpsc::unbounded_channel();
        let (posted_tx, posted) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(queued),
            posted: posted_tx,
            function_arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"),
            polls: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let address = listener.local_addr().expect("bound address").to_string();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("runtime API server");
        });
        RuntimeApi {
            address,
            queue,
            posted: Mutex::new(posted),
            shared,
            server,
        }
    }

    /// How many times the function asked for an event so far.
    pub fn polls(&self) -> usize {
        self.shared.polls.load(Ordering::SeqCst)
    }

    /// Hands `payload` to the function and waits up to `timeout` for its answer to it (or for
    /// an init error, which ends the instance).
    pub async fn invoke(&self, payload: Value, timeout: Duration) -> Posted {
        let id = format!(
            "boot-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::SeqCst)
        );
        self.queue
            .send(Invocation {
                id: id.clone(),
                payload,
            })
            .expect("the server holds the queue");
        let mut posted = self.posted.lock().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let answer = tokio::time::timeout_at(deadline, posted.recv())
                .await
                .unwrap_or_else(|_| panic!("no answer to invocation {id} within {timeout:?}"))
                .expect("the server holds the sender");
            match &answer {
                Posted::Response { id: got, .. } | Posted::Error { id: got, .. } if *got != id => {
                    continue;
                }
                _ => return answer,
            }
        }
    }
}

async fn next(State(api): State<Arc<Shared>>) -> Response {
    api.polls.fetch_add(1, Ordering::SeqCst);
    // A long poll, as Lambda's: the function waits here until there is an event.
    let Some(invocation) = api.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let deadline = (now_ms + 300_000).to_string();
    let trace = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        now_ms / 1000,
        now_ms,
        now_ms
    );
    (
        [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", invocation.id),
            ("lambda-runtime-deadline-ms", deadline),
            (
                "lambda-runtime-invoked-function-arn",
                api.function_arn.clone(),
            ),
            ("lambda-runtime-trace-id", trace),
        ],
        invocation.payload.to_string(),
    )
        .into_response()
}

/// The body as JSON, or as a JSON string when it is not JSON (so nothing is lost).
fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(api): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = api.posted.send(Posted::Response {
        id,
        body: json(&body),
    });
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = api.posted.send(Posted::Error {
        id,
        body: json(&body),
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = api.posted.send(Posted::InitError { body: json(&body) });
    StatusCode::ACCEPTED
}

/// The command that starts `binary`'s bootstrap with the environment Lambda gives a function
/// (and nothing else of this process's), its SDK pointed at `endpoint` with dummy credentials.
/// The caller adds the function's own variables (tables, state machine).
pub fn bootstrap(binary: &str, runtime_api: &str, endpoint: &str) -> Command {
    let path = lambda_dir().join(binary).join("bootstrap");
    assert!(
        path.is_file(),
        "{} does not exist: build it with scripts/deploy.sh build",
        path.display()
    );
    // The file says what it is: cargo-lambda's arm64 build runs under qemu here, a host build
    // (`scripts/lambda-boot.sh --native`) runs as it is.
    let mut cmd = if elf_is_aarch64(&path) && std::env::consts::ARCH != "aarch64" {
        let mut qemu = Command::new("qemu-aarch64");
        qemu.arg("-L").arg(ARM64_SYSROOT).arg(&path);
        qemu
    } else {
        Command::new(&path)
    };
    let task_root = path.parent().unwrap_or(FsPath::new("/"));
    cmd.env_clear()
        .current_dir(task_root)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]boot")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("LAMBDA_TASK_ROOT", task_root)
        .env("_HANDLER", "bootstrap")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_ENDPOINT_URL", endpoint)
        .stdin(Stdio::null());
    cmd
}

/// A running function instance; killed, and its log printed, when dropped.
pub struct Function {
    name: String,
    child: Child,
    log: Arc<StdMutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Function {
    pub fn spawn(name: &str, mut cmd: Command) -> Function {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name} bootstrap ({cmd:?}): {e}"));
        let log = Arc::new(StdMutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let readers = vec![keep_lines(out, log.clone()), keep_lines(err, log.clone())];
        Function {
            name: name.to_owned(),
            child,
            log,
            readers,
        }
    }

    /// Waits up to `timeout` for the process to end by itself, then returns its status and
    /// every line it wrote; `None` if it was still running (it is killed when dropped).
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<(ExitStatus, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the function") {
                // The pipes close with the process; the readers have all its lines after this.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return Some((status, self.log.lock().unwrap().join("\n")));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let status = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        println!(
            "--- boot log of {} (pid {}, {}): {} lines",
            self.name,
            self.child.id(),
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            log.len()
        );
        for line in log.iter() {
            println!("{} | {line}", self.name);
        }
    }
}

fn keep_lines(
    pipe: impl Read + Send + 'static,
    log: Arc<StdMutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    })
}
