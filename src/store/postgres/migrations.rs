//! The schema, as numbered migrations built into the binary.
//!
//! `schema_migrations` records each version applied. Migrating holds a
//! session advisory lock from before anything is created (the bookkeeping
//! table included: two concurrent `CREATE TABLE IF NOT EXISTS` can still
//! collide in the catalog), so replicas starting together apply each migration
//! once: the others wait, then find it recorded. Each migration and its record
//! commit in one transaction. The lock is per schema, so deployments that share
//! a database but not a schema don't wait for each other.

use super::pool::{Database, query_error};
use crate::store::RepositoryError;

/// The first key of the advisory lock migrations hold ("imgs" in ASCII); the
/// second is a hash of the schema migrated.
const LOCK_KEY: i32 = 0x696d_6773;

/// Takes the lock. `coalesce`: `current_schema()` is NULL when no schema on the
/// search path exists yet, and the lock functions do nothing on a NULL key.
const LOCK_SQL: &str = "SELECT pg_advisory_lock($1, hashtext(coalesce(current_schema(), '')))";
const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock($1, hashtext(coalesce(current_schema(), '')))";

/// One schema change: its version (ascending, never reused) and its SQL.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog tables",
        sql: r#"
CREATE TABLE compute_images (
    id TEXT COLLATE "C" PRIMARY KEY,
    folder_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    family TEXT COLLATE "C" NOT NULL,
    status INTEGER NOT NULL,
    created_at_seconds BIGINT NOT NULL,
    created_at_nanos INTEGER NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX compute_images_folder_id ON compute_images (folder_id, id);
CREATE INDEX compute_images_folder_name ON compute_images (folder_id, name, id);
CREATE INDEX compute_images_folder_created
    ON compute_images (folder_id, created_at_seconds, created_at_nanos, id);
CREATE INDEX compute_images_folder_family
    ON compute_images (folder_id, family, status, created_at_seconds, created_at_nanos, id);

CREATE TABLE container_images (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    registry_id TEXT COLLATE "C",
    digest TEXT COLLATE "C" NOT NULL,
    created_at_seconds BIGINT NOT NULL,
    created_at_nanos INTEGER NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX container_images_name ON container_images (name, id);
CREATE INDEX container_images_registry ON container_images (registry_id, id);
CREATE INDEX container_images_registry_name ON container_images (registry_id, name, id);

CREATE TABLE container_registries (
    id TEXT COLLATE "C" PRIMARY KEY,
    folder_id TEXT COLLATE "C" NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX container_registries_folder ON container_registries (folder_id, id);
"#,
    },
    Migration {
        version: 2,
        name: "write API: operations and idempotency keys",
        sql: r#"
CREATE TABLE operations (
    id TEXT COLLATE "C" PRIMARY KEY,
    image_id TEXT COLLATE "C" NOT NULL,
    done BOOLEAN NOT NULL,
    created_at_seconds BIGINT NOT NULL,
    created_at_nanos INTEGER NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX operations_image
    ON operations (image_id, created_at_seconds DESC, created_at_nanos DESC, id DESC);
CREATE INDEX operations_pending ON operations (id) WHERE NOT done;

CREATE TABLE idempotency_keys (
    subject TEXT COLLATE "C" NOT NULL,
    method TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    operation_id TEXT COLLATE "C" NOT NULL,
    created_at_seconds BIGINT NOT NULL,
    created_at_nanos INTEGER NOT NULL,
    PRIMARY KEY (subject, method, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at_seconds, created_at_nanos);
"#,
    },
    Migration {
        version: 3,
        name: "access bindings of images",
        sql: r#"
CREATE TABLE access_bindings (
    image_id TEXT COLLATE "C" PRIMARY KEY,
    body BYTEA NOT NULL
);
"#,
    },
    Migration {
        version: 4,
        name: "change sequence for cached replicas",
        sql: r#"
CREATE TABLE image_change_sequence (
    shard INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO image_change_sequence (shard, seq, pruned_through) VALUES
    (0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 0, 0), (5, 0, 0), (6, 0, 0), (7, 0, 0), (8, 0, 0), (9, 0, 0), (10, 0, 0), (11, 0, 0), (12, 0, 0), (13, 0, 0), (14, 0, 0), (15, 0, 0);
CREATE TABLE image_changes (
    shard INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    changed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (shard, seq, kind, id)
);
CREATE INDEX image_changes_changed_at ON image_changes (changed_at_ms);
"#,
    },
];

/// Applies the migrations the database lacks, in order; returns how many.
pub async fn migrate(database: &Database) -> Result<usize, RepositoryError> {
    let mut client = database.connection().await?;
    client
        .execute(LOCK_SQL, &[&LOCK_KEY])
        .await
        .map_err(query_error)?;
    let applied = apply_pending(&mut client).await;
    // Released even when a migration failed; a lost connection releases it too.
    let unlocked = client
        .execute(UNLOCK_SQL, &[&LOCK_KEY])
        .await
        .map_err(query_error);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

/// Checks, without changing anything, that every migration this binary knows
/// is applied (for `serve --no-migrate`).
pub async fn check_schema(database: &Database) -> Result<(), RepositoryError> {
    let latest = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    let row = database
        .query_opt(
            "SELECT count(*) FROM schema_migrations WHERE version <= $1",
            &[&latest],
        )
        .await
        .map_err(|err| {
            RepositoryError::Internal(format!(
                "cannot read schema_migrations ({err}); run `image-service migrate` first"
            ))
        })?;
    let applied: i64 = row
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(query_error)?
        .unwrap_or(0);
    if applied < MIGRATIONS.len() as i64 {
        return Err(RepositoryError::Internal(format!(
            "the database schema lacks {} of {} migrations; run `image-service migrate` first",
            MIGRATIONS.len() as i64 - applied,
            MIGRATIONS.len()
        )));
    }
    Ok(())
}

async fn apply_pending(client: &mut deadpool_postgres::Object) -> Result<usize, RepositoryError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version BIGINT PRIMARY KEY, \
                 name TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(query_error)?;
    let rows = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(query_error)?;
    let mut done = Vec::with_capacity(rows.len());
    for row in rows {
        done.push(row.try_get::<_, i64>(0).map_err(query_error)?);
    }
    if let Some(newest) = done.iter().max()
        && MIGRATIONS.iter().all(|m| m.version < *newest)
    {
        return Err(RepositoryError::Internal(format!(
            "the database schema is at version {newest}, newer than this binary knows"
        )));
    }
    let mut count = 0;
    for migration in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        let transaction = client.transaction().await.map_err(query_error)?;
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(query_error)?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&migration.version, &migration.name],
            )
            .await
            .map_err(query_error)?;
        transaction.commit().await.map_err(query_error)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migration applied"
        );
        count += 1;
    }
    Ok(count)
}
