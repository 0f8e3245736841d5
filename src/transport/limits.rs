//! A cap on calls in flight, shared by both faces: past it a call is refused at
//! once (RESOURCE_EXHAUSTED, HTTP 429) instead of queueing, so an overloaded
//! replica sheds load quickly and the mesh retries elsewhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use crate::error::ApiError;
use crate::transport::metadata::{GRPC_MESSAGE, GRPC_STATUS};
use crate::transport::request_context::request_id_of;
use crate::transport::status::to_status;

#[derive(Debug)]
pub struct InFlight {
    count: AtomicUsize,
    max: usize,
}

/// One admitted call; the slot is given back when it is dropped.
#[derive(Debug)]
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            count: AtomicUsize::new(0),
            max,
        })
    }

    /// A slot, or `None` when `max` calls are already in flight.
    pub fn try_acquire(self: &Arc<Self>) -> Option<InFlightGuard> {
        let before = self.count.fetch_add(1, Ordering::AcqRel);
        let guard = InFlightGuard(self.clone());
        (before < self.max).then_some(guard)
    }

    pub fn in_flight(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// The error a refused call gets.
    pub fn refusal(&self) -> ApiError {
        ApiError::ResourceExhausted(format!(
            "the server is at its limit of {} calls in flight; retry later or elsewhere",
            self.max
        ))
    }
}

/// The gRPC face's use of [`InFlight`]: a refused call gets a trailers-only
/// RESOURCE_EXHAUSTED answer without reaching the service.
#[derive(Debug, Clone)]
pub struct InFlightLimitLayer {
    limit: Arc<InFlight>,
}

impl InFlightLimitLayer {
    pub fn new(limit: Arc<InFlight>) -> Self {
        Self { limit }
    }
}

layer_of!(InFlightLimitLayer => InFlightLimit { limit });

#[derive(Debug, Clone)]
pub struct InFlightLimit<S> {
    inner: S,
    limit: Arc<InFlight>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for InFlightLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    wrapping!(LimitFuture<S::Future, ResBody>);

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.limit.try_acquire() {
            Some(guard) => LimitFuture::Admitted {
                inner: self.inner.call(request),
                _guard: guard,
            },
            None => {
                let status = to_status(self.limit.refusal(), request_id_of(request.extensions()));
                LimitFuture::Refused {
                    response: Some(status.into_http()),
                }
            }
        }
    }
}

pin_project! {
    #[project = LimitFutureProjection]
    pub enum LimitFuture<F, B> {
        Admitted { #[pin] inner: F, _guard: InFlightGuard },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for LimitFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            LimitFutureProjection::Admitted { inner, .. } => inner.poll(cx),
            LimitFutureProjection::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
        }
    }
}

/// tonic refuses a request message larger than its decoding limit with
/// OUT_OF_RANGE; gRPC's convention for a message over the receive limit is
/// RESOURCE_EXHAUSTED, which clients and meshes treat as "don't retry as is".
/// This layer rewrites that one refusal (a trailers-only answer, recognised
/// by tonic's message) and names the limit.
#[derive(Debug, Clone)]
pub struct OversizeStatusLayer {
    message: http::HeaderValue,
}

/// The start of tonic's refusal, percent-encoded as grpc-message carries it.
const TONIC_TOO_LARGE: &str = "Error,%20decoded%20message%20length%20too%20large";

impl OversizeStatusLayer {
    pub fn new(limit: usize) -> Self {
        let text =
            format!("request message larger than the limit of {limit} bytes (--max-request-size)");
        let encoded = text.replace(' ', "%20");
        Self {
            message: http::HeaderValue::from_str(&encoded)
                .unwrap_or_else(|_| http::HeaderValue::from_static("request%20too%20large")),
        }
    }
}

layer_of!(OversizeStatusLayer => OversizeStatus { message });

#[derive(Debug, Clone)]
pub struct OversizeStatus<S> {
    inner: S,
    message: http::HeaderValue,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OversizeStatus<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    wrapping!(OversizeFuture<S::Future>);

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        OversizeFuture {
            inner: self.inner.call(request),
            message: Some(self.message.clone()),
        }
    }
}

pin_project! {
    pub struct OversizeFuture<F> {
        #[pin]
        inner: F,
        message: Option<http::HeaderValue>,
    }
}

impl<F, B, E> Future for OversizeFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        let headers = response.headers_mut();
        let too_large = headers.get(GRPC_STATUS).is_some_and(|s| s == "11")
            && headers
                .get(GRPC_MESSAGE)
                .is_some_and(|m| m.as_bytes().starts_with(TONIC_TOO_LARGE.as_bytes()));
        match this.message.take() {
            Some(message) if too_large => {
                headers.insert(GRPC_STATUS, http::HeaderValue::from_static("8"));
                headers.insert(GRPC_MESSAGE, message);
            }
            _ => {}
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_frees_slots_on_drop() {
        let limit = InFlight::new(2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.in_flight(), 2, "a refusal gives its slot back");
        drop(a);
        assert!(limit.try_acquire().is_some());
    }
}
