//! The task that keeps a cached replica in step: it listens for the
//! database's notifications and catches up on each, polls the change
//! sequence every poll interval whatever it hears (a notification lost with
//! its connection is caught up there, or when the connection is back), logs
//! the age of the data while the database is out of reach.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::CachedReplica;
use crate::store::postgres::changes::Listener;

/// How a replica follows the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowSettings {
    /// How often the change sequence is read whatever the notifications say.
    pub poll_interval: Duration,
    /// Listen for notifications (else poll only: engines without them).
    pub listen: bool,
}

impl Default for FollowSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            listen: true,
        }
    }
}

/// Reconnecting the notification connection: first after this, doubling.
const RECONNECT_FIRST: Duration = Duration::from_millis(200);
const RECONNECT_MOST: Duration = Duration::from_secs(5);
/// While out of reach, the age of the data is logged this often.
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(10);

/// The running task; stops it when dropped.
pub struct Follower {
    task: JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Follower {
    pub fn spawn(replica: Arc<CachedReplica>, settings: FollowSettings) -> Self {
        if settings.listen {
            replica.status.follow_notifications();
        }
        Self {
            task: tokio::spawn(follow(replica, settings)),
        }
    }
}

/// What woke the follower.
enum Woke {
    Notified,
    ListenerLost,
    Poll,
    Reconnect,
}

async fn follow(replica: Arc<CachedReplica>, settings: FollowSettings) {
    let mut listener: Option<Listener> = None;
    let mut reconnect_at = Instant::now();
    let mut reconnect_after = RECONNECT_FIRST;
    let mut poll = tokio::time::interval(settings.poll_interval);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut outage_logged: Option<Instant> = None;
    loop {
        if settings.listen && listener.is_none() && Instant::now() >= reconnect_at {
            let was_reachable = replica.status.reachable();
            match connect(&replica).await {
                Ok(connected) => {
                    listener = Some(connected);
                    reconnect_after = RECONNECT_FIRST;
                    // The reconnect's catch-up may be the first to reach the
                    // database after an outage: it says so, not only a poll.
                    log_reachability(&replica, was_reachable, &Ok(()), &mut outage_logged);
                }
                Err(err) => {
                    tracing::debug!(error = %err, retry_in = ?reconnect_after, "cached replica: no notification connection");
                    reconnect_at = Instant::now() + reconnect_after;
                    reconnect_after = (reconnect_after * 2).min(RECONNECT_MOST);
                }
            }
        }
        let woke = tokio::select! {
            notified = async {
                match listener.as_mut() {
                    Some(listener) => listener.changed().await,
                    None => std::future::pending().await,
                }
            } => if notified { Woke::Notified } else { Woke::ListenerLost },
            _ = poll.tick() => Woke::Poll,
            () = tokio::time::sleep_until(reconnect_at), if settings.listen && listener.is_none() => Woke::Reconnect,
        };
        match woke {
            Woke::Notified | Woke::Poll => {
                let was_reachable = replica.status.reachable();
                let caught_up = replica.catch_up().await;
                log_reachability(&replica, was_reachable, &caught_up, &mut outage_logged);
            }
            Woke::ListenerLost => {
                tracing::warn!(
                    "cached replica: the notification connection is lost; reconnecting (changes are polled meanwhile)"
                );
                listener = None;
                replica.status.set_listening(false);
                reconnect_at = Instant::now() + reconnect_after;
            }
            Woke::Reconnect => {}
        }
    }
}

/// Connects and listens, then catches up on everything since the number
/// held: whatever was missed while not listening.
async fn connect(replica: &CachedReplica) -> Result<Listener, crate::store::RepositoryError> {
    let listener = Listener::connect(replica.db()).await?;
    replica.catch_up().await?;
    replica.status.set_listening(true);
    tracing::info!(
        changes = replica.status.position().total(),
        "cached replica: listening for changes, caught up"
    );
    Ok(listener)
}

fn log_reachability(
    replica: &CachedReplica,
    was_reachable: bool,
    caught_up: &Result<(), crate::store::RepositoryError>,
    outage_logged: &mut Option<Instant>,
) {
    let age = replica.status.report().data_age;
    match caught_up {
        Ok(()) if !was_reachable => {
            *outage_logged = None;
            tracing::info!(
                changes = replica.status.position().total(),
                "cached replica: the database is back and this replica has caught up"
            );
        }
        Ok(()) => {}
        Err(err) => {
            let due = outage_logged.is_none_or(|at| at.elapsed() >= OUTAGE_LOG_EVERY);
            if due {
                *outage_logged = Some(Instant::now());
                tracing::warn!(
                    error = %err,
                    data_age_seconds = age.as_secs(),
                    "cached replica: the database is out of reach; serving reads from memory, writes answer UNAVAILABLE"
                );
            }
        }
    }
}
