//! A cached replica (`serve --database-url … --cache`): PostgreSQL is the
//! truth, memory answers the reads.
//!
//! At start the whole catalog is read from the database, in one snapshot,
//! into the same in-memory index the embedded backend serves from
//! ([`WrittenCatalog`] over a [`MemoryRepository`]), tagged with the change
//! number of that snapshot. From then on the index follows the change
//! sequence (`postgres::changes`): after each of this replica's own commits
//! (so a write is visible here once acknowledged), when the database
//! notifies a change, and every poll interval (which also repairs anything a
//! lost notification connection missed). Each catch-up reads, in one
//! snapshot, everything changed after the number the index holds.
//!
//! Writes go to the database in one transaction, as without the cache;
//! operations are read from the database. An operation read as done waits
//! for the index to hold the change number it was read at: whoever saw an
//! operation finish on this replica then reads its result here.

mod follow;
mod status;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::Mutex;

pub use follow::{FollowSettings, Follower};
pub use status::{ReplicaStatus, StatusReport};

use super::postgres::changes::{self, Current, Position, Since};
use super::postgres::{Database, PostgresRepository};
use super::write::{BindingRepository, OperationPage, WriteRepository, WriteTransaction};
use super::{Delegate, MemoryRepository, RepositoryError, SwappableRepository, WrittenCatalog};
use crate::domain::operation::{IdempotencyKey, StoredOperation};
use crate::proto::Timestamp;
use crate::proto::yandex::cloud::access::AccessBinding;
use crate::proto::{compute, container_registry};

type Index = WrittenCatalog<MemoryRepository>;

/// The in-memory index of a database, kept in step with it.
pub struct CachedReplica {
    index: SwappableRepository<Index>,
    database: PostgresRepository,
    /// The position the index holds; catch-ups take turns on it.
    cursor: Mutex<Position>,
    /// Catch-ups begun, so a caller can tell one began after it asked.
    rounds: AtomicU64,
    status: Arc<ReplicaStatus>,
}

impl CachedReplica {
    /// Reads the whole catalog from `database` into memory.
    pub async fn load(database: PostgresRepository) -> Result<Arc<Self>, RepositoryError> {
        let (index, seq) = load_index(database.database()).await?;
        let status = Arc::new(ReplicaStatus::new(&seq));
        Ok(Arc::new(Self {
            index: SwappableRepository::new(index),
            database,
            cursor: Mutex::new(seq),
            rounds: AtomicU64::new(0),
            status,
        }))
    }

    pub fn status(&self) -> &Arc<ReplicaStatus> {
        &self.status
    }

    fn db(&self) -> &Database {
        self.database.database()
    }

    /// Brings the index up to the database's latest change: at least every
    /// change committed before this call began. Concurrent callers share a
    /// round: one that began after a caller asked serves it too.
    pub async fn catch_up(&self) -> Result<(), RepositoryError> {
        self.catch_up_knowing(false).await
    }

    /// `changed`: the caller knows the database moved on (it just
    /// committed), so the cheap look at the head first would be wasted.
    async fn catch_up_knowing(&self, changed: bool) -> Result<(), RepositoryError> {
        let ticket = self.rounds.load(Ordering::Acquire);
        let mut cursor = self.cursor.lock().await;
        if self.rounds.load(Ordering::Acquire) > ticket && self.status.reachable() {
            return Ok(());
        }
        self.rounds.fetch_add(1, Ordering::AcqRel);
        let result = self.catch_up_locked(&mut cursor, changed).await;
        match &result {
            Ok(()) => self.status.confirmed(&cursor),
            // Only the database's own failure says it is out of reach: a
            // caller's deadline passing mid catch-up does not.
            Err(err @ RepositoryError::Unavailable(_)) => self.status.unreachable(err),
            Err(_) => {}
        }
        result
    }

    async fn catch_up_locked(
        &self,
        cursor: &mut Position,
        changed: bool,
    ) -> Result<(), RepositoryError> {
        if !changed && changes::head(self.db()).await?.seq == *cursor {
            return Ok(());
        }
        match changes::since(self.db(), cursor).await? {
            Since::Changes { seq, current } => {
                let count = current.len() as u64;
                self.index.current().apply_current(current).await?;
                *cursor = seq;
                self.status.applied(count);
            }
            Since::Reload { why } => {
                tracing::warn!(reason = %why, "cached replica: loading the whole catalog again");
                let (index, seq) = load_index(self.db()).await?;
                self.index.swap(index);
                *cursor = seq;
                self.status.reloaded();
            }
        }
        Ok(())
    }

    /// Catches up unless the index already holds `position`.
    async fn hold(&self, position: &Position) {
        if self.status.position().covers(position) {
            return;
        }
        if let Err(err) = self.catch_up().await {
            tracing::debug!(error = %err, "cached replica: catching up failed");
        }
    }
}

/// An index built from a snapshot of the database, and its change number.
async fn load_index(database: &Database) -> Result<(Index, Position), RepositoryError> {
    let started = Instant::now();
    let snapshot = changes::snapshot(database).await?;
    let (compute, container) = (
        snapshot.catalog.compute_images.len(),
        snapshot.catalog.container_images.len(),
    );
    let index = WrittenCatalog::in_memory(Arc::new(MemoryRepository::new(snapshot.catalog)));
    let bindings = snapshot
        .bindings
        .into_iter()
        .map(|(image_id, encoded)| Current::Bindings {
            image_id,
            encoded: Some(encoded),
        })
        .collect();
    index.apply_current(bindings).await?;
    tracing::info!(
        changes = snapshot.seq.total(),
        compute_images = compute,
        container_images = container,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "cached replica: catalog loaded from the database"
    );
    Ok((index, snapshot.seq))
}

impl Delegate for CachedReplica {
    type Backend = Index;

    fn backend(&self) -> impl Deref<Target = Index> + Send {
        self.index.backend()
    }
}

#[async_trait]
impl BindingRepository for CachedReplica {
    async fn image_bindings(&self, image_id: &str) -> Result<Vec<AccessBinding>, RepositoryError> {
        self.index.current().image_bindings(image_id).await
    }

    async fn folder_bindings(
        &self,
        folder: &str,
    ) -> Result<Vec<(String, Vec<AccessBinding>)>, RepositoryError> {
        self.index.current().folder_bindings(folder).await
    }
}

#[async_trait]
impl WriteRepository for CachedReplica {
    async fn begin(&self) -> Result<Box<dyn WriteTransaction + '_>, RepositoryError> {
        // Fail fast while the database is known to be out of reach.
        self.status.check_writable()?;
        let inner = self.database.begin().await?;
        Ok(Box::new(ReplicaTransaction {
            inner,
            replica: self,
            wrote: false,
            saw_done: false,
        }))
    }

    async fn operation(&self, id: &str) -> Result<Option<StoredOperation>, RepositoryError> {
        let (found, seq) = self.database.operation_at_change(id).await?;
        if found.as_ref().is_some_and(StoredOperation::done) {
            self.hold(&seq).await;
        }
        Ok(found)
    }

    async fn image_operations(
        &self,
        image_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<OperationPage, RepositoryError> {
        self.database.image_operations(image_id, after, limit).await
    }

    async fn pending_operations(&self) -> Result<Vec<String>, RepositoryError> {
        self.database.pending_operations().await
    }

    async fn expire_keys(&self, before: &Timestamp) -> Result<u64, RepositoryError> {
        self.database.expire_keys(before).await
    }
}

/// A database transaction whose commit, when it changed anything, is
/// followed by a catch-up: the writer reads its write here at once. So is
/// one that read a done operation: another writer's (the timer's, say) may
/// have committed it and not yet caught up, and whoever gets it back must
/// read its result here.
struct ReplicaTransaction<'a> {
    inner: Box<dyn WriteTransaction + 'a>,
    replica: &'a CachedReplica,
    wrote: bool,
    saw_done: bool,
}

impl ReplicaTransaction<'_> {
    fn seen(&mut self, found: &Option<StoredOperation>) {
        self.saw_done |= found.as_ref().is_some_and(StoredOperation::done);
    }
}

#[async_trait]
impl WriteTransaction for ReplicaTransaction<'_> {
    async fn lock(&mut self, scope: &str) -> Result<(), RepositoryError> {
        self.inner.lock(scope).await
    }

    async fn compute_image(&mut self, id: &str) -> Result<Option<compute::Image>, RepositoryError> {
        self.inner.compute_image(id).await
    }

    async fn container_image(
        &mut self,
        id: &str,
    ) -> Result<Option<container_registry::Image>, RepositoryError> {
        self.inner.container_image(id).await
    }

    async fn compute_image_named(
        &mut self,
        folder: &str,
        name: &str,
        except: &str,
    ) -> Result<Option<String>, RepositoryError> {
        self.inner.compute_image_named(folder, name, except).await
    }

    async fn put_compute_image(&mut self, image: &compute::Image) -> Result<(), RepositoryError> {
        self.wrote = true;
        self.inner.put_compute_image(image).await
    }

    async fn delete_compute_image(&mut self, id: &str) -> Result<(), RepositoryError> {
        self.wrote = true;
        self.inner.delete_compute_image(id).await
    }

    async fn delete_container_image(&mut self, id: &str) -> Result<(), RepositoryError> {
        self.wrote = true;
        self.inner.delete_container_image(id).await
    }

    async fn operation_of_key(
        &mut self,
        key: &IdempotencyKey,
        since: &Timestamp,
    ) -> Result<Option<StoredOperation>, RepositoryError> {
        let found = self.inner.operation_of_key(key, since).await?;
        self.seen(&found);
        Ok(found)
    }

    async fn operation(&mut self, id: &str) -> Result<Option<StoredOperation>, RepositoryError> {
        let found = self.inner.operation(id).await?;
        self.seen(&found);
        Ok(found)
    }

    async fn put_operation(
        &mut self,
        operation: &StoredOperation,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), RepositoryError> {
        self.inner.put_operation(operation, key).await
    }

    async fn access_bindings(
        &mut self,
        image_id: &str,
    ) -> Result<Vec<AccessBinding>, RepositoryError> {
        self.inner.access_bindings(image_id).await
    }

    async fn put_access_bindings(
        &mut self,
        image_id: &str,
        bindings: &[AccessBinding],
    ) -> Result<(), RepositoryError> {
        self.wrote = true;
        self.inner.put_access_bindings(image_id, bindings).await
    }

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        let Self {
            inner,
            replica,
            wrote,
            saw_done,
        } = *self;
        inner.commit().await?;
        if wrote || saw_done {
            // Committed either way; only reading it back here may be late.
            if let Err(err) = replica.catch_up_knowing(wrote).await {
                tracing::warn!(error = %err, "cached replica: a write committed but could not be read back yet");
            }
        }
        Ok(())
    }
}
