//! gRPC header names, made once: looking a header up by `&str` parses the
//! name on every call, and these lookups sit on every call's path.

use http::HeaderName;

pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The key that makes a write idempotent (`Idempotency-Key` over HTTP).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
