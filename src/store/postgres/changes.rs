//! The change sequence: how cached replicas learn what other writers did.
//!
//! The sequence is [`SHARDS`] counters (rows of `image_change_sequence`); a
//! thing changed (an image, an image's bindings) belongs to the shard of its
//! id. Every write transaction that changes something takes the next number
//! of each shard it touched (the row is updated in the transaction: its row
//! lock makes writers of a shard take numbers in commit order, so a number is
//! visible only once every smaller one of its shard is) and records in
//! `image_changes` what it touched, by kind and id. It then notifies the
//! schema's channel (`pg_notify`, delivered at commit) where the engine has
//! one. Writers of different shards don't wait for each other, so their
//! commits still share the log's flushes (one counter would make every write
//! of every replica wait for the one before it to reach the disk).
//!
//! A replica holds a [`Position`], one number per shard, and reads, in one
//! snapshot, the counters and everything changed after its position: nothing
//! is missed, whatever happened to its notifications. Changes older than an
//! hour are pruned; each counter remembers up to where (`pruned_through`), so
//! a replica further behind knows it must load everything again instead of
//! guessing.
//!
//! Portable SQL but for the notification (PostgreSQL's), which is probed at
//! start: without it replicas poll the sequence.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use tokio_postgres::{AsyncMessage, Client};
use tokio_stream::StreamExt;

use super::pool::{Database, query_error, read_only_snapshot};
use crate::proto::container_registry;
use crate::store::RepositoryError;
use crate::store::catalog::{Catalog, EncodedImages, ImageList};

/// What a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    ComputeImage,
    ContainerImage,
    /// The access bindings of a compute image.
    Bindings,
    /// Anything at all (an import): the whole catalog must be read again.
    Catalog,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::ComputeImage => "compute",
            Self::ContainerImage => "container",
            Self::Bindings => "bindings",
            Self::Catalog => "catalog",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::ComputeImage,
            Self::ContainerImage,
            Self::Bindings,
            Self::Catalog,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// How many counters the change sequence has.
pub const SHARDS: usize = 16;

/// The shard of a thing's id: FNV-1a, fixed forever (every writer of every
/// version must agree). The whole catalog is shard 0.
fn shard_of(kind: ChangeKind, id: &str) -> i32 {
    if kind == ChangeKind::Catalog {
        return 0;
    }
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % SHARDS as u64) as i32
}

/// Where a replica stands: the last change number it holds of each shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(pub [i64; SHARDS]);

impl Position {
    /// Whether it holds every change `other` does.
    pub fn covers(&self, other: &Position) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(mine, theirs)| mine >= theirs)
    }

    /// All numbers added up: grows with every change (for the metrics).
    pub fn total(&self) -> i64 {
        self.0.iter().sum()
    }

    fn from_rows(rows: &[tokio_postgres::Row], column: usize) -> Result<Self, RepositoryError> {
        let mut position = Self::default();
        for row in rows {
            let shard: i32 = row.try_get(0).map_err(query_error)?;
            let value: i64 = row.try_get(column).map_err(query_error)?;
            let slot = usize::try_from(shard)
                .ok()
                .and_then(|shard| position.0.get_mut(shard))
                .ok_or_else(|| {
                    RepositoryError::Internal(format!("image_change_sequence has shard {shard}"))
                })?;
            *slot = value;
        }
        Ok(position)
    }
}

/// What one transaction changed, recorded when it commits.
#[derive(Debug, Default)]
pub struct ChangeSet(BTreeSet<(i32, ChangeKind, String)>);

impl ChangeSet {
    pub fn add(&mut self, kind: ChangeKind, id: &str) {
        self.0.insert((shard_of(kind, id), kind, id.to_owned()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes the next number of each shard these changes touch and records
    /// them; run last in the transaction (the counters stay locked until it
    /// ends; taken in shard order, so writers can't deadlock on them),
    /// `notify`: then tells listening replicas (at commit).
    pub async fn record(
        &self,
        client: &impl GenericClient,
        notify: bool,
    ) -> Result<(), RepositoryError> {
        if self.0.is_empty() {
            return Ok(());
        }
        // One statement per shard (a thing's counter, its records and, where
        // the engine has them, the notification): one round trip.
        let sql = if notify {
            RECORD_AND_NOTIFY_SQL
        } else {
            RECORD_SQL
        };
        let statement = client.prepare_cached(sql).await.map_err(query_error)?;
        let now = now_ms();
        let mut rest = self.0.iter().peekable();
        while let Some(&&(shard, _, _)) = rest.peek() {
            let mut kinds = Vec::new();
            let mut ids = Vec::new();
            while let Some((_, kind, id)) = rest.next_if(|(s, _, _)| *s == shard) {
                kinds.push(kind.as_str());
                ids.push(id.as_str());
            }
            client
                .execute(&statement, &[&shard, &kinds, &ids, &now])
                .await
                .map_err(query_error)?;
        }
        Ok(())
    }
}

// The statements are put together from these parts, so the channel the
// writers notify and the one the replicas listen on can't drift apart.

/// The schema's channel: per schema, so deployments sharing a database don't
/// wake each other; hashed, as channel names are short.
macro_rules! channel_sql {
    () => {
        "'image_changes_' || md5(coalesce(current_schema(), ''))"
    };
}

/// Takes shard $1's next number, as `next`.
macro_rules! next_number_sql {
    () => {
        "WITH next AS (UPDATE image_change_sequence SET seq = seq + 1 WHERE shard = $1 RETURNING seq)"
    };
}

/// Records the kinds $2 and ids $3 under `next`, changed at $4.
macro_rules! insert_changes_sql {
    () => {
        "INSERT INTO image_changes (shard, seq, kind, id, changed_at_ms) \
         SELECT $1, next.seq, c.kind, c.id, $4 FROM next, UNNEST($2::TEXT[], $3::TEXT[]) AS c (kind, id)"
    };
}

const CHANNEL_SQL: &str = channel_sql!();
const NOTIFY_SQL: &str = concat!("SELECT pg_notify(", channel_sql!(), ", '')");

/// Takes shard $1's next number and records the kinds $2 and ids $3 under it.
const RECORD_SQL: &str = concat!(next_number_sql!(), " ", insert_changes_sql!());

/// The same, and the notification (a data-changing `WITH` part runs once
/// whatever the main query reads).
const RECORD_AND_NOTIFY_SQL: &str = concat!(
    next_number_sql!(),
    ", recorded AS (",
    insert_changes_sql!(),
    " RETURNING 1) SELECT pg_notify(",
    channel_sql!(),
    ", '')"
);

/// Whether the engine has `pg_notify` (PostgreSQL does; some engines that
/// speak its protocol don't): writes notify only if so.
pub async fn notifications_supported(database: &Database) -> Result<bool, RepositoryError> {
    let client = database.connection().await?;
    match client.execute(NOTIFY_SQL, &[]).await {
        Ok(_) => Ok(true),
        Err(err) if err.as_db_error().is_some() => {
            tracing::info!(error = %err, "the database has no notifications: cached replicas poll for changes");
            Ok(false)
        }
        Err(err) => Err(query_error(err)),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const HEAD_SQL: &str = "SELECT shard, seq, pruned_through FROM image_change_sequence";

/// Where the sequence stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The number of the last committed change of each shard.
    pub seq: Position,
    /// Changes up to these numbers are no longer recorded.
    pub pruned_through: Position,
}

impl Head {
    fn from_rows(rows: &[tokio_postgres::Row]) -> Result<Self, RepositoryError> {
        if rows.len() != SHARDS {
            return Err(RepositoryError::Internal(format!(
                "image_change_sequence has {} rows, not {SHARDS}",
                rows.len()
            )));
        }
        Ok(Self {
            seq: Position::from_rows(rows, 1)?,
            pruned_through: Position::from_rows(rows, 2)?,
        })
    }
}

pub async fn head(database: &Database) -> Result<Head, RepositoryError> {
    Head::from_rows(&database.query(HEAD_SQL, &[]).await?)
}

/// The position of the database now (for an operation read beside it).
pub(super) fn position_of(rows: &[tokio_postgres::Row]) -> Result<Position, RepositoryError> {
    Position::from_rows(rows, 1)
}

/// A change as a replica applies it: what the touched thing is now.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    /// A compute image's encoding; `None`: it is gone.
    ComputeImage { id: String, image: Option<Bytes> },
    /// A container image: whether it still exists.
    ContainerImage { id: String, exists: bool },
    /// An image's bindings (a `ListAccessBindingsResponse` encoding); `None`: none.
    Bindings {
        image_id: String,
        encoded: Option<Bytes>,
    },
}

/// What changed after the position a replica holds.
#[derive(Debug)]
pub enum Since {
    /// Up to `seq`, these things changed; each is given as it stands at `seq`.
    Changes {
        seq: Position,
        current: Vec<Current>,
    },
    /// The record doesn't reach back that far, or the whole catalog changed,
    /// or the database is not the one the replica followed: load it again.
    Reload { why: String },
}

/// What changed after `after`, read in one snapshot.
pub async fn since(database: &Database, after: &Position) -> Result<Since, RepositoryError> {
    let mut client = database.connection().await?;
    let transaction = read_only_snapshot(&mut client).await?;
    let statement = transaction
        .prepare_cached(HEAD_SQL)
        .await
        .map_err(query_error)?;
    let head = Head::from_rows(
        &transaction
            .query(&statement, &[])
            .await
            .map_err(query_error)?,
    )?;
    if !head.seq.covers(after) {
        return Ok(Since::Reload {
            why: format!(
                "the database is at changes {:?}, behind this replica's {:?}",
                head.seq.0, after.0
            ),
        });
    }
    if !after.covers(&head.pruned_through) {
        return Ok(Since::Reload {
            why: "the changes since this replica's position are pruned".into(),
        });
    }
    let statement = transaction
        .prepare_cached(
            "SELECT DISTINCT kind, id FROM image_changes WHERE shard = $1 AND seq > $2 AND seq <= $3",
        )
        .await
        .map_err(query_error)?;
    let mut touched: [Vec<String>; 3] = Default::default();
    for (shard, (from, to)) in after.0.iter().zip(&head.seq.0).enumerate() {
        if from == to {
            continue;
        }
        let shard = shard as i32;
        let rows = transaction
            .query(&statement, &[&shard, from, to])
            .await
            .map_err(query_error)?;
        for row in &rows {
            let kind: &str = row.try_get(0).map_err(query_error)?;
            let id: String = row.try_get(1).map_err(query_error)?;
            match ChangeKind::parse(kind) {
                Some(ChangeKind::ComputeImage) => touched[0].push(id),
                Some(ChangeKind::ContainerImage) => touched[1].push(id),
                Some(ChangeKind::Bindings) => touched[2].push(id),
                Some(ChangeKind::Catalog) => {
                    return Ok(Since::Reload {
                        why: "the catalog was imported".into(),
                    });
                }
                None => {
                    return Ok(Since::Reload {
                        why: format!("a change of unknown kind {kind:?}"),
                    });
                }
            }
        }
    }
    let [compute, container, bindings] = touched;
    let mut current = Vec::with_capacity(compute.len() + container.len() + bindings.len());
    let found = bodies(
        &transaction,
        "SELECT id, body FROM compute_images WHERE id = ANY($1)",
        &compute,
    )
    .await?;
    for id in compute {
        let image = found.get(&id).cloned();
        current.push(Current::ComputeImage { id, image });
    }
    let found = bodies(
        &transaction,
        "SELECT id, body FROM container_images WHERE id = ANY($1)",
        &container,
    )
    .await?;
    for id in container {
        let exists = found.contains_key(&id);
        current.push(Current::ContainerImage { id, exists });
    }
    let found = bodies(
        &transaction,
        "SELECT image_id, body FROM access_bindings WHERE image_id = ANY($1)",
        &bindings,
    )
    .await?;
    for image_id in bindings {
        let encoded = found.get(&image_id).cloned();
        current.push(Current::Bindings { image_id, encoded });
    }
    transaction.commit().await.map_err(query_error)?;
    Ok(Since::Changes {
        seq: head.seq,
        current,
    })
}

/// The bodies of the rows of `ids`, by id.
async fn bodies(
    transaction: &impl GenericClient,
    sql: &str,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Bytes>, RepositoryError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let statement = transaction.prepare_cached(sql).await.map_err(query_error)?;
    let rows = transaction
        .query(&statement, &[&ids])
        .await
        .map_err(query_error)?;
    rows.iter().map(id_and_body).collect()
}

/// A row of (id, body).
fn id_and_body(row: &tokio_postgres::Row) -> Result<(String, Bytes), RepositoryError> {
    let id: String = row.try_get(0).map_err(query_error)?;
    let body: &[u8] = row.try_get(1).map_err(query_error)?;
    Ok((id, Bytes::copy_from_slice(body)))
}

/// Everything, as of one position: what a replica starts from.
pub struct Snapshot {
    pub seq: Position,
    pub catalog: Catalog,
    /// Per image, its bindings as a `ListAccessBindingsResponse` encoding.
    pub bindings: Vec<(String, Bytes)>,
}

/// How long reading the whole catalog may take (the pool's statement
/// timeout is for calls, not for a million rows).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

/// Reads the whole catalog and the bindings in one snapshot, the rows
/// streamed (not collected) into the in-memory layout.
pub async fn snapshot(database: &Database) -> Result<Snapshot, RepositoryError> {
    let mut client = database.connection().await?;
    let transaction = read_only_snapshot(&mut client).await?;
    transaction
        .batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            SNAPSHOT_TIMEOUT.as_millis()
        ))
        .await
        .map_err(query_error)?;
    let rows = transaction
        .query(HEAD_SQL, &[])
        .await
        .map_err(query_error)?;
    let seq = Head::from_rows(&rows)?.seq;
    let compute = encoded_rows(&transaction, "compute_images").await?;
    let container = encoded_rows(&transaction, "container_images").await?;
    let registries = transaction
        .query("SELECT body FROM container_registries ORDER BY id", &[])
        .await
        .map_err(query_error)?;
    let container_registries = registries
        .iter()
        .map(super::decode_row::<container_registry::Registry>)
        .collect::<Result<Vec<_>, _>>()?;
    let rows = transaction
        .query("SELECT image_id, body FROM access_bindings", &[])
        .await
        .map_err(query_error)?;
    let bindings = rows
        .iter()
        .map(id_and_body)
        .collect::<Result<Vec<_>, _>>()?;
    transaction.commit().await.map_err(query_error)?;
    let catalog = Catalog {
        compute_images: ImageList::from_chunks(vec![compute]).map_err(repeated)?,
        container_images: ImageList::from_chunks(vec![container]).map_err(repeated)?,
        container_registries,
    };
    Ok(Snapshot {
        seq,
        catalog,
        bindings,
    })
}

fn repeated(duplicate: crate::store::catalog::Duplicate) -> RepositoryError {
    RepositoryError::Internal(format!("the database holds id {:?} twice", duplicate.id))
}

/// Every row of an image table, by id, as encoded images.
async fn encoded_rows(
    transaction: &deadpool_postgres::Transaction<'_>,
    table: &str,
) -> Result<EncodedImages, RepositoryError> {
    let statement = transaction
        .prepare(&format!("SELECT id, body FROM {table} ORDER BY id"))
        .await
        .map_err(query_error)?;
    let rows = transaction
        .query_raw(&statement, std::iter::empty::<i32>())
        .await
        .map_err(query_error)?;
    let mut rows = std::pin::pin!(rows);
    let mut images = EncodedImages::default();
    while let Some(row) = rows.next().await {
        let row = row.map_err(query_error)?;
        let id: &str = row.try_get(0).map_err(query_error)?;
        let body: &[u8] = row.try_get(1).map_err(query_error)?;
        images.push_encoded(id, body);
    }
    Ok(images)
}

/// How long changes are kept for replicas that fell behind.
pub const RETENTION: Duration = Duration::from_secs(3600);

/// Forgets the changes older than [`RETENTION`]; returns how many.
pub async fn prune(database: &Database) -> Result<u64, RepositoryError> {
    let horizon = now_ms() - i64::try_from(RETENTION.as_millis()).unwrap_or(i64::MAX);
    let mut client = database.connection().await?;
    let transaction = client.transaction().await.map_err(query_error)?;
    let rows = transaction
        .query(
            "SELECT shard, max(seq) FROM image_changes WHERE changed_at_ms < $1 GROUP BY shard",
            &[&horizon],
        )
        .await
        .map_err(query_error)?;
    let mut deleted = 0;
    for row in &rows {
        let shard: i32 = row.try_get(0).map_err(query_error)?;
        let through: i64 = row.try_get(1).map_err(query_error)?;
        deleted += transaction
            .execute(
                "DELETE FROM image_changes WHERE shard = $1 AND seq <= $2",
                &[&shard, &through],
            )
            .await
            .map_err(query_error)?;
        transaction
            .execute(
                "UPDATE image_change_sequence SET pruned_through = $2 WHERE shard = $1 AND pruned_through < $2",
                &[&shard, &through],
            )
            .await
            .map_err(query_error)?;
    }
    transaction.commit().await.map_err(query_error)?;
    Ok(deleted)
}

/// How often a server on the database prunes old changes.
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// Prunes old changes every [`PRUNE_EVERY`] while it lives: every server on
/// a database runs one (cached or not, each write records its changes).
pub struct Pruner {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Pruner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pruner {
    pub fn spawn(database: Database) -> Self {
        let task = tokio::spawn(async move {
            // Not at start: replicas starting together have better to do.
            let first = tokio::time::Instant::now() + PRUNE_EVERY;
            let mut every = tokio::time::interval_at(first, PRUNE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match prune(&database).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::debug!(pruned, "old changes pruned"),
                    Err(err) => tracing::debug!(error = %err, "pruning old changes failed"),
                }
            }
        });
        Self { task }
    }
}

/// A connection listening on the schema's channel.
pub struct Listener {
    /// Held: dropping it closes the connection.
    _client: Client,
    messages: tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>,
}

impl Listener {
    pub async fn connect(database: &Database) -> Result<Self, RepositoryError> {
        let (sender, messages) = tokio::sync::mpsc::unbounded_channel();
        let client = database
            .dedicated_connection("change listener", sender)
            .await?;
        let row = client
            .query_one(&format!("SELECT {CHANNEL_SQL}"), &[])
            .await
            .map_err(query_error)?;
        let channel: String = row.try_get(0).map_err(query_error)?;
        // An md5 in hex after a fixed prefix: safe to quote as it is.
        client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await
            .map_err(query_error)?;
        Ok(Self {
            _client: client,
            messages,
        })
    }

    /// Waits for the next notification, then takes any others already
    /// there with it; `false`: the connection is gone.
    pub async fn changed(&mut self) -> bool {
        loop {
            match self.messages.recv().await {
                Some(AsyncMessage::Notification(_)) => break,
                Some(_) => continue,
                None => return false,
            }
        }
        while let Ok(_more) = self.messages.try_recv() {}
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_fixed_forever() {
        // Every writer of every version must put a thing in the same shard:
        // these values may never change.
        assert_eq!(
            shard_of(ChangeKind::ComputeImage, "fd824k6uqk9cvi1ise4i"),
            13
        );
        assert_eq!(shard_of(ChangeKind::Bindings, "fd824k6uqk9cvi1ise4i"), 13);
        assert_eq!(shard_of(ChangeKind::ContainerImage, "crpabc"), 0);
        assert_eq!(
            shard_of(ChangeKind::ContainerImage, "crpd2nrqffpp3e93946m"),
            9
        );
        assert_eq!(shard_of(ChangeKind::Catalog, ""), 0);
        let used: BTreeSet<i32> = (0..200)
            .map(|i| shard_of(ChangeKind::ComputeImage, &format!("fd8{i:017}")))
            .collect();
        assert_eq!(used.len(), SHARDS, "ids spread over every shard");
    }

    #[test]
    fn a_position_covers_another_shard_by_shard() {
        let mut ahead = Position::default();
        ahead.0[3] = 5;
        let mut other = Position::default();
        other.0[3] = 4;
        other.0[7] = 1;
        assert!(!ahead.covers(&other), "shard 7 is behind");
        ahead.0[7] = 1;
        assert!(ahead.covers(&other));
        assert!(ahead.covers(&ahead.clone()));
        assert_eq!(ahead.total(), 6);
    }

    #[test]
    fn a_change_set_groups_by_shard_and_drops_repeats() {
        let mut changes = ChangeSet::default();
        changes.add(ChangeKind::ComputeImage, "a");
        changes.add(ChangeKind::ComputeImage, "a");
        changes.add(ChangeKind::Bindings, "a");
        assert_eq!(changes.0.len(), 2);
        assert!(
            changes
                .0
                .iter()
                .all(|(shard, _, _)| *shard == shard_of(ChangeKind::ComputeImage, "a"))
        );
    }
}
