//! Keeps gRPC health (and so `/readyz`) in step with the database: a task pings
//! it every [`PING_INTERVAL`] and marks every served service NOT_SERVING while
//! the pings fail, SERVING again once one succeeds. The whole server (the
//! empty service name) follows too.

use std::time::Duration;

use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::store::postgres::Database;

pub const PING_INTERVAL: Duration = Duration::from_secs(1);

/// The running watcher; stops it when dropped.
pub struct BackendHealth {
    task: JoinHandle<()>,
}

impl Drop for BackendHealth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BackendHealth {
    /// Starts watching `database`, reporting on `services`.
    pub fn spawn(
        database: Database,
        health: HealthReporter,
        services: &'static [&'static str],
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut serving = true;
            let mut ticks = tokio::time::interval(PING_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let result = database.ping().await;
                let now_serving = result.is_ok();
                if now_serving == serving {
                    continue;
                }
                serving = now_serving;
                match result {
                    Ok(()) => tracing::info!("the database answers again: serving"),
                    Err(err) => tracing::error!(error = %err, "the database fails: not serving"),
                }
                let status = if serving {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                for service in services.iter().chain(&[""]) {
                    health.set_service_status(*service, status).await;
                }
            }
        });
        Self { task }
    }
}
