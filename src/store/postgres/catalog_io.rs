//! Catalog files in and out of the database.
//!
//! Import writes a validated [`Catalog`] in one transaction: all of it or,
//! on any error, none. Rows go in batches (`UNNEST` of one array per column),
//! so a big catalog costs few round trips. Export reads every row back, by id,
//! decoding `body`: what was imported comes out unchanged.

use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use prost::Message;
use tokio_postgres::types::ToSql;

use super::changes::{ChangeKind, ChangeSet};
use super::pool::{Database, query_error, read_only_snapshot};
use crate::domain::container::registry_of;
use crate::proto::{compute, container_registry};
use crate::store::RepositoryError;
use crate::store::catalog::{Catalog, Duplicate, ImageList};

/// Rows per INSERT.
const BATCH: usize = 1000;

/// What an import does with the rows already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Insert the file's entries, replacing rows with the same id; keep the rest.
    Upsert,
    /// Make the database hold exactly the file.
    Replace,
}

/// Writes `catalog` in one transaction.
pub async fn import_catalog(
    database: &Database,
    catalog: &Catalog,
    mode: ImportMode,
) -> Result<(), RepositoryError> {
    let notify = super::changes::notifications_supported(database).await?;
    let mut client = database.connection().await?;
    let transaction = client.transaction().await.map_err(query_error)?;
    if mode == ImportMode::Replace {
        transaction
            .batch_execute(
                "DELETE FROM compute_images; DELETE FROM container_images; \
                 DELETE FROM container_registries;",
            )
            .await
            .map_err(query_error)?;
    }
    // The catalog's images are held encoded: decode a batch at a time, not all.
    let mut compute = catalog.compute_images.iter().peekable();
    while compute.peek().is_some() {
        let chunk: Vec<compute::Image> = compute.by_ref().take(BATCH).collect();
        insert_compute(&transaction, &chunk).await?;
    }
    let mut container = catalog.container_images.iter().peekable();
    while container.peek().is_some() {
        let chunk: Vec<container_registry::Image> = container.by_ref().take(BATCH).collect();
        insert_container(&transaction, &chunk).await?;
    }
    for chunk in catalog.container_registries.chunks(BATCH) {
        insert_registries(&transaction, chunk).await?;
    }
    // Cached replicas load the whole catalog again.
    let mut changed = ChangeSet::default();
    changed.add(ChangeKind::Catalog, "");
    changed.record(&transaction, notify).await?;
    transaction.commit().await.map_err(query_error)
}

/// `created_at` as the two sort columns; none sorts first, as in memory.
fn created_at(timestamp: Option<&crate::proto::Timestamp>) -> (i64, i32) {
    timestamp.map_or((i64::MIN, 0), |t| (t.seconds, t.nanos))
}

/// One column of a batch: its name, its SQL type and the batch's values.
type Column<'a> = (&'static str, &'static str, &'a (dyn ToSql + Sync));

/// Inserts a batch into `table` (`columns` start with `id`, one array each),
/// replacing the rows with the same ids.
async fn upsert(
    transaction: &impl GenericClient,
    table: &str,
    columns: &[Column<'_>],
) -> Result<(), RepositoryError> {
    let names: Vec<&str> = columns.iter().map(|(name, _, _)| *name).collect();
    let arrays: Vec<String> = (1..)
        .zip(columns)
        .map(|(i, (_, sql_type, _))| format!("${i}::{sql_type}[]"))
        .collect();
    let updates: Vec<String> = names[1..]
        .iter()
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM UNNEST({}) ON CONFLICT (id) DO UPDATE SET {}",
        names.join(", "),
        arrays.join(", "),
        updates.join(", ")
    );
    let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(|(_, _, values)| *values).collect();
    let statement = transaction
        .prepare_cached(&sql)
        .await
        .map_err(query_error)?;
    transaction
        .execute(&statement, &params)
        .await
        .map(drop)
        .map_err(query_error)
}

/// What both image tables hold of each image: id, name, created_at and body.
struct ImageColumns<'a> {
    ids: Vec<&'a str>,
    names: Vec<&'a str>,
    seconds: Vec<i64>,
    nanos: Vec<i32>,
    bodies: Vec<Vec<u8>>,
}

impl<'a> ImageColumns<'a> {
    /// `fields` gives an image's id, name and created_at.
    fn of<T: Message>(
        images: &'a [T],
        fields: impl Fn(&'a T) -> (&'a str, &'a str, Option<&'a crate::proto::Timestamp>),
    ) -> Self {
        let mut columns = Self {
            ids: Vec::with_capacity(images.len()),
            names: Vec::with_capacity(images.len()),
            seconds: Vec::with_capacity(images.len()),
            nanos: Vec::with_capacity(images.len()),
            bodies: Vec::with_capacity(images.len()),
        };
        for image in images {
            let (id, name, created) = fields(image);
            let (seconds, nanos) = created_at(created);
            columns.ids.push(id);
            columns.names.push(name);
            columns.seconds.push(seconds);
            columns.nanos.push(nanos);
            columns.bodies.push(image.encode_to_vec());
        }
        columns
    }

    /// Upserts these columns and the table's `own` into `table`.
    async fn upsert(
        &self,
        transaction: &impl GenericClient,
        table: &str,
        own: &[Column<'_>],
    ) -> Result<(), RepositoryError> {
        let mut columns: Vec<Column<'_>> =
            vec![("id", "TEXT", &self.ids), ("name", "TEXT", &self.names)];
        columns.extend_from_slice(own);
        columns.extend([
            (
                "created_at_seconds",
                "INT8",
                &self.seconds as &(dyn ToSql + Sync),
            ),
            ("created_at_nanos", "INT4", &self.nanos),
            ("body", "BYTEA", &self.bodies),
        ]);
        upsert(transaction, table, &columns).await
    }
}

/// Upserts compute images (the import's batches, and the writes' single rows).
pub(super) async fn insert_compute(
    transaction: &impl GenericClient,
    images: &[compute::Image],
) -> Result<(), RepositoryError> {
    let common = ImageColumns::of(images, |i| (&i.id, &i.name, i.created_at.as_ref()));
    let folders: Vec<&str> = images.iter().map(|i| i.folder_id.as_str()).collect();
    let families: Vec<&str> = images.iter().map(|i| i.family.as_str()).collect();
    let statuses: Vec<i32> = images.iter().map(|i| i.status).collect();
    let own: [Column<'_>; 3] = [
        ("folder_id", "TEXT", &folders),
        ("family", "TEXT", &families),
        ("status", "INT4", &statuses),
    ];
    common.upsert(transaction, "compute_images", &own).await
}

async fn insert_container(
    transaction: &Transaction<'_>,
    images: &[container_registry::Image],
) -> Result<(), RepositoryError> {
    let common = ImageColumns::of(images, |i| (&i.id, &i.name, i.created_at.as_ref()));
    let registries: Vec<Option<&str>> = images.iter().map(|i| registry_of(&i.name)).collect();
    let digests: Vec<&str> = images.iter().map(|i| i.digest.as_str()).collect();
    let own: [Column<'_>; 2] = [
        ("registry_id", "TEXT", &registries),
        ("digest", "TEXT", &digests),
    ];
    common.upsert(transaction, "container_images", &own).await
}

async fn insert_registries(
    transaction: &Transaction<'_>,
    registries: &[container_registry::Registry],
) -> Result<(), RepositoryError> {
    let ids: Vec<&str> = registries.iter().map(|r| r.id.as_str()).collect();
    let folders: Vec<&str> = registries.iter().map(|r| r.folder_id.as_str()).collect();
    let bodies: Vec<Vec<u8>> = registries.iter().map(Message::encode_to_vec).collect();
    let columns: [Column<'_>; 3] = [
        ("id", "TEXT", &ids),
        ("folder_id", "TEXT", &folders),
        ("body", "BYTEA", &bodies),
    ];
    upsert(transaction, "container_registries", &columns).await
}

/// Reads the whole catalog, each list by id, in one snapshot.
pub async fn export_catalog(database: &Database) -> Result<Catalog, RepositoryError> {
    let mut client = database.connection().await?;
    let transaction = read_only_snapshot(&mut client).await?;
    let compute: Vec<compute::Image> = read_all(&transaction, "compute_images").await?;
    let container: Vec<container_registry::Image> =
        read_all(&transaction, "container_images").await?;
    let catalog = Catalog {
        compute_images: ImageList::from_images(compute, |image| &image.id).map_err(repeated_id)?,
        container_images: ImageList::from_images(container, |image| &image.id)
            .map_err(repeated_id)?,
        container_registries: read_all(&transaction, "container_registries").await?,
    };
    transaction.commit().await.map_err(query_error)?;
    Ok(catalog)
}

/// The id column is the primary key, so a repeat means the table was changed
/// behind our back.
fn repeated_id(duplicate: Duplicate) -> RepositoryError {
    RepositoryError::Internal(format!(
        "the database holds id {:?} twice (rows {} and {})",
        duplicate.id, duplicate.first, duplicate.position
    ))
}

async fn read_all<T: Message + Default>(
    transaction: &Transaction<'_>,
    table: &str,
) -> Result<Vec<T>, RepositoryError> {
    let rows = transaction
        .query(&format!("SELECT body FROM {table} ORDER BY id"), &[])
        .await
        .map_err(query_error)?;
    rows.iter().map(super::decode_row).collect()
}
