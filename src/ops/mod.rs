//! What operators watch: Prometheus metrics, trace export and logging set-up,
//! and the database's (or a cached replica's) health reported to the
//! health service.

pub mod backend_health;
pub mod metrics;
pub mod replica_health;
pub mod telemetry;
