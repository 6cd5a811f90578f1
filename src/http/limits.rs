//! Protection against slow and numerous clients, so neither can exhaust the process:
//! - at most `max_in_flight` requests are handled at once; one more is shed at once with a
//!   503 problem+json and `Retry-After` (cheap to refuse, and the client knows to come back)
//!   instead of queueing without bound;
//! - a request gets `request_timeout` to be answered, reading its body included; past it the
//!   client gets a 503 problem+json. A POST /orders cut this way may still commit: retried
//!   with its idempotency key it replays, as after any lost answer;
//! - at most `max_connections` connections are open; past it, new ones wait in the kernel's
//!   accept queue instead of costing a task each;
//! - a connection that sends nothing for `client_idle_timeout` is closed, whether it stalls
//!   mid-request (a slow-loris client) or idles between keep-alive requests.

use super::problem::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::Listener;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Sheds load past the in-flight cap, then bounds the time to answer.
#[derive(Clone)]
pub struct RequestGuard {
    in_flight: Arc<Semaphore>,
    timeout: Duration,
}

impl RequestGuard {
    pub fn new(max_in_flight: usize, timeout: Duration) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            timeout,
        }
    }

    pub async fn run(self, req: Request, next: Next) -> Response {
        let Ok(_permit) = self.in_flight.try_acquire_owned() else {
            return ApiError::Overloaded.into_response();
        };
        match tokio::time::timeout(self.timeout, next.run(req)).await {
            Ok(res) => res,
            Err(_) => ApiError::TimedOut(self.timeout.as_secs_f64()).into_response(),
        }
    }
}

/// The TCP listener with the connection cap and the idle timeout.
pub struct GuardedListener {
    inner: TcpListener,
    connections: Arc<Semaphore>,
    idle: Duration,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, max_connections: usize, idle: Duration) -> Self {
        Self {
            inner,
            connections: Arc::new(Semaphore::new(max_connections)),
            idle,
        }
    }
}

impl Listener for GuardedListener {
    type Io = GuardedIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = self
            .connections
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (io, addr) = Listener::accept(&mut self.inner).await;
        let _ = io.set_nodelay(true);
        let io = GuardedIo {
            io,
            idle: self.idle,
            deadline: Box::pin(tokio::time::sleep(self.idle)),
            waiting: false,
            _permit: permit,
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails its read once the client has sent nothing for `idle`; it holds
/// its connection permit until dropped.
pub struct GuardedIo {
    io: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    /// A read is pending and the deadline is armed for it.
    waiting: bool,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.waiting = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    this.deadline.as_mut().reset(Instant::now() + this.idle);
                }
                match this.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing for too long",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
