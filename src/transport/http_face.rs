//! What the HTTP listener serves: REST/JSON, or gRPC-Web (`application/grpc-web*`, by
//! content type) through the same tonic routes and call layers as gRPC, with CORS
//! around both when origins are allowed (`--cors-allow-origin`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, header};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::Service;
use tower_http::cors::{AllowOrigin, CorsLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The origin that allows every origin.
pub const ANY_ORIGIN: &str = "*";

/// Whether a request is gRPC-Web: any of its content types (binary or base64 text).
pub fn is_grpc_web(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web"))
}

/// REST, or gRPC-Web to `grpc_web`, by the request's content type.
#[derive(Clone)]
pub struct HttpFace<R, G> {
    rest: R,
    grpc_web: G,
}

impl<R, G> HttpFace<R, G> {
    pub fn new(rest: R, grpc_web: G) -> Self {
        Self { rest, grpc_web }
    }
}

impl<R, G, ReqBody, RestBody> Service<Request<ReqBody>> for HttpFace<R, G>
where
    R: Service<Request<ReqBody>, Response = Response<RestBody>, Error = Infallible>,
    G: Service<Request<ReqBody>, Response = Response<tonic::body::Body>, Error = Infallible>,
{
    type Response = Response<FaceBody<RestBody>>;
    type Error = Infallible;
    type Future = FaceFuture<R::Future, G::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready (the REST gateway and tonic's routes).
        match self.rest.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.grpc_web.poll_ready(cx),
            pending => pending,
        }
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if is_grpc_web(request.headers()) {
            FaceFuture::GrpcWeb {
                inner: self.grpc_web.call(request),
            }
        } else {
            FaceFuture::Rest {
                inner: self.rest.call(request),
            }
        }
    }
}

pin_project! {
    #[project = FaceFutureProj]
    pub enum FaceFuture<R, G> {
        Rest { #[pin] inner: R },
        GrpcWeb { #[pin] inner: G },
    }
}

impl<R, G, RestBody> Future for FaceFuture<R, G>
where
    R: Future<Output = Result<Response<RestBody>, Infallible>>,
    G: Future<Output = Result<Response<tonic::body::Body>, Infallible>>,
{
    type Output = Result<Response<FaceBody<RestBody>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FaceFutureProj::Rest { inner } => inner
                .poll(cx)
                .map_ok(|response| response.map(|body| FaceBody::Rest { body })),
            FaceFutureProj::GrpcWeb { inner } => inner
                .poll(cx)
                .map_ok(|response| response.map(|body| FaceBody::Grpc { body })),
        }
    }
}

pin_project! {
    /// The body of either face's answers, without boxing the REST one.
    #[project = FaceBodyProj]
    pub enum FaceBody<B> {
        Rest { #[pin] body: B },
        Grpc { #[pin] body: tonic::body::Body },
    }
}

/// Empty: what a CORS preflight answer holds.
impl<B> Default for FaceBody<B> {
    fn default() -> Self {
        FaceBody::Grpc {
            body: tonic::body::Body::empty(),
        }
    }
}

impl<B> Body for FaceBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            FaceBodyProj::Rest { body } => body.poll_frame(cx).map_err(Into::into),
            FaceBodyProj::Grpc { body } => body.poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            FaceBody::Rest { body } => body.is_end_stream(),
            FaceBody::Grpc { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            FaceBody::Rest { body } => body.size_hint(),
            FaceBody::Grpc { body } => body.size_hint(),
        }
    }
}

/// Why an origin of `--cors-allow-origin` is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--cors-allow-origin {origin:?}: {problem}")]
pub struct CorsOriginError {
    pub origin: String,
    pub problem: &'static str,
}

/// The CORS layer for `origins` (`*`: any), or `None` when none are allowed.
/// Browsers may send what the clients of both faces send (a token, gRPC-Web's
/// headers, idempotency keys) and read what they answer with (the gRPC status).
pub fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, CorsOriginError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow_origin = if origins.iter().any(|o| o == ANY_ORIGIN) {
        if origins.len() > 1 {
            return Err(CorsOriginError {
                origin: ANY_ORIGIN.to_owned(),
                problem: "\"*\" (any origin) can't be mixed with origins",
            });
        }
        AllowOrigin::any()
    } else {
        let mut values = Vec::with_capacity(origins.len());
        for origin in origins {
            values.push(parse_origin(origin)?);
        }
        AllowOrigin::list(values)
    };
    const HEADERS: [&str; 9] = [
        "authorization",
        "content-type",
        "idempotency-key",
        "x-request-id",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "traceparent",
        "tracestate",
    ];
    const EXPOSED: [&str; 5] = [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "x-request-id",
        "x-server-trace-id",
    ];
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers(HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED.map(HeaderName::from_static))
            .max_age(Duration::from_secs(600)),
    ))
}

/// `scheme://host[:port]`, as browsers send it in `Origin`.
fn parse_origin(origin: &str) -> Result<HeaderValue, CorsOriginError> {
    let fail = |problem| CorsOriginError {
        origin: origin.to_owned(),
        problem,
    };
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or_else(|| fail("an origin is http://HOST[:PORT] or https://HOST[:PORT], or \"*\""))?;
    if rest.is_empty() || rest.contains('/') || rest.chars().any(char::is_whitespace) {
        return Err(fail(
            "an origin has a host and no path (e.g. https://console.example.com)",
        ));
    }
    HeaderValue::from_str(origin).map_err(|_| fail("not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_grpc_web_by_its_content_types() {
        let with = |value: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_grpc_web(&headers)
        };
        assert!(with("application/grpc-web"));
        assert!(with("application/grpc-web+proto"));
        assert!(with("application/grpc-web-text"));
        assert!(!with("application/json"));
        assert!(!with("application/grpc"));
        assert!(!is_grpc_web(&http::HeaderMap::new()));
    }

    #[test]
    fn refuses_origins_it_could_never_match() {
        assert!(cors_layer(&[]).unwrap().is_none());
        assert!(cors_layer(&["*".into()]).unwrap().is_some());
        assert!(cors_layer(&["http://localhost:3000".into(), "https://a.example".into()]).is_ok());
        for (bad, problem) in [
            ("localhost:3000", "http://HOST"),
            ("https://a.example/app", "no path"),
            ("https://", "no path"),
        ] {
            let err = cors_layer(&[bad.into()]).unwrap_err();
            assert!(err.to_string().contains(problem), "{err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(cors_layer(&["*".into(), "https://a.example".into()]).is_err());
    }
}
