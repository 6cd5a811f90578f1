//! A minimal HTTP/1.1 server for the tests: keep-alive, Content-Length bodies, one thread.
//!
//! It answers every request `201` with `Location: /orders/N` (N = arrival order, from 0) and
//! records what it received, so a test can compare what the tool sent with what it claims. A
//! stall function delays chosen answers to play a slow server. It runs on a current-thread
//! runtime of its own thread: like the tool, it then uses at most one core.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub location: String,
    /// When its head was complete.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Stall = dyn Fn(usize) -> Option<Duration> + Send + Sync;

struct State {
    arrivals: AtomicUsize,
    record: bool,
    received: Mutex<Vec<Received>>,
    stall: Box<Stall>,
}

pub struct Server {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Server {
    /// A recording server on a free loopback port; `stall(n)` delays the n-th answer.
    pub fn start(stall: impl Fn(usize) -> Option<Duration> + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", true, Box::new(stall))
    }

    pub fn start_on(addr: &str, record: bool, stall: Box<Stall>) -> Self {
        let listener = std::net::TcpListener::bind(addr).expect("bind the test server");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("listener address");
        let state = Arc::new(State {
            arrivals: AtomicUsize::new(0),
            record,
            received: Mutex::new(Vec::new()),
            stall,
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(connection(stream, Arc::clone(&shared)));
                }
            });
        });
        Self { addr, state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("server log").clone()
    }

    pub fn arrivals(&self) -> usize {
        self.state.arrivals.load(Ordering::SeqCst)
    }
}

async fn connection(mut stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let at = Instant::now();
        let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
        let mut lines = head.split("\r\n");
        let mut start = lines.next().unwrap_or_default().split(' ');
        let method = start.next().unwrap_or_default().to_owned();
        let target = start.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        buf.drain(..head_end + length);

        let n = state.arrivals.fetch_add(1, Ordering::SeqCst);
        let location = format!("/orders/{n}");
        if state.record {
            let got = Received {
                method,
                target,
                headers,
                body,
                location: location.clone(),
                at,
            };
            state.received.lock().expect("server log").push(got);
        }
        if let Some(delay) = (state.stall)(n) {
            tokio::time::sleep(delay).await;
        }
        let answer = format!(
            "HTTP/1.1 201 Created\r\ncontent-length: 2\r\nlocation: {location}\r\n\r\n{{}}"
        );
        stream.write_all(answer.as_bytes()).await?;
    }
}
