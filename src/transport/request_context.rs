//! A tower layer around every call of both faces (gRPC and REST): it settles the request id, opens the call's span (a
//! child of the caller's W3C trace), stamps `x-request-id` on the response and writes the access log line.
//!
//! Handlers read the id from the request extensions as [`RequestId`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Request, Response};
use opentelemetry::trace::TraceId;
use pin_project_lite::pin_project;
use tower::Service;
use tracing::{Level, Span, field};

use crate::transport::metadata::GRPC_STATUS;

/// Counts calls by gRPC path (the metrics of `ops` do); the context layer
/// reports each call's start and end to it.
pub trait CallMeter: Send + Sync {
    fn call_started(&self, path: &str);
    fn call_finished(&self, path: &str, code: i32, elapsed: std::time::Duration);
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Sent on failed calls (as the real API does), so a support ticket can quote
/// the trace id beside the request id; the official SDKs read both.
pub const SERVER_TRACE_ID_HEADER: &str = "x-server-trace-id";
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
pub const CLIENT_REQUEST_ID_HEADER: &str = "x-client-request-id";

/// Longest incoming request id we keep; longer ones are replaced, not trusted.
const MAX_INCOMING_ID_LEN: usize = 128;

/// The id of one call: the one a proxy sent in `x-request-id`, or a new UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Keeps a usable incoming id (visible ASCII, not too long) or makes a new one.
    fn from_headers(headers: &HeaderMap) -> Self {
        match headers.get(REQUEST_ID_HEADER) {
            Some(value) if is_usable_id(value) => Self(value.clone()),
            _ => Self::generate(),
        }
    }

    pub fn generate() -> Self {
        let mut buf = uuid::Uuid::encode_buffer();
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        Self(HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown")))
    }

    pub fn as_str(&self) -> &str {
        // Only visible-ASCII values are ever stored, so this never falls back in practice.
        self.0.to_str().unwrap_or("")
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

fn is_usable_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_INCOMING_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The gRPC code a response stands for, set by a face that doesn't speak gRPC
/// on the wire (REST), for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcCode(pub i32);

/// Names the current call's span after the gRPC method serving it (the REST
/// face knows it only once the route is found).
pub fn record_grpc_method(grpc_path: &str) {
    let span = Span::current();
    span.record("rpc_method", grpc_path);
    if crate::transport::trace_context::exporting() {
        crate::transport::trace_context::rename_exported(&span, grpc_path);
    }
}

/// Reads the request id from a request's extensions, where [`RequestContext`] put it.
pub fn request_id_of(extensions: &http::Extensions) -> Option<&RequestId> {
    extensions.get::<RequestId>()
}

#[derive(Clone)]
pub struct RequestContextLayer {
    /// Log each finished call at INFO (otherwise at DEBUG, off by default).
    access_log: bool,
    /// Open call spans at INFO (otherwise at DEBUG): set when they are logged or exported.
    span_info: bool,
    /// Count calls by gRPC method (the gRPC face; the REST gateway counts the
    /// gRPC calls it makes itself, since only it knows which method a path is).
    metrics: Option<Arc<dyn CallMeter>>,
}

impl RequestContextLayer {
    pub fn new(access_log: bool) -> Self {
        Self {
            access_log,
            span_info: access_log || crate::transport::trace_context::exporting(),
            metrics: None,
        }
    }

    /// The same layer, counting calls in `metrics` by their gRPC path.
    pub fn with_metrics(mut self, metrics: Arc<dyn CallMeter>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

layer_of!(RequestContextLayer => RequestContext { access_log, span_info, metrics });

#[derive(Clone)]
pub struct RequestContext<S> {
    inner: S,
    access_log: bool,
    span_info: bool,
    metrics: Option<Arc<dyn CallMeter>>,
}

/// Opens the span of one call at a level chosen at run time (tracing wants a constant).
macro_rules! call_span {
    ($level:expr, $request:ident, $request_id:ident) => {
        tracing::span!(
            $level,
            "call",
            method = $request.uri().path(),
            request_id = $request_id.as_str(),
            client_request_id = $request
                .headers()
                .get(CLIENT_REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok()),
            rpc_method = field::Empty,
            trace_id = field::Empty,
            span_id = field::Empty,
            parent_span_id = field::Empty,
            image_id = field::Empty,
            subject = field::Empty,
            code = field::Empty,
            otel.name = field::Empty,
            otel.kind = field::Empty,
        )
    };
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestContext<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    wrapping!(ResponseFuture<S::Future>);

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let request_id = RequestId::from_headers(request.headers());
        let level = if self.access_log {
            Level::INFO
        } else {
            Level::DEBUG
        };
        // The span is disabled (and costs next to nothing) unless its level is enabled.
        let span = if self.span_info {
            call_span!(Level::INFO, request, request_id)
        } else {
            call_span!(Level::DEBUG, request, request_id)
        };
        let trace_id = crate::transport::trace_context::join_caller_trace(
            &span,
            request.headers(),
            request.uri().path(),
        );
        // Kept for a failure's x-server-trace-id: a clone shares the header's bytes.
        let traceparent = match trace_id {
            Some(_) => None,
            None => request.headers().get(TRACEPARENT).cloned(),
        };
        request.extensions_mut().insert(request_id.clone());
        let metered = self.metrics.as_ref().map(|metrics| {
            metrics.call_started(request.uri().path());
            (metrics.clone(), request.uri().clone())
        });
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ResponseFuture {
            inner,
            span,
            request_id,
            started: Instant::now(),
            level,
            metered,
            trace_id,
            traceparent,
        }
    }
}

pin_project! {
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        request_id: RequestId,
        started: Instant,
        level: Level,
        metered: Option<(Arc<dyn CallMeter>, http::Uri)>,
        trace_id: Option<TraceId>,
        traceparent: Option<HeaderValue>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = {
            let _entered = this.span.enter();
            ready!(this.inner.as_mut().poll(cx))
        };
        let latency_us = this.started.elapsed().as_micros() as u64;
        Poll::Ready(result.map(|mut response| {
            // A gRPC error travels as a trailers-only response: the code is in the
            // headers. A call whose headers lack it ended OK (unary calls).
            let code = match response.extensions().get::<GrpcCode>() {
                Some(GrpcCode(code)) => *code,
                None => response
                    .headers()
                    .get(GRPC_STATUS)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0),
            };
            let http_status = response.status().as_u16();
            // Unique to the call: in HTTP/2 it is sent as never-indexed, since
            // adding it to HPACK's table would only evict entries that repeat.
            let mut request_id = this.request_id.header_value().clone();
            request_id.set_sensitive(true);
            response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
            if code != 0 {
                let trace_id = crate::transport::trace_context::trace_id_of_failed_call(
                    *this.trace_id,
                    this.traceparent.as_ref(),
                );
                // Displayed as W3C writes it: 32 lowercase hex digits.
                if let Ok(value) = HeaderValue::from_str(&trace_id.to_string()) {
                    response.headers_mut().insert(SERVER_TRACE_ID_HEADER, value);
                }
            }
            this.span.record("code", code);
            if let Some((metrics, uri)) = this.metered.take() {
                metrics.call_finished(uri.path(), code, this.started.elapsed());
            }
            if *this.level == Level::INFO {
                tracing::info!(parent: &*this.span, code, http_status, latency_us, "call finished");
            } else {
                tracing::debug!(parent: &*this.span, code, http_status, latency_us, "call finished");
            }
            response
        }))
    }
}
