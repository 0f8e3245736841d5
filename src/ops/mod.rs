//! What operators watch: Prometheus metrics, trace export and logging set-up,
//! and the database's health reported to the health service.

pub mod backend_health;
pub mod metrics;
pub mod telemetry;
