//! The HTTP listener: HTTP/1.1 and HTTP/2 (h2c, or h2 over TLS) on one port,
//! with limits on header size, slow clients and idle connections, and a
//! bounded graceful drain.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tower::Layer;

use crate::transport::idle::{IdleIo, IdleTrackLayer};

/// Request line plus headers of an HTTP/1.1 request (431 beyond).
const MAX_HTTP1_HEAD_BYTES: usize = 64 * 1024;
/// Decoded header list of an HTTP/2 request.
const MAX_HTTP2_HEADER_LIST_BYTES: u32 = 64 * 1024;
/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONCURRENT_STREAMS: u32 = 256;

/// Serves `service` on the connections of `incoming` (accepted TCP, or
/// connections whose TLS handshake is done) until `stop` turns true, then
/// drains connections for at most `drain_timeout`.
pub async fn serve<I, IO, S, B>(
    mut incoming: I,
    service: S,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
    idle_timeout: Option<Duration>,
) where
    I: Stream<Item = std::io::Result<IO>> + Unpin,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(MAX_HTTP1_HEAD_BYTES)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HTTP2_HEADER_LIST_BYTES)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();

    loop {
        tokio::select! {
            accepted = incoming.next() => {
                let stream = match accepted {
                    Some(Ok(stream)) => stream,
                    None => break,
                    Some(Err(err)) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        tracing::warn!(error = %err, "HTTP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let builder = builder.clone();
                let stream = IdleIo::new(stream, idle_timeout);
                let track = IdleTrackLayer::for_connection(stream.activity());
                let service = TowerToHyperService::new(track.layer(service.clone()));
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, "HTTP connection ended with an error");
                    }
                });
            }
            _ = stop.changed() => if *stop.borrow_and_update() { break },
        }
    }
    drop(incoming);
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?drain_timeout, "HTTP drain timeout reached, closing the remaining connections");
    }
}
