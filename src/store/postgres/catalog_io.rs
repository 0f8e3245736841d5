//! Catalog files in and out of the database.
//!
//! Import writes a validated [`Catalog`] in one transaction: all of it or,
//! on any error, none. Rows go in batches (`UNNEST` of one array per column),
//! so a big catalog costs few round trips. Export reads every row back, by id,
//! decoding `body`: what was imported comes out unchanged.

use prost::Message;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::pool::{Database, query_error};
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
    transaction.commit().await.map_err(query_error)
}

/// `created_at` as the two sort columns; none sorts first, as in memory.
fn created_at(timestamp: Option<&crate::proto::Timestamp>) -> (i64, i32) {
    timestamp.map_or((i64::MIN, 0), |t| (t.seconds, t.nanos))
}

async fn execute(
    transaction: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), RepositoryError> {
    let statement = transaction.prepare(sql).await.map_err(query_error)?;
    transaction
        .execute(&statement, params)
        .await
        .map(drop)
        .map_err(query_error)
}

async fn insert_compute(
    transaction: &Transaction<'_>,
    images: &[compute::Image],
) -> Result<(), RepositoryError> {
    let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    let folders: Vec<&str> = images.iter().map(|i| i.folder_id.as_str()).collect();
    let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    let families: Vec<&str> = images.iter().map(|i| i.family.as_str()).collect();
    let statuses: Vec<i32> = images.iter().map(|i| i.status).collect();
    let (seconds, nanos): (Vec<i64>, Vec<i32>) = images
        .iter()
        .map(|i| created_at(i.created_at.as_ref()))
        .unzip();
    let bodies: Vec<Vec<u8>> = images.iter().map(Message::encode_to_vec).collect();
    execute(
        transaction,
        "INSERT INTO compute_images \
             (id, folder_id, name, family, status, created_at_seconds, created_at_nanos, body) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::INT4[], \
                              $6::INT8[], $7::INT4[], $8::BYTEA[]) \
         ON CONFLICT (id) DO UPDATE SET folder_id = excluded.folder_id, name = excluded.name, \
             family = excluded.family, status = excluded.status, \
             created_at_seconds = excluded.created_at_seconds, \
             created_at_nanos = excluded.created_at_nanos, body = excluded.body",
        &[
            &ids, &folders, &names, &families, &statuses, &seconds, &nanos, &bodies,
        ],
    )
    .await
}

async fn insert_container(
    transaction: &Transaction<'_>,
    images: &[container_registry::Image],
) -> Result<(), RepositoryError> {
    let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    let registries: Vec<Option<&str>> = images.iter().map(|i| registry_of(&i.name)).collect();
    let digests: Vec<&str> = images.iter().map(|i| i.digest.as_str()).collect();
    let (seconds, nanos): (Vec<i64>, Vec<i32>) = images
        .iter()
        .map(|i| created_at(i.created_at.as_ref()))
        .unzip();
    let bodies: Vec<Vec<u8>> = images.iter().map(Message::encode_to_vec).collect();
    execute(
        transaction,
        "INSERT INTO container_images \
             (id, name, registry_id, digest, created_at_seconds, created_at_nanos, body) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
                              $5::INT8[], $6::INT4[], $7::BYTEA[]) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             registry_id = excluded.registry_id, digest = excluded.digest, \
             created_at_seconds = excluded.created_at_seconds, \
             created_at_nanos = excluded.created_at_nanos, body = excluded.body",
        &[
            &ids,
            &names,
            &registries,
            &digests,
            &seconds,
            &nanos,
            &bodies,
        ],
    )
    .await
}

async fn insert_registries(
    transaction: &Transaction<'_>,
    registries: &[container_registry::Registry],
) -> Result<(), RepositoryError> {
    let ids: Vec<&str> = registries.iter().map(|r| r.id.as_str()).collect();
    let folders: Vec<&str> = registries.iter().map(|r| r.folder_id.as_str()).collect();
    let bodies: Vec<Vec<u8>> = registries.iter().map(Message::encode_to_vec).collect();
    execute(
        transaction,
        "INSERT INTO container_registries (id, folder_id, body) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BYTEA[]) \
         ON CONFLICT (id) DO UPDATE SET folder_id = excluded.folder_id, body = excluded.body",
        &[&ids, &folders, &bodies],
    )
    .await
}

/// Reads the whole catalog, each list by id, in one snapshot.
pub async fn export_catalog(database: &Database) -> Result<Catalog, RepositoryError> {
    let mut client = database.connection().await?;
    let transaction = client
        .build_transaction()
        .read_only(true)
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(query_error)?;
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
