//! Authentication of every image call, gRPC and REST alike (the REST gateway
//! calls the same routes in-process and forwards `authorization`, or, for the
//! Gets, calls [`AuthLayer::authenticate`] itself): the layer
//! wraps the two ImageService services, finds the caller of the bearer token,
//! puts it in the request extensions and names it in the call's span, or
//! answers UNAUTHENTICATED itself. The token is never stored or logged.
//!
//! A call without a token goes on, as the anonymous caller, only to the
//! compute reads that a binding to `allUsers` can open (public images); the
//! service then answers UNAUTHENTICATED unless one does.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tonic::server::NamedService;
use tower::{Layer, Service};

use super::store::TokenStore;
use super::tokens::TokenTable;
use crate::domain::access::{self, Caller};
use crate::error::ApiError;
use crate::transport::request_context::{RequestId, request_id_of};
use crate::transport::status;

/// Wraps a service so that only callers with a known token reach it.
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Arc<TokenStore>,
}

impl AuthLayer {
    pub fn new(tokens: Arc<TokenStore>) -> Self {
        Self { tokens }
    }

    /// The caller of a call's bearer token, named in the current span, or the
    /// UNAUTHENTICATED status to answer with. The layer decides with it, and so
    /// does the REST gateway's direct Get.
    pub fn authenticate(
        &self,
        path: &str,
        headers: &HeaderMap,
        request_id: Option<&RequestId>,
    ) -> Result<Arc<Caller>, tonic::Status> {
        match authenticate(&self.tokens.current(), path, headers) {
            Ok(caller) => {
                tracing::Span::current().record("subject", caller.subject());
                Ok(caller)
            }
            Err(err) => Err(status::to_status(err, request_id)),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            auth: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: AuthLayer,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<B>> for Authenticated<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = AuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let checked = self.auth.authenticate(
            request.uri().path(),
            request.headers(),
            request_id_of(request.extensions()),
        );
        match checked {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                AuthFuture::Inner {
                    inner: self.inner.call(request),
                }
            }
            Err(status) => AuthFuture::Refused {
                response: Some(status.into_http()),
            },
        }
    }
}

/// The gRPC paths a call without a token may reach: the reads of compute
/// images, which bindings to `allUsers` open to anyone.
const OPEN_TO_ANONYMOUS: [&str; 3] = [
    "/yandex.cloud.compute.v1.ImageService/Get",
    "/yandex.cloud.compute.v1.ImageService/List",
    "/yandex.cloud.compute.v1.ImageService/GetLatestByFamily",
];

/// The caller of a bearer token, or why there is none (the message says which
/// of missing, malformed or unknown, never the token).
fn authenticate(
    tokens: &TokenTable,
    path: &str,
    headers: &HeaderMap,
) -> Result<Arc<Caller>, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        if OPEN_TO_ANONYMOUS.contains(&path) {
            return Ok(Caller::anonymous());
        }
        return Err(access::authentication_required());
    };
    let token = bearer_token(value.as_bytes()).ok_or_else(|| {
        ApiError::Unauthenticated(
            "Malformed authorization header: expected Bearer <token>".to_owned(),
        )
    })?;
    tokens
        .caller(token)
        .cloned()
        .ok_or_else(|| ApiError::Unauthenticated("Unknown bearer token".to_owned()))
}

/// The token of `Bearer <token>` (the scheme in any case, then spaces), when
/// the token is non-empty visible ASCII.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let token = value[SCHEME.len()..].trim_ascii_start();
    (!token.is_empty() && token.iter().all(u8::is_ascii_graphic)).then_some(token)
}

pin_project! {
    #[project = AuthFutureProj]
    pub enum AuthFuture<F> {
        Inner { #[pin] inner: F },
        Refused { response: Option<Response<tonic::body::Body>> },
    }
}

impl<F> Future for AuthFuture<F>
where
    F: Future<Output = Result<Response<tonic::body::Body>, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AuthFutureProj::Inner { inner } => inner.poll(cx),
            // Polled once: a finished future is not polled again.
            AuthFutureProj::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer   abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER t.1-2_3"), Some(&b"t.1-2_3"[..]));
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer    ",
            b"Basic abc",
            b"Bearerabc",
            b"abc",
            b"Bearer a b",
        ] {
            assert_eq!(
                bearer_token(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
