//! image-service: the Yandex Cloud Compute and Container Registry `ImageService`,
//! wire-compatible with the official API, served from a catalog file or PostgreSQL.
//!
//! The folders follow a call, each depending only on those listed after it:
//!
//! - `app`: the composition root (build, run, shutdown) and catalog reload.
//! - `cli`: the command line (clap types) and the one-shot commands.
//! - `rest`, `grpc`: the two faces; adapters between the wire and `service`.
//! - `ops`: metrics, telemetry export, backend health.
//! - `service`: one protocol-free function per RPC, the only implementation.
//! - `store`: the backends behind one trait per API (memory, PostgreSQL).
//! - `transport`: request context, deadlines, limits, idle connections, TLS,
//!   authentication, listeners; it knows no API.
//! - `domain`: validated request values and the image rules, no I/O.
//! - `error`, `proto`: the error vocabulary and the generated code.
//!
//! `tests/it/architecture.rs` checks these directions.

pub mod app;
pub mod cli;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod ops;
pub mod proto;
pub mod rest;
pub mod service;
pub mod store;
pub mod transport;
