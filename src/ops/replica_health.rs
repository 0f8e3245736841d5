//! A cached replica's standing, reported to the health service under its own
//! name, [`IN_STEP_SERVICE`]: SERVING while the replica is in step with the
//! database, NOT_SERVING while the database is out of reach, the
//! notification connection is down, or the replica has not caught up since.
//!
//! The image services (and so `/readyz`) stay SERVING meanwhile: reads are
//! answered from memory. Writes answer UNAVAILABLE until the database is back.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::store::replica::ReplicaStatus;

/// The health service name of "in step with the database".
pub const IN_STEP_SERVICE: &str = "image-service.replica.InStep";

/// The running reporter; stops when dropped.
pub struct ReplicaHealth {
    task: JoinHandle<()>,
}

impl Drop for ReplicaHealth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReplicaHealth {
    pub fn spawn(status: Arc<ReplicaStatus>, health: HealthReporter) -> Self {
        let mut in_step = status.subscribe();
        let task = tokio::spawn(async move {
            loop {
                let now = *in_step.borrow_and_update();
                let serving = if now {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                health.set_service_status(IN_STEP_SERVICE, serving).await;
                if in_step.changed().await.is_err() {
                    return;
                }
            }
        });
        Self { task }
    }
}
