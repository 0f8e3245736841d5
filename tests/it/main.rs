//! The integration tests, one binary: each module starts the real server on
//! port 0 (or runs the binary) and calls it as a client would. `common`,
//! `list_support` and `pg_support` are what they share.

mod common;
mod list_support;
mod pg_support;

mod access_bindings;
mod architecture;
mod auth;
mod auth_binary;
mod behind_proxy;
mod binary;
mod catalog_file;
mod crash;
mod grpc_get;
mod grpc_list_compute;
mod grpc_list_encoded;
mod grpc_list_registry;
mod grpc_web;
mod grpc_wire;
mod health_reflection;
mod limits;
mod list_timing;
mod metrics;
mod openapi;
mod postgres_compare;
mod postgres_metrics;
mod postgres_ops;
mod postgres_tls;
mod real_clients;
mod real_clients_list;
mod real_clients_rest;
mod real_clients_writes;
mod reload;
mod replicas;
mod rest;
mod roles;
mod tls;
mod trace_export;
mod writes;
