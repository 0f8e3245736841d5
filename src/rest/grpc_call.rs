//! One unary gRPC call made in-process against the server's own gRPC routes, so
//! a REST call runs through exactly the code a gRPC call does; and the direct
//! form of the two Gets, which leaves out only the framing and routing.

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use tonic::service::Routes;
use tower::ServiceExt;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use prost::Message;

use crate::domain::access::Caller;
use crate::error::ApiError;
use crate::ops::metrics::Metrics;
use crate::service::{ImageApi, Images};
use crate::transport::auth::AuthLayer;
use crate::transport::metadata::IDEMPOTENCY_KEY;
use crate::transport::metadata::{GRPC_MESSAGE, GRPC_STATUS, GRPC_TIMEOUT};
use crate::transport::request_context::{RequestId, record_grpc_method};
use crate::transport::status::to_status;

/// Request headers a REST caller may send that mean the same to the gRPC call.
/// Made once: looking a header up by `&str` would parse each name per call.
const FORWARDED_HEADERS: [HeaderName; 6] = [
    header::AUTHORIZATION,
    HeaderName::from_static(IDEMPOTENCY_KEY),
    HeaderName::from_static("x-client-request-id"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    GRPC_TIMEOUT,
];

/// What a unary call ended with.
pub struct Reply {
    pub code: i32,
    /// The response message (without the gRPC frame) when `code` is 0.
    pub message: Bytes,
    /// The `grpc-message` text when the call failed.
    pub error_message: String,
    /// The encoded google.rpc.Status from `grpc-status-details-bin`, if any.
    pub status_details: Option<Bytes>,
}

/// Runs `call` named and counted as the gRPC method `grpc_path`.
pub async fn metered(
    grpc_path: &str,
    metrics: &Metrics,
    call: impl Future<Output = Reply>,
) -> Reply {
    let started = Instant::now();
    record_grpc_method(grpc_path);
    metrics.call_started(grpc_path);
    let reply = call.await;
    metrics.call_finished(grpc_path, reply.code, started.elapsed());
    reply
}

/// An API's Get as the gateway calls it: the encoded request in, the stored
/// image out, through the service function the gRPC Get calls.
#[derive(Clone)]
pub struct DirectGet {
    /// The gRPC path of the Get.
    path: &'static str,
    call: DirectCall,
}

type DirectCall = Arc<
    dyn Fn(
            Option<Arc<Caller>>,
            &[u8],
        ) -> Pin<Box<dyn Future<Output = Result<Bytes, ApiError>> + Send>>
        + Send
        + Sync,
>;

impl DirectGet {
    /// The Get of `service` (at gRPC `path`), taking that API's encoded `GetImageRequest`.
    pub fn of<A>(path: &'static str, service: Arc<Images<A>>) -> Self
    where
        A: ImageApi,
        A::GetRequest: Message + Default + 'static,
    {
        let call: DirectCall =
            Arc::new(
                move |caller, payload| match A::GetRequest::decode(payload) {
                    Ok(request) => {
                        let service = service.clone();
                        Box::pin(async move { service.get(caller.as_deref(), request).await })
                    }
                    Err(err) => Box::pin(std::future::ready(Err(ApiError::invalid_argument(
                        "body",
                        format!("not a GetImageRequest: {err}"),
                    )))),
                },
            );
        Self { path, call }
    }
}

/// The image Gets the gateway calls directly (the hot path), rather than
/// through the tonic routes, with the authentication step of those routes.
pub struct DirectGets {
    pub auth: Option<AuthLayer>,
    pub gets: Vec<DirectGet>,
}

impl DirectGets {
    pub fn find(&self, grpc_path: &str) -> Option<&DirectGet> {
        self.gets.iter().find(|get| get.path == grpc_path)
    }

    /// Calls `get` as the gRPC face would: the same authentication, the same
    /// Get; only the framing and routing are left out (meter it with [`metered`]).
    pub async fn call(
        &self,
        get: &DirectGet,
        payload: &[u8],
        incoming: &HeaderMap,
        request_id: &RequestId,
    ) -> Reply {
        let caller = match &self.auth {
            None => Ok(None),
            Some(auth) => auth
                .authenticate(get.path, incoming, Some(request_id))
                .map(Some),
        };
        let result = match caller {
            Ok(caller) => (get.call)(caller, payload)
                .await
                .map_err(|err| to_status(err, Some(request_id))),
            Err(status) => Err(status),
        };
        match result {
            Ok(message) => Reply {
                code: 0,
                message,
                error_message: String::new(),
                status_details: None,
            },
            Err(status) => Reply {
                code: status.code() as i32,
                message: Bytes::new(),
                error_message: status.message().to_owned(),
                status_details: (!status.details().is_empty())
                    .then(|| Bytes::copy_from_slice(status.details())),
            },
        }
    }
}

/// Sends `payload` (an encoded request message) to the gRPC method at `uri` on
/// `routes` (meter it with [`metered`]).
pub async fn unary(
    routes: &Routes,
    uri: Uri,
    payload: &[u8],
    incoming: &HeaderMap,
    request_id: &RequestId,
) -> Reply {
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(0);
    frame.put_u32(payload.len() as u32);
    frame.put_slice(payload);

    let mut request = Request::new(tonic::body::Body::new(Full::new(frame.freeze())));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    for name in FORWARDED_HEADERS {
        if let Some(value) = incoming.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    request.extensions_mut().insert(request_id.clone());

    let response = match routes.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, mut body) = response.into_parts();
    // Frame by frame rather than collect(): a unary answer is one data frame,
    // kept as it is, then the trailers.
    let mut data = Bytes::new();
    let mut more: Option<BytesMut> = None;
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(status) => return failed(status.code() as i32, status.message()),
        };
        match frame.into_data() {
            Ok(chunk) if data.is_empty() && more.is_none() => data = chunk,
            Ok(chunk) => more
                .get_or_insert_with(|| BytesMut::from(std::mem::take(&mut data)))
                .extend_from_slice(&chunk),
            Err(frame) => {
                if let Ok(received) = frame.into_trailers() {
                    if trailers.is_empty() {
                        trailers = received;
                    } else {
                        trailers.extend(received);
                    }
                }
            }
        }
    }
    // A failed unary call usually comes back trailers-only: the status is in the headers.
    let status_headers = if parts.headers.contains_key(GRPC_STATUS) {
        &parts.headers
    } else {
        &trailers
    };
    let code = status_headers
        .get(GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if code != 0 {
        let message = status_headers
            .get(GRPC_MESSAGE)
            .and_then(|v| v.to_str().ok())
            .map(percent_decode_lossy)
            .unwrap_or_default();
        let details = status_headers
            .get("grpc-status-details-bin")
            .and_then(|v| decode_base64(v.as_bytes()));
        return Reply {
            code,
            message: Bytes::new(),
            error_message: message,
            status_details: details,
        };
    }
    let body = more.map_or(data, BytesMut::freeze);
    match unframe(body) {
        Some(message) => Reply {
            code: 0,
            message,
            error_message: String::new(),
            status_details: None,
        },
        None => failed(13, "malformed gRPC response frame"),
    }
}

fn failed(code: i32, message: &str) -> Reply {
    Reply {
        code,
        message: Bytes::new(),
        error_message: message.to_owned(),
        status_details: None,
    }
}

/// The message of a single uncompressed gRPC frame.
fn unframe(mut body: Bytes) -> Option<Bytes> {
    if body.len() < 5 || body[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let message = body.split_off(5);
    (message.len() == len).then_some(message)
}

fn decode_base64(value: &[u8]) -> Option<Bytes> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD_NO_PAD
        .decode(value)
        .or_else(|_| STANDARD.decode(value))
        .ok()
        .map(Bytes::from)
}

/// `grpc-message` is percent-encoded; a broken escape is kept as written.
fn percent_decode_lossy(text: &str) -> String {
    super::template::percent_decode(text).unwrap_or_else(|_| text.to_owned())
}
