//! The gRPC wire as proxies and clients that read it themselves see it, with
//! a raw HTTP/2 client: which headers come before the status, and what a call
//! whose deadline passes is answered with.

use crate::common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestApp;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

const COMPUTE_GET: &str = "/yandex.cloud.compute.v1.ImageService/Get";
const REGISTRY_GET: &str = "/yandex.cloud.containerregistry.v1.ImageService/Get";

/// A request body that never sends anything and never ends.
struct Stalled;

impl Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// One gRPC call (with `headers` added) over a new HTTP/2 connection: the response's headers, and its
/// trailers once the body has ended.
async fn call<B>(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: B,
) -> (Response<()>, Option<HeaderMap>)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync,
{
    let stream = tokio::net::TcpStream::connect(app.grpc_addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = Request::post(format!("http://{}{path}", app.grpc_addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response: Response<Incoming> = sender
        .send_request(request.body(body).unwrap())
        .await
        .unwrap();
    let (parts, mut body) = response.into_parts();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        if let Ok(t) = frame.unwrap().into_trailers() {
            trailers = Some(t);
        }
    }
    (Response::from_parts(parts, ()), trailers)
}

/// A gRPC message frame: uncompressed flag, length, bytes.
fn framed(message: &impl Message) -> Full<Bytes> {
    let bytes = message.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bytes);
    Full::new(Bytes::from(frame))
}

fn header<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
    map.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn failed_calls_send_their_headers_before_the_status_on_both_apis() {
    let app = TestApp::demo().await;
    let compute = framed(&image_service::proto::compute::GetImageRequest {
        image_id: "fd8doesnotexist000000".into(),
    });
    let registry = framed(&image_service::proto::container_registry::GetImageRequest {
        image_id: "crpdoesnotexist00000".into(),
    });
    let invalid = framed(&image_service::proto::compute::GetImageRequest {
        image_id: String::new(),
    });
    for (path, body, code) in [
        (COMPUTE_GET, compute, "5"),
        (REGISTRY_GET, registry, "5"),
        (COMPUTE_GET, invalid, "3"),
    ] {
        let (response, trailers) = call(&app, path, &[], body).await;
        let headers = response.headers();
        // Not trailers-only: the status comes after the headers.
        assert_eq!(header(headers, "grpc-status"), None, "{path}: {headers:?}");
        let request_id = header(headers, "x-request-id").expect("x-request-id in the headers");
        assert!(!request_id.is_empty());
        let trace_id =
            header(headers, "x-server-trace-id").expect("x-server-trace-id in the headers");
        assert_eq!(trace_id.len(), 32, "{trace_id}");
        assert!(
            trace_id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{trace_id}"
        );
        let trailers = trailers.expect("trailers");
        assert_eq!(
            header(&trailers, "grpc-status"),
            Some(code),
            "{path}: {trailers:?}"
        );
        assert!(header(&trailers, "grpc-message").is_some(), "{trailers:?}");
        assert!(
            trailers.contains_key("grpc-status-details-bin"),
            "{trailers:?}"
        );
        // Repeated for clients that read the trailing metadata only.
        assert_eq!(header(&trailers, "x-request-id"), Some(request_id));
        assert_eq!(header(&trailers, "x-server-trace-id"), Some(trace_id));
    }
    app.stop().await;
}

#[tokio::test]
async fn the_trace_id_of_a_failed_call_is_the_callers() {
    let app = TestApp::demo().await;
    let body = framed(&image_service::proto::compute::GetImageRequest {
        image_id: "fd8doesnotexist000000".into(),
    });
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (response, _) = call(&app, COMPUTE_GET, &[("traceparent", traceparent)], body).await;
    assert_eq!(
        header(response.headers(), "x-server-trace-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    app.stop().await;
}

#[tokio::test]
async fn successful_calls_are_unchanged() {
    let app = TestApp::demo().await;
    let body = framed(&image_service::proto::compute::GetImageRequest {
        image_id: "fd824k6uqk9cvi1ise4i".into(),
    });
    let (response, trailers) = call(&app, COMPUTE_GET, &[], body).await;
    assert!(response.headers().contains_key("x-request-id"));
    assert!(!response.headers().contains_key("x-server-trace-id"));
    let trailers = trailers.expect("trailers");
    assert_eq!(header(&trailers, "grpc-status"), Some("0"));
    app.stop().await;
}

#[tokio::test]
async fn a_call_whose_deadline_passes_answers_deadline_exceeded() {
    let app = TestApp::demo().await;
    // Headers with a deadline and no message: nothing can answer but the deadline.
    let started = Instant::now();
    let (response, trailers) = call(&app, COMPUTE_GET, &[("grpc-timeout", "300m")], Stalled).await;
    let took = started.elapsed();
    let trailers = trailers.expect("trailers");
    assert_eq!(
        header(&trailers, "grpc-status"),
        Some("4"),
        "DEADLINE_EXCEEDED, not CANCELLED: {trailers:?}"
    );
    assert!(
        header(&trailers, "grpc-message").is_some_and(|m| m.contains("deadline")),
        "{trailers:?}"
    );
    assert!(response.headers().contains_key("x-request-id"));
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The deadline answer is counted as such.
    let text = reqwest::get(app.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"grpc_method="Get",grpc_code="DeadlineExceeded"} 1"#),
        "{text}"
    );
    app.stop().await;
}
