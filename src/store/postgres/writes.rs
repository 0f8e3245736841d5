//! The writes on PostgreSQL: one database transaction per write
//! ([`WriteTransaction`]) over `compute_images`, `container_images`,
//! `operations` and `idempotency_keys`, so every replica sees a write whole
//! once it is acknowledged, or not at all. Scopes (a folder, a key) are held
//! with transaction-level advisory locks; rows being changed with FOR UPDATE.

use async_trait::async_trait;
use deadpool_postgres::Object;
use prost::Message;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresRepository;
use super::catalog_io::insert_compute;
use super::changes::{self, ChangeKind, ChangeSet, Position};
use super::pool::query_error;
use crate::domain::operation::{IdempotencyKey, StoredOperation};
use crate::proto::Timestamp;
use crate::proto::yandex::cloud::access::{AccessBinding, ListAccessBindingsResponse};
use crate::proto::{compute, container_registry};
use crate::store::RepositoryError;
use crate::store::write::{BindingRepository, OperationPage, WriteRepository, WriteTransaction};

/// The advisory lock class of write scopes (the migrations use another);
/// the second key is the scope's hash, per schema like the migrations' lock.
const WRITE_LOCK_CLASS: i32 = 0x696d_7772;
const LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '') || ':' || $2))";

fn decode<T: Message + Default>(row: &Row, what: &str) -> Result<T, RepositoryError> {
    let body: &[u8] = row
        .try_get("body")
        .map_err(|err| RepositoryError::Internal(format!("{what}: {err}")))?;
    T::decode(body)
        .map_err(|err| RepositoryError::Internal(format!("{what} does not decode: {err}")))
}

/// A write in progress on one pooled connection, inside BEGIN.
pub struct PostgresTransaction {
    /// `None` once committed.
    client: Option<Object>,
    /// What it changed, recorded in the change sequence when it commits.
    changes: ChangeSet,
    notify: bool,
}

impl PostgresTransaction {
    fn client(&self) -> Result<&Object, RepositoryError> {
        self.client
            .as_ref()
            .ok_or_else(|| RepositoryError::Internal("the transaction has ended".into()))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, RepositoryError> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(query_error)?;
        client.query(&statement, params).await.map_err(query_error)
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(), RepositoryError> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(query_error)?;
        client
            .execute(&statement, params)
            .await
            .map(drop)
            .map_err(query_error)
    }
}

impl Drop for PostgresTransaction {
    /// Never committed: the connection is mid-transaction, so it must not go
    /// back to the pool; closing it rolls the transaction back.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

#[async_trait]
impl WriteTransaction for PostgresTransaction {
    async fn lock(&mut self, scope: &str) -> Result<(), RepositoryError> {
        self.execute(LOCK_SQL, &[&WRITE_LOCK_CLASS, &scope]).await
    }

    async fn compute_image(&mut self, id: &str) -> Result<Option<compute::Image>, RepositoryError> {
        let rows = self
            .query(
                "SELECT body FROM compute_images WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|row| decode(row, "a compute image"))
            .transpose()
    }

    async fn container_image(
        &mut self,
        id: &str,
    ) -> Result<Option<container_registry::Image>, RepositoryError> {
        let rows = self
            .query(
                "SELECT body FROM container_images WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|row| decode(row, "a container image"))
            .transpose()
    }

    async fn compute_image_named(
        &mut self,
        folder: &str,
        name: &str,
        except: &str,
    ) -> Result<Option<String>, RepositoryError> {
        let rows = self
            .query(
                "SELECT id FROM compute_images WHERE folder_id = $1 AND name = $2 AND id <> $3 LIMIT 1",
                &[&folder, &name, &except],
            )
            .await?;
        rows.first()
            .map(|row| {
                row.try_get::<_, String>(0)
                    .map_err(|e| RepositoryError::Internal(e.to_string()))
            })
            .transpose()
    }

    async fn put_compute_image(&mut self, image: &compute::Image) -> Result<(), RepositoryError> {
        self.changes.add(ChangeKind::ComputeImage, &image.id);
        insert_compute(self.client()?, std::slice::from_ref(image)).await
    }

    async fn delete_compute_image(&mut self, id: &str) -> Result<(), RepositoryError> {
        self.changes.add(ChangeKind::ComputeImage, id);
        self.execute("DELETE FROM compute_images WHERE id = $1", &[&id])
            .await
    }

    async fn delete_container_image(&mut self, id: &str) -> Result<(), RepositoryError> {
        self.changes.add(ChangeKind::ContainerImage, id);
        self.execute("DELETE FROM container_images WHERE id = $1", &[&id])
            .await
    }

    async fn operation_of_key(
        &mut self,
        key: &IdempotencyKey,
        since: &Timestamp,
    ) -> Result<Option<StoredOperation>, RepositoryError> {
        let rows = self
            .query(
                "SELECT o.body FROM idempotency_keys k JOIN operations o ON o.id = k.operation_id \
                 WHERE k.subject = $1 AND k.method = $2 AND k.key = $3 \
                 AND (k.created_at_seconds, k.created_at_nanos) >= ($4, $5)",
                &[
                    &key.subject,
                    &key.method,
                    &key.key,
                    &since.seconds,
                    &since.nanos,
                ],
            )
            .await?;
        rows.first()
            .map(|row| decode(row, "an operation"))
            .transpose()
    }

    async fn operation(&mut self, id: &str) -> Result<Option<StoredOperation>, RepositoryError> {
        let rows = self
            .query(
                "SELECT body FROM operations WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|row| decode(row, "an operation"))
            .transpose()
    }

    async fn put_operation(
        &mut self,
        operation: &StoredOperation,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), RepositoryError> {
        let created = operation.operation.created_at.unwrap_or_default();
        let body = operation.encode_to_vec();
        self.execute(
            "INSERT INTO operations (id, image_id, done, created_at_seconds, created_at_nanos, body) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET done = excluded.done, body = excluded.body",
            &[
                &operation.id(),
                &operation.image_id,
                &operation.done(),
                &created.seconds,
                &created.nanos,
                &body,
            ],
        )
        .await?;
        if let Some(key) = key {
            // An expired key is taken over by the new operation.
            self.execute(
                "INSERT INTO idempotency_keys \
                 (subject, method, key, operation_id, created_at_seconds, created_at_nanos) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (subject, method, key) DO UPDATE SET operation_id = excluded.operation_id, \
                 created_at_seconds = excluded.created_at_seconds, created_at_nanos = excluded.created_at_nanos",
                &[
                    &key.subject,
                    &key.method,
                    &key.key,
                    &operation.id(),
                    &created.seconds,
                    &created.nanos,
                ],
            )
            .await?;
        }
        Ok(())
    }

    async fn access_bindings(
        &mut self,
        image_id: &str,
    ) -> Result<Vec<AccessBinding>, RepositoryError> {
        let rows = self
            .query(
                "SELECT body FROM access_bindings WHERE image_id = $1 FOR UPDATE",
                &[&image_id],
            )
            .await?;
        match rows.first() {
            Some(row) => bindings_of(row),
            None => Ok(Vec::new()),
        }
    }

    async fn put_access_bindings(
        &mut self,
        image_id: &str,
        bindings: &[AccessBinding],
    ) -> Result<(), RepositoryError> {
        self.changes.add(ChangeKind::Bindings, image_id);
        if bindings.is_empty() {
            return self
                .execute(
                    "DELETE FROM access_bindings WHERE image_id = $1",
                    &[&image_id],
                )
                .await;
        }
        let body = ListAccessBindingsResponse {
            access_bindings: bindings.to_vec(),
            next_page_token: String::new(),
        }
        .encode_to_vec();
        self.execute(
            "INSERT INTO access_bindings (image_id, body) VALUES ($1, $2) \
             ON CONFLICT (image_id) DO UPDATE SET body = excluded.body",
            &[&image_id, &body],
        )
        .await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), RepositoryError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| RepositoryError::Internal("the transaction has ended".into()))?;
        if let Err(err) = self.changes.record(&client, self.notify).await {
            drop(Object::take(client));
            return Err(err);
        }
        match client.batch_execute("COMMIT").await {
            Ok(()) => Ok(()),
            Err(err) => {
                // Whether it committed is unknown to us: don't reuse the connection.
                drop(Object::take(client));
                Err(query_error(err))
            }
        }
    }
}

fn bindings_of(row: &Row) -> Result<Vec<AccessBinding>, RepositoryError> {
    Ok(decode::<ListAccessBindingsResponse>(row, "access bindings")?.access_bindings)
}

#[async_trait]
impl BindingRepository for PostgresRepository {
    async fn image_bindings(&self, image_id: &str) -> Result<Vec<AccessBinding>, RepositoryError> {
        let row = self
            .database
            .query_opt(
                "SELECT body FROM access_bindings WHERE image_id = $1",
                &[&image_id],
            )
            .await?;
        row.as_ref()
            .map(bindings_of)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn folder_bindings(
        &self,
        folder: &str,
    ) -> Result<Vec<(String, Vec<AccessBinding>)>, RepositoryError> {
        let rows = self
            .database
            .query(
                "SELECT b.image_id, b.body FROM access_bindings b \
                 JOIN compute_images i ON i.id = b.image_id WHERE i.folder_id = $1",
                &[&folder],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = row
                    .try_get("image_id")
                    .map_err(|err| RepositoryError::Internal(format!("access bindings: {err}")))?;
                Ok((id, bindings_of(row)?))
            })
            .collect()
    }
}

impl PostgresRepository {
    /// An operation and the position of the change sequence when it was
    /// read (in the same statement, so the operation's own changes are in).
    pub async fn operation_at_change(
        &self,
        id: &str,
    ) -> Result<(Option<StoredOperation>, Position), RepositoryError> {
        let rows = self
            .database
            .query(
                "SELECT s.shard, s.seq, o.body FROM image_change_sequence s \
                 LEFT JOIN operations o ON o.id = $1",
                &[&id],
            )
            .await?;
        let position = changes::position_of(&rows)?;
        let body: Option<&[u8]> = match rows.first() {
            Some(row) => row.try_get("body").map_err(query_error)?,
            None => None,
        };
        let found = body
            .map(|body| {
                StoredOperation::decode(body).map_err(|err| {
                    RepositoryError::Internal(format!("an operation does not decode: {err}"))
                })
            })
            .transpose()?;
        Ok((found, position))
    }
}

#[async_trait]
impl WriteRepository for PostgresRepository {
    async fn begin(&self) -> Result<Box<dyn WriteTransaction + '_>, RepositoryError> {
        let client = self.database.connection().await?;
        client.batch_execute("BEGIN").await.map_err(query_error)?;
        Ok(Box::new(PostgresTransaction {
            client: Some(client),
            changes: ChangeSet::default(),
            notify: self.notify,
        }))
    }

    async fn operation(&self, id: &str) -> Result<Option<StoredOperation>, RepositoryError> {
        let row = self
            .database
            .query_opt("SELECT body FROM operations WHERE id = $1", &[&id])
            .await?;
        row.as_ref()
            .map(|row| decode(row, "an operation"))
            .transpose()
    }

    async fn image_operations(
        &self,
        image_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<OperationPage, RepositoryError> {
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let rows = match after {
            None => {
                self.database
                    .query(
                        "SELECT body FROM operations WHERE image_id = $1 \
                         ORDER BY created_at_seconds DESC, created_at_nanos DESC, id DESC LIMIT $2",
                        &[&image_id, &fetch],
                    )
                    .await?
            }
            Some(after) => {
                self.database
                    .query(
                        "SELECT o.body FROM operations o, operations a \
                         WHERE a.id = $2 AND a.image_id = $1 AND o.image_id = $1 \
                         AND (o.created_at_seconds, o.created_at_nanos, o.id) \
                           < (a.created_at_seconds, a.created_at_nanos, a.id) \
                         ORDER BY o.created_at_seconds DESC, o.created_at_nanos DESC, o.id DESC LIMIT $3",
                        &[&image_id, &after, &fetch],
                    )
                    .await?
            }
        };
        let found = rows
            .iter()
            .map(|row| decode::<StoredOperation>(row, "an operation"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OperationPage::of(found, limit))
    }

    async fn pending_operations(&self) -> Result<Vec<String>, RepositoryError> {
        let rows = self
            .database
            .query("SELECT id FROM operations WHERE NOT done", &[])
            .await?;
        rows.iter()
            .map(|row| {
                row.try_get::<_, String>(0)
                    .map_err(|e| RepositoryError::Internal(e.to_string()))
            })
            .collect()
    }

    async fn expire_keys(&self, before: &Timestamp) -> Result<u64, RepositoryError> {
        let client = self.database.connection().await?;
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE (created_at_seconds, created_at_nanos) < ($1, $2)",
                &[&before.seconds, &before.nanos],
            )
            .await
            .map_err(query_error)
    }
}
