//! image-service: the Yandex Cloud Compute and Container Registry `ImageService`,
//! wire-compatible with the official API, served from a local catalog.
//!
//! Layout: `proto` (generated code), `domain` (validated request values),
//! `catalog` (the catalog file), `repository` (backends behind a trait), `grpc`
//! (the tonic face), `startup` (wiring), `config` and `telemetry`.

pub mod auth;
pub mod backend_health;
pub mod catalog;
pub mod catalog_reload;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod idle;
pub mod limits;
pub mod metrics;
pub mod proto;
pub mod repository;
pub mod rest;
pub mod startup;
pub mod telemetry;
pub mod tls;
