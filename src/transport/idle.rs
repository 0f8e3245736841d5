//! Idle connection timeout for both listeners: a connection on which no call
//! has been running for `--idle-timeout` is closed, so abandoned keep-alive
//! connections don't pile up (each costs a socket, buffers and a task).
//!
//! "Idle" counts calls, not bytes: HTTP/2 keepalive PINGs (ours, every
//! `--http2-keepalive`) and their acks would otherwise keep every connection
//! busy forever. Each connection's IO is wrapped in [`IdleIo`], which shares a
//! [`ConnectionActivity`] with the service handling that connection's calls;
//! when a read would wait and the connection has been idle long enough, the
//! read reports end-of-stream and the server closes the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tower::Service;

/// Calls running on one connection, and when the last one ended.
#[derive(Debug)]
pub struct ConnectionActivity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last call (or to opening).
    last_ms: AtomicU64,
}

impl ConnectionActivity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    /// When the connection may be closed if no call starts before then.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        Some(self.opened + last + timeout)
    }

    /// A call started; the returned guard ends it.
    pub fn call_started(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        CallGuard(self.clone())
    }
}

/// One running call; dropping it marks the connection active until now.
#[derive(Debug)]
pub struct CallGuard(Arc<ConnectionActivity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let since = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.fetch_max(since, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project! {
    /// A connection's IO that reads as closed once the connection is idle.
    pub struct IdleIo<T> {
        #[pin]
        inner: T,
        activity: Arc<ConnectionActivity>,
        timeout: Option<Duration>,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

impl<T> IdleIo<T> {
    /// `timeout` of `None` never closes the connection.
    pub fn new(inner: T, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            activity: ConnectionActivity::new(),
            timeout,
            timer: None,
        }
    }

    /// Shared with the service answering this connection's calls.
    pub fn activity(&self) -> Arc<ConnectionActivity> {
        self.activity.clone()
    }
}

impl<T: AsyncRead> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll_read(cx, buf) {
            return Poll::Ready(result);
        }
        let Some(timeout) = *this.timeout else {
            return Poll::Pending;
        };
        // Nothing to read: arm the timer for when the connection turns idle
        // (or, with a call running, check again one timeout from now).
        loop {
            let deadline = match this.activity.idle_deadline(timeout) {
                Some(deadline) if deadline <= Instant::now() => {
                    tracing::debug!(?timeout, "closing an idle connection");
                    return Poll::Ready(Ok(()));
                }
                Some(deadline) => deadline,
                None => Instant::now() + timeout,
            };
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<T: AsyncWrite> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// What tonic puts in each call's extensions: the TCP addresses as before,
/// plus the connection's activity for [`IdleTrackLayer`].
#[derive(Debug, Clone)]
pub struct IdleConnectInfo {
    pub tcp: TcpConnectInfo,
    pub activity: Arc<ConnectionActivity>,
}

impl Connected for IdleIo<TcpStream> {
    type ConnectInfo = IdleConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        IdleConnectInfo {
            tcp: self.inner.connect_info(),
            activity: self.activity.clone(),
        }
    }
}

/// The same information whether or not the connection is TLS, so one layer
/// finds it in both cases.
impl Connected for IdleIo<TlsStream<TcpStream>> {
    type ConnectInfo = IdleConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        IdleConnectInfo {
            tcp: self.inner.get_ref().0.connect_info(),
            activity: self.activity.clone(),
        }
    }
}

/// The gRPC listener's connections (plain or TLS), each wrapped in [`IdleIo`].
pub struct IdleIncoming<St> {
    inner: St,
    timeout: Option<Duration>,
}

impl<St> IdleIncoming<St> {
    pub fn new(inner: St, timeout: Option<Duration>) -> Self {
        Self { inner, timeout }
    }
}

impl<St, IO> Stream for IdleIncoming<St>
where
    St: Stream<Item = io::Result<IO>> + Unpin,
{
    type Item = io::Result<IdleIo<IO>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let timeout = self.timeout;
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|next| next.map(|accepted| accepted.map(|io| IdleIo::new(io, timeout))))
    }
}

/// Marks a call running on its connection (found in the request's
/// extensions, or given per connection) for as long as it is answered.
#[derive(Debug, Clone, Default)]
pub struct IdleTrackLayer {
    activity: Option<Arc<ConnectionActivity>>,
}

impl IdleTrackLayer {
    /// For one connection whose service is built per connection (REST).
    pub fn for_connection(activity: Arc<ConnectionActivity>) -> Self {
        Self {
            activity: Some(activity),
        }
    }
}

layer_of!(IdleTrackLayer => IdleTrack { activity });

#[derive(Debug, Clone)]
pub struct IdleTrack<S> {
    inner: S,
    activity: Option<Arc<ConnectionActivity>>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for IdleTrack<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    wrapping!(TrackedFuture<S::Future>);

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let activity = self.activity.clone().or_else(|| {
            request
                .extensions()
                .get::<IdleConnectInfo>()
                .map(|info| info.activity.clone())
        });
        TrackedFuture {
            _guard: activity.map(|a| a.call_started()),
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        _guard: Option<CallGuard>,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}
