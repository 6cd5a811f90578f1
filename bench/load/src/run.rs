//! The open loop: a fixed schedule of due times, N connections that serve it, what came back.
//!
//! Request `i` is due at `t0 + i / rate`; the schedule never waits for the server. Each
//! connection task takes the next request number from one shared counter, sleeps until it is
//! due (or sends at once when it is already late: every connection was busy at its due time),
//! and waits for the whole response before taking another, so a connection never has two
//! requests in flight. "Until it is due" means up to [`EARLY`] before the due time, see
//! [`serve`]. Times are kept as microseconds since `t0` on the monotonic clock and
//! turned into epoch time only for the log, so a wall-clock step cannot bend a latency.
//!
//! Invariants of the measured window (warm-up requests are sent the same way but counted
//! nowhere): `sent = answered + errors`, `sent <= due` (the difference is what was still
//! waiting for a connection when issuing stopped), and each request is sent at most once: a
//! failed one is counted by kind, never retried, and its connection is replaced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, LOCATION};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::cli::{Config, HeaderTemplate};

type Sender = SendRequest<Full<Bytes>>;

/// How long before its due time a request is woken. Tokio's timer rounds a deadline up to a
/// whole millisecond and parks for whole milliseconds counted from a rounded-down now, so a
/// sleep ends 0 to 2 ms after its deadline: sleeping until the due time itself measured a start
/// lag of p50 0.8-0.9 ms, max 2.4-3 ms (1000/s and 5000/s, loopback), which corrected latency
/// would have charged to the server. Woken 2 ms ahead, its p99 was 0 to 5 µs (up to 20000/s).
const EARLY: Duration = Duration::from_millis(2);

/// One answered request of the measured window; times in microseconds since `t0`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub seq: u64,
    pub uuid: Uuid,
    pub status: u16,
    pub due_us: u64,
    pub sent_us: u64,
    pub answered_us: u64,
    /// Kept only when a log is written.
    pub location: Option<Box<str>>,
}

/// Failed requests of the measured window, by kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Errors {
    /// No connection could be opened for the request (refused, or not within the timeout).
    pub connect: u64,
    /// No complete response within the timeout.
    pub timeout: u64,
    /// The connection failed while sending or receiving (reset, closed, malformed response).
    pub io: u64,
}

impl Errors {
    fn add(&mut self, other: Errors) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.io += other.io;
    }

    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.io
    }
}

/// What a run produced, before any statistics.
#[derive(Debug)]
pub struct Outcome {
    /// Epoch microseconds (UTC) at `t0`.
    pub t0_epoch_us: u64,
    /// Due time of the first measured request.
    pub window_start_us: u64,
    /// When issuing stopped: the due time of the request after the last one.
    pub stop_us: u64,
    /// Requests due in the measured window.
    pub due: u64,
    pub sent: u64,
    /// Measured requests a connection took at or after their due time.
    pub late_starts: u64,
    pub errors: Errors,
    pub answers: Vec<Answer>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{0} is unreachable: {1}")]
    Unreachable(String, std::io::Error),
}

/// State every connection task reads; only `next` changes.
struct Shared {
    config: Config,
    addr: SocketAddr,
    t0: Instant,
    next: AtomicU64,
    /// Request numbers below this are warm-up.
    warm: u64,
    total: u64,
    stop: Instant,
    body: Option<Bytes>,
}

impl Shared {
    fn due(&self, seq: u64) -> Instant {
        self.t0 + Duration::from_nanos((seq as f64 * 1e9 / self.config.rate) as u64)
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.t0).as_micros()).unwrap_or(u64::MAX)
    }

    fn request(&self, seq: u64, uuid: &Uuid) -> Request<Full<Bytes>> {
        let c = &self.config;
        // The path rendered at start parsed as a URI, and placeholders add only digits, hex
        // and dashes: this cannot fail, but a bad one would only cost this request.
        let uri = c.path.render(seq, uuid).parse::<Uri>().unwrap_or_default();
        let body = match &self.body {
            Some(constant) => constant.clone(),
            None => Bytes::from(c.body.render(seq, uuid)),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = c.method.clone();
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.insert(HOST, c.host.clone());
        for (name, value) in &c.headers {
            let value = match value {
                HeaderTemplate::Constant(v) => v.clone(),
                HeaderTemplate::Rendered(t) => match t.render(seq, uuid).parse() {
                    Ok(v) => v,
                    Err(_) => continue,
                },
            };
            headers.append(name.clone(), value);
        }
        req
    }
}

/// Open one connection; its driver runs as a task of its own until the sender is dropped.
async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<Sender> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    // Requests are small and one at a time: Nagle would only add delay.
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    // A failure of the connection surfaces on the sender; nothing to do with it here.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One full exchange: the status, the Location header, and the body read to its end.
async fn exchange(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Option<Box<str>>), hyper::Error> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into());
    resp.into_body().collect().await?;
    Ok((status, location))
}

/// What one connection task counted.
#[derive(Default)]
struct Tally {
    sent: u64,
    late_starts: u64,
    errors: Errors,
    answers: Vec<Answer>,
}

async fn serve(shared: Arc<Shared>, mut conn: Option<Sender>) -> Tally {
    let mut tally = Tally::default();
    let timeout = shared.config.timeout;
    let keep_location = shared.config.log.is_some();
    loop {
        let seq = shared.next.fetch_add(1, Ordering::Relaxed);
        if seq >= shared.total {
            break;
        }
        let measured = seq >= shared.warm;
        let due = shared.due(seq);
        let now = Instant::now();
        if now < due {
            // The start lands in [due - EARLY, due] instead of [due, due + EARLY]: the rate is
            // the same, and corrected latency runs from the earlier of due and send.
            if due - now > EARLY {
                tokio::time::sleep_until((due - EARLY).into()).await;
            }
        } else {
            // Late: the backlog of a busy period. Past the end nothing more is issued.
            if now >= shared.stop {
                break;
            }
            tally.late_starts += u64::from(measured);
        }
        let uuid = Uuid::new_v4();
        let req = shared.request(seq, &uuid);
        tally.sent += u64::from(measured);
        // A connection the server closed between two requests is replaced without a count.
        let mut sender = match conn.take() {
            Some(s) if !s.is_closed() => s,
            _ => match connect(shared.addr, timeout).await {
                Ok(s) => s,
                Err(_) => {
                    tally.errors.connect += u64::from(measured);
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let result = tokio::time::timeout(timeout, exchange(&mut sender, req)).await;
        let answered = Instant::now();
        match result {
            Ok(Ok((status, location))) => {
                conn = Some(sender);
                if measured {
                    tally.answers.push(Answer {
                        seq,
                        uuid,
                        status,
                        due_us: shared.micros(due),
                        sent_us: shared.micros(sent),
                        answered_us: shared.micros(answered),
                        location: location.filter(|_| keep_location),
                    });
                }
            }
            // In both cases the connection is dropped: its state is unknown.
            Ok(Err(_)) => tally.errors.io += u64::from(measured),
            Err(_) => tally.errors.timeout += u64::from(measured),
        }
    }
    tally
}

/// Number of whole requests due in `secs` at `rate`, tolerant of float error (2 s at 200/s
/// is 400, not 401).
fn count(rate: f64, secs: f64) -> u64 {
    (rate * secs - 1e-9).ceil().max(0.0) as u64
}

pub async fn run(config: Config) -> Result<Outcome, RunError> {
    let target = config.connect_to.clone();
    let addr = tokio::net::lookup_host(&target)
        .await
        .map_err(|e| RunError::Resolve(target.clone(), e))?
        .next()
        .ok_or_else(|| RunError::Resolve(target.clone(), std::io::ErrorKind::NotFound.into()))?;
    // All connections are opened before t0, so the first requests do not pay for them; one
    // that fails is opened again by its task when it has a request.
    let mut opening = JoinSet::new();
    for _ in 0..config.connections {
        opening.spawn(connect(addr, config.timeout));
    }
    let mut conns = Vec::new();
    let mut first_error = None;
    while let Some(joined) = opening.join_next().await {
        let error = match joined {
            Ok(Ok(sender)) => {
                conns.push(Some(sender));
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => std::io::Error::other(e),
        };
        first_error.get_or_insert(error);
        conns.push(None);
    }
    if conns.iter().all(Option::is_none) {
        let error = first_error.unwrap_or_else(|| std::io::ErrorKind::NotConnected.into());
        return Err(RunError::Unreachable(target, error));
    }

    let warm = count(config.rate, config.warmup_s);
    let due = count(config.rate, config.duration_s);
    let t0 = Instant::now();
    let t0_epoch_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let body = config
        .body
        .is_constant()
        .then(|| Bytes::from(config.body.render(0, &Uuid::nil())));
    let mut shared = Shared {
        config,
        addr,
        t0,
        next: AtomicU64::new(0),
        warm,
        total: warm + due,
        stop: t0,
        body,
    };
    shared.stop = shared.due(shared.total);
    let shared = Arc::new(shared);

    let mut tasks = JoinSet::new();
    for conn in conns {
        tasks.spawn(serve(Arc::clone(&shared), conn));
    }
    let mut outcome = Outcome {
        t0_epoch_us,
        window_start_us: shared.micros(shared.due(warm)),
        stop_us: shared.micros(shared.stop),
        due,
        sent: 0,
        late_starts: 0,
        errors: Errors::default(),
        answers: Vec::with_capacity(usize::try_from(due).unwrap_or(0)),
    };
    while let Some(joined) = tasks.join_next().await {
        // A task only ends by returning: the load code does not panic on its own.
        let Ok(tally) = joined else { continue };
        outcome.sent += tally.sent;
        outcome.late_starts += tally.late_starts;
        outcome.errors.add(tally.errors);
        outcome.answers.extend(tally.answers);
    }
    Ok(outcome)
}
