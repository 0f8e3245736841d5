//! Where a cached replica stands against the database, for the metrics, the
//! health service and the writes: lock-free counters the follower and the
//! catch-ups update, read at each scrape.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::store::RepositoryError;
use crate::store::postgres::changes::{Position, SHARDS};

pub struct ReplicaStatus {
    /// The position the index holds, shard by shard.
    position: [AtomicI64; SHARDS],
    /// The last look at the database (a catch-up) succeeded.
    reachable: AtomicBool,
    /// Whether the replica follows notifications (else it polls only), and
    /// whether its notification connection is up and caught up since.
    wants_notifications: AtomicBool,
    listening: AtomicBool,
    /// Unix milliseconds of the last catch-up that succeeded.
    confirmed_at_ms: AtomicU64,
    changes_applied: AtomicU64,
    reloads: AtomicU64,
    listener_connects: AtomicU64,
    /// Why the database was last out of reach.
    last_error: Mutex<String>,
    in_step: watch::Sender<bool>,
}

/// The status at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusReport {
    /// The position's numbers added up: grows with every change taken in.
    pub sequence: i64,
    pub in_step: bool,
    pub reachable: bool,
    pub listening: bool,
    /// How old the served data may be: zero while in step with notifications
    /// flowing (a change would have been told); else the time since the last
    /// successful catch-up.
    pub data_age: Duration,
    pub changes_applied: u64,
    pub reloads: u64,
    pub listener_connects: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ReplicaStatus {
    pub(super) fn new(position: &Position) -> Self {
        Self {
            position: position.0.map(AtomicI64::new),
            reachable: AtomicBool::new(true),
            wants_notifications: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            confirmed_at_ms: AtomicU64::new(now_ms()),
            changes_applied: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            listener_connects: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            in_step: watch::Sender::new(true),
        }
    }

    /// The position the index holds.
    pub fn position(&self) -> Position {
        Position(std::array::from_fn(|shard| {
            self.position[shard].load(Ordering::Acquire)
        }))
    }

    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// Changes of "in step": the database reachable, the index caught up
    /// with it, and notifications flowing when they are followed.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.in_step.subscribe()
    }

    pub fn report(&self) -> StatusReport {
        let in_step = *self.in_step.borrow();
        let listening = self.listening.load(Ordering::Acquire);
        let data_age = if in_step && listening {
            Duration::ZERO
        } else {
            let confirmed = self.confirmed_at_ms.load(Ordering::Acquire);
            Duration::from_millis(now_ms().saturating_sub(confirmed))
        };
        StatusReport {
            sequence: self.position().total(),
            in_step,
            reachable: self.reachable(),
            listening,
            data_age,
            changes_applied: self.changes_applied.load(Ordering::Relaxed),
            reloads: self.reloads.load(Ordering::Relaxed),
            listener_connects: self.listener_connects.load(Ordering::Relaxed),
        }
    }

    /// UNAVAILABLE while the database is known to be out of reach.
    pub(super) fn check_writable(&self) -> Result<(), RepositoryError> {
        if self.reachable() {
            return Ok(());
        }
        let why = self
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        Err(RepositoryError::Unavailable(format!(
            "the database is out of reach ({why}); this replica answers reads from memory, {} s old, and takes no writes until it is back",
            self.report().data_age.as_secs()
        )))
    }

    pub(super) fn confirmed(&self, position: &Position) {
        for (slot, value) in self.position.iter().zip(position.0) {
            slot.store(value, Ordering::Release);
        }
        self.confirmed_at_ms.store(now_ms(), Ordering::Release);
        self.reachable.store(true, Ordering::Release);
        self.update_in_step();
    }

    pub(super) fn unreachable(&self, err: &RepositoryError) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = err.to_string();
        }
        self.reachable.store(false, Ordering::Release);
        self.update_in_step();
    }

    pub(super) fn applied(&self, changes: u64) {
        self.changes_applied.fetch_add(changes, Ordering::Relaxed);
    }

    pub(super) fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn follow_notifications(&self) {
        self.wants_notifications.store(true, Ordering::Release);
        self.update_in_step();
    }

    /// The notification connection is up and the index caught up after it
    /// connected (or it is lost: `false`).
    pub(super) fn set_listening(&self, listening: bool) {
        if listening {
            self.listener_connects.fetch_add(1, Ordering::Relaxed);
        }
        self.listening.store(listening, Ordering::Release);
        self.update_in_step();
    }

    fn update_in_step(&self) {
        let in_step = self.reachable()
            && (self.listening.load(Ordering::Acquire)
                || !self.wants_notifications.load(Ordering::Acquire));
        self.in_step.send_if_modified(|was| {
            let changed = *was != in_step;
            *was = in_step;
            changed
        });
    }
}
