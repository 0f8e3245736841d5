//! Catalog reload without a restart: on SIGHUP, and with `--watch-catalog` when
//! the catalog file changes, the file is loaded and validated beside the live
//! catalog and swapped in atomically ([`SwappableRepository`]). A bad file
//! keeps the old catalog; it is logged with the same message start-up would
//! have refused it with, and counted in the metrics.
//!
//! The watcher polls the file's metadata rather than subscribing to inotify:
//! polling sees every way an editor or a ConfigMap update replaces a file
//! (write in place, rename over it, a symlink swap) with one code path, and
//! reading one inode's metadata twice a second costs nothing. A change is
//! reloaded once the metadata has stayed the same for one more poll, so a
//! file being written in several steps is read once, when complete.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::ops::metrics::Metrics;
use crate::store::catalog::{Catalog, CatalogError};
use crate::store::{MemoryRepository, SwappableRepository};

/// How often `--watch-catalog` looks at the file.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Loads the catalog file into the served repository.
pub struct CatalogReloader {
    path: PathBuf,
    repository: Arc<SwappableRepository<MemoryRepository>>,
    metrics: Arc<Metrics>,
    /// One reload at a time, so an older file can never be swapped in after a newer one.
    running: Mutex<()>,
}

impl CatalogReloader {
    pub fn new(
        path: PathBuf,
        repository: Arc<SwappableRepository<MemoryRepository>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            path,
            repository,
            metrics,
            running: Mutex::new(()),
        }
    }

    /// Loads, validates and indexes the file off the async threads, then swaps
    /// it in; on any problem the served catalog stays as it was.
    pub async fn reload(&self, trigger: &'static str) -> Result<(), CatalogError> {
        let _one_at_a_time = self.running.lock().await;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Catalog::from_file(&path).map(|catalog| {
                let summary = catalog.summary();
                (MemoryRepository::new(catalog), summary)
            })
        })
        .await
        .unwrap_or_else(|err| {
            Err(CatalogError {
                source_name: self.path.display().to_string(),
                entry: None,
                problem: format!("loading stopped unexpectedly: {err}"),
            })
        });
        match loaded {
            Ok((repository, summary)) => {
                let sizes = (repository.compute_len(), repository.container_len());
                self.repository.swap(repository);
                self.metrics.catalog_reloaded(true);
                self.metrics.set_catalog_size(sizes.0, sizes.1);
                self.metrics.set_catalog_loaded_now();
                tracing::info!(catalog = %self.path.display(), trigger, "catalog reloaded: {summary}");
                Ok(())
            }
            Err(err) => {
                self.metrics.catalog_reloaded(false);
                tracing::error!(
                    catalog = %self.path.display(),
                    trigger,
                    "catalog reload failed, still serving the previous catalog: {err}"
                );
                Err(err)
            }
        }
    }
}

/// Background tasks of a reload (the catalog's, the auth tokens'); they stop
/// when this is dropped.
#[derive(Debug, Default)]
pub struct ReloadTasks(Vec<JoinHandle<()>>);

impl From<JoinHandle<()>> for ReloadTasks {
    fn from(task: JoinHandle<()>) -> Self {
        Self(vec![task])
    }
}

impl Drop for ReloadTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Reloads on SIGHUP, and when `watch` is set, on changes of the file. The
/// SIGHUP handler is registered before this returns, so a SIGHUP that comes
/// once serving has begun never meets the default action (termination).
pub fn spawn(reloader: Arc<CatalogReloader>, watch: bool) -> std::io::Result<ReloadTasks> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut tasks = Vec::new();
    let on_signal = reloader.clone();
    tasks.push(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the catalog");
            let _ = on_signal.reload("SIGHUP").await;
        }
    }));
    if watch {
        // Taken now, before serving starts, so an edit made as soon as the
        // server answers is seen as a change however late the task runs.
        let served = fingerprint(&reloader.path);
        tasks.push(tokio::spawn(watch_file(reloader, served)));
    }
    Ok(ReloadTasks(tasks))
}

/// Registers a SIGHUP handler that only says why nothing is reloaded, so the
/// signal never terminates a server that has no catalog file to reload.
pub fn ignore_hangup(reason: &'static str) -> std::io::Result<ReloadTasks> {
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(ReloadTasks(vec![tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP received: no catalog reload, {reason}");
        }
    })]))
}

/// What tells one version of the file from another without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
    changed: (i64, i64),
}

/// The file's fingerprint, following symlinks; `None` while it is missing
/// (between an editor's delete and rename, say).
fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        device: meta.dev(),
        inode: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
        changed: (meta.ctime(), meta.ctime_nsec()),
    })
}

async fn watch_file(reloader: Arc<CatalogReloader>, mut served: Option<Fingerprint>) {
    tracing::info!(catalog = %reloader.path.display(), interval = ?WATCH_INTERVAL, "watching the catalog file for changes");
    let mut pending: Option<Option<Fingerprint>> = None;
    let mut ticks = tokio::time::interval(WATCH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = fingerprint(&reloader.path);
        if now == served {
            pending = None;
            continue;
        }
        // Changed: wait until it holds still for one interval, and for the
        // file to be there again if it was replaced.
        if pending.as_ref() != Some(&now) || now.is_none() {
            pending = Some(now);
            continue;
        }
        pending = None;
        // A failed load is not retried until the file changes again.
        served = now;
        let _ = reloader.reload("file change").await;
    }
}
