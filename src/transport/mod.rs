//! Below both faces and knowing no API: what every call passes through on its
//! way in and out (request ids and spans, deadlines, the in-flight limit,
//! oversize requests, idle connections, error headers), authentication, TLS
//! and the HTTP listener.

pub mod auth;
pub mod deadline;
pub mod error_headers;
pub mod http_server;
pub mod idle;
pub mod limits;
pub mod metadata;
pub mod request_context;
pub mod status;
pub mod tls;
pub mod trace_context;
