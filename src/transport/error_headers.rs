//! Failed gRPC calls sent as headers, then trailers, instead of trailers-only.
//!
//! tonic answers an error as a trailers-only response: one HEADERS frame that
//! holds the status and every header. Clients that build their error from the
//! response headers received before the status (the official Node.js SDK's
//! `ApiError`, with `requestId` and `serverTraceId`) then find none. This layer
//! splits such a response: the headers (`x-request-id`, `x-server-trace-id`)
//! go first, the status follows in the trailers, with the two ids repeated
//! there for clients that read only the trailing metadata.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use tower::util::MapResponseLayer;

use super::metadata::{GRPC_MESSAGE, GRPC_STATUS};
use super::request_context::{REQUEST_ID_HEADER, SERVER_TRACE_ID_HEADER};

const GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");

/// The trailers of a trailers-only response: moved out of its headers.
const MOVED: [HeaderName; 3] = [GRPC_STATUS, GRPC_MESSAGE, GRPC_STATUS_DETAILS];
/// Kept in the headers and repeated in the trailers.
const REPEATED: [&str; 2] = [REQUEST_ID_HEADER, SERVER_TRACE_ID_HEADER];

/// The layer: a response map, so it adds no future or service of its own.
pub type HeadersBeforeErrorLayer = MapResponseLayer<fn(GrpcResponse) -> GrpcResponse>;

type GrpcResponse = Response<tonic::body::Body>;

pub fn layer() -> HeadersBeforeErrorLayer {
    MapResponseLayer::new(split_trailers_only)
}

/// A trailers-only response (its headers hold `grpc-status`) as headers and
/// trailers; any other response as it is.
fn split_trailers_only(response: GrpcResponse) -> GrpcResponse {
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
    // A stream of one trailers frame: unlike an empty body with trailers, its
    // size is not known to be 0, so HTTP/1.1 (gRPC-Web) sends the trailers too.
    let frame = Ok::<_, std::convert::Infallible>(Frame::<Bytes>::trailers(trailers));
    let body = StreamBody::new(tokio_stream::once(frame));
    Response::from_parts(parts, tonic::body::Body::new(body))
}
