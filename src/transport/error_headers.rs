//! Failed gRPC calls sent as headers, then trailers, instead of trailers-only.
//!
//! tonic answers an error as a trailers-only response: one HEADERS frame that
//! holds the status and every header. Clients that build their error from the
//! response headers received before the status (the official Node.js SDK's
//! `ApiError`, with `requestId` and `serverTraceId`) then find none. This layer
//! splits such a response: the headers (`x-request-id`, `x-server-trace-id`)
//! go first, the status follows in the trailers, with the two ids repeated
//! there for clients that read only the trailing metadata.

use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response};
use http_body_util::{BodyExt, Empty};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::metadata::{GRPC_MESSAGE, GRPC_STATUS};
use super::request_context::{REQUEST_ID_HEADER, SERVER_TRACE_ID_HEADER};

const GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");

/// The trailers of a trailers-only response: moved out of its headers.
const MOVED: [HeaderName; 3] = [GRPC_STATUS, GRPC_MESSAGE, GRPC_STATUS_DETAILS];
/// Kept in the headers and repeated in the trailers.
const REPEATED: [&str; 2] = [REQUEST_ID_HEADER, SERVER_TRACE_ID_HEADER];

#[derive(Debug, Clone, Copy, Default)]
pub struct HeadersBeforeErrorLayer;

impl<S> Layer<S> for HeadersBeforeErrorLayer {
    type Service = HeadersBeforeError<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeadersBeforeError { inner }
    }
}

#[derive(Debug, Clone)]
pub struct HeadersBeforeError<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for HeadersBeforeError<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = SplitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        SplitFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    pub struct SplitFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> std::future::Future for SplitFuture<F>
where
    F: std::future::Future<Output = Result<Response<tonic::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(self.project().inner.poll(cx));
        Poll::Ready(result.map(split_trailers_only))
    }
}

/// A trailers-only response (its headers hold `grpc-status`) as headers and
/// trailers; any other response as it is.
fn split_trailers_only(response: Response<tonic::body::Body>) -> Response<tonic::body::Body> {
    if !response.headers().contains_key(GRPC_STATUS) {
        return response;
    }
    let (mut parts, _empty) = response.into_parts();
    let mut trailers = HeaderMap::with_capacity(MOVED.len() + REPEATED.len());
    for name in MOVED {
        if let Some(value) = parts.headers.remove(&name) {
            trailers.insert(name, value);
        }
    }
    for name in REPEATED {
        if let Some(value) = parts.headers.get(name) {
            trailers.insert(name, value.clone());
        }
    }
    let body = Empty::<Bytes>::new().with_trailers(std::future::ready(Some(Ok(trailers))));
    Response::from_parts(parts, tonic::body::Body::new(body))
}
