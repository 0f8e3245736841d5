//! `--data-dir`: the writes kept on disk in redb, an embedded, crash-safe
//! B-tree store in pure Rust. A commit of a write is one redb transaction,
//! durable (fsync) before the write is acknowledged; a process killed at any
//! point leaves the file at the last commit. At start the tables are read back
//! into memory (`WrittenCatalog::durable`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::domain::operation::{IdempotencyKey, StoredOperation};
use crate::proto::Timestamp;
use crate::store::RepositoryError;

/// Written compute images by id: [`IMAGE`] and the encoding, or [`DELETED`]
/// and the folder of the image deleted.
const COMPUTE_IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("compute_images");
const CONTAINER_DELETED: TableDefinition<&str, ()> = TableDefinition::new("container_deleted");
const OPERATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("operations");
/// By subject, method and key (joined by NUL, which none of them holds).
const IDEMPOTENCY_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency_keys");

/// Per image, its access bindings (a `ListAccessBindingsResponse` encoding).
const ACCESS_BINDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("access_bindings");

const IMAGE: u8 = 1;
const DELETED: u8 = 0;

/// The name of the database file in the data directory.
pub const FILE_NAME: &str = "image-service.redb";

/// One change of a committed write, as kept and replayed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An image written (`Some`) or deleted (`None`).
    ComputeImage {
        id: String,
        folder: String,
        image: Option<Bytes>,
    },
    ContainerDeleted {
        id: String,
    },
    Operation {
        encoded: Bytes,
    },
    Key {
        key: IdempotencyKey,
        operation_id: String,
        at: Timestamp,
    },
    KeyExpired {
        key: IdempotencyKey,
    },
    Bindings {
        image_id: String,
        encoded: Bytes,
    },
}

/// The record of an idempotency key.
#[derive(Clone, PartialEq, prost::Message)]
struct KeyRecord {
    #[prost(string, tag = "1")]
    subject: String,
    #[prost(string, tag = "2")]
    method: String,
    #[prost(string, tag = "3")]
    key: String,
    #[prost(string, tag = "4")]
    operation_id: String,
    #[prost(message, optional, tag = "5")]
    at: Option<Timestamp>,
}

fn key_text(key: &IdempotencyKey) -> String {
    format!("{}\0{}\0{}", key.subject, key.method, key.key)
}

/// The writes' database in a data directory.
#[derive(Clone)]
pub struct DurableLog {
    database: Arc<Database>,
    path: PathBuf,
}

/// Why the data directory can't be used; the start is refused.
#[derive(Debug, thiserror::Error)]
#[error("data directory {}: {problem}", path.display())]
pub struct DataDirError {
    pub path: PathBuf,
    pub problem: String,
}

fn internal(path: &Path, err: impl std::fmt::Display) -> RepositoryError {
    RepositoryError::Internal(format!("{}: {err}", path.display()))
}

impl DurableLog {
    /// Opens (or creates) the database in `dir`, creating `dir` if needed.
    pub fn open(dir: &Path) -> Result<Self, DataDirError> {
        let fail = |problem: String| DataDirError {
            path: dir.to_owned(),
            problem,
        };
        std::fs::create_dir_all(dir).map_err(|err| fail(format!("cannot create: {err}")))?;
        let path = dir.join(FILE_NAME);
        let database = Database::create(&path)
            .map_err(|err| fail(format!("cannot open {FILE_NAME}: {err}")))?;
        // The tables exist from the first start on, so reading never meets a missing one.
        let created = (|| -> Result<(), redb::Error> {
            let tx = database.begin_write()?;
            tx.open_table(COMPUTE_IMAGES)?;
            tx.open_table(CONTAINER_DELETED)?;
            tx.open_table(OPERATIONS)?;
            tx.open_table(IDEMPOTENCY_KEYS)?;
            tx.open_table(ACCESS_BINDINGS)?;
            tx.commit()?;
            Ok(())
        })();
        created.map_err(|err| fail(format!("cannot create the tables: {err}")))?;
        Ok(Self {
            database: Arc::new(database),
            path,
        })
    }

    /// Every change kept, as one replay from empty: images, deletions,
    /// operations in the order they started, then keys.
    pub fn replay(&self) -> Result<Vec<Change>, RepositoryError> {
        let fail = |err: redb::Error| internal(&self.path, err);
        let tx = self.database.begin_read().map_err(|e| fail(e.into()))?;
        let mut changes = Vec::new();
        let images = tx.open_table(COMPUTE_IMAGES).map_err(|e| fail(e.into()))?;
        for entry in images.iter().map_err(|e| fail(e.into()))? {
            let (id, value) = entry.map_err(|e| fail(e.into()))?;
            let (id, value) = (id.value().to_owned(), value.value());
            let change = match value.split_first() {
                Some((&IMAGE, encoded)) => {
                    let folder = crate::domain::encoded::encoded_string_field(encoded, 2)
                        .unwrap_or_default();
                    Change::ComputeImage {
                        id,
                        folder,
                        image: Some(Bytes::copy_from_slice(encoded)),
                    }
                }
                Some((&DELETED, folder)) => Change::ComputeImage {
                    id,
                    folder: String::from_utf8_lossy(folder).into_owned(),
                    image: None,
                },
                _ => {
                    return Err(internal(
                        &self.path,
                        format!("compute image {id}: unknown record kind"),
                    ));
                }
            };
            changes.push(change);
        }
        let deleted = tx
            .open_table(CONTAINER_DELETED)
            .map_err(|e| fail(e.into()))?;
        for entry in deleted.iter().map_err(|e| fail(e.into()))? {
            let (id, _) = entry.map_err(|e| fail(e.into()))?;
            changes.push(Change::ContainerDeleted {
                id: id.value().to_owned(),
            });
        }
        let operations = tx.open_table(OPERATIONS).map_err(|e| fail(e.into()))?;
        let mut started = Vec::new();
        for entry in operations.iter().map_err(|e| fail(e.into()))? {
            let (id, value) = entry.map_err(|e| fail(e.into()))?;
            let encoded = Bytes::copy_from_slice(value.value());
            let operation = StoredOperation::decode(encoded.as_ref())
                .map_err(|err| internal(&self.path, format!("operation {}: {err}", id.value())))?;
            let at = operation.operation.created_at.unwrap_or_default();
            started.push(((at.seconds, at.nanos, id.value().to_owned()), encoded));
        }
        started.sort_by(|a, b| a.0.cmp(&b.0));
        changes.extend(
            started
                .into_iter()
                .map(|(_, encoded)| Change::Operation { encoded }),
        );
        let keys = tx
            .open_table(IDEMPOTENCY_KEYS)
            .map_err(|e| fail(e.into()))?;
        for entry in keys.iter().map_err(|e| fail(e.into()))? {
            let (text, value) = entry.map_err(|e| fail(e.into()))?;
            let record = KeyRecord::decode(value.value()).map_err(|err| {
                internal(
                    &self.path,
                    format!("idempotency key {:?}: {err}", text.value()),
                )
            })?;
            changes.push(Change::Key {
                key: IdempotencyKey {
                    subject: record.subject,
                    method: record.method,
                    key: record.key,
                },
                operation_id: record.operation_id,
                at: record.at.unwrap_or_default(),
            });
        }
        let bindings = tx.open_table(ACCESS_BINDINGS).map_err(|e| fail(e.into()))?;
        for entry in bindings.iter().map_err(|e| fail(e.into()))? {
            let (id, value) = entry.map_err(|e| fail(e.into()))?;
            changes.push(Change::Bindings {
                image_id: id.value().to_owned(),
                encoded: Bytes::copy_from_slice(value.value()),
            });
        }
        Ok(changes)
    }

    /// Keeps `changes` in one durable transaction: all of them, or (on an
    /// error, or a crash before it returns) none.
    pub async fn append(&self, changes: Vec<Change>) -> Result<(), RepositoryError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.append_now(&changes))
            .await
            .map_err(|err| internal(&self.path, format!("the write task failed: {err}")))?
    }

    fn append_now(&self, changes: &[Change]) -> Result<(), RepositoryError> {
        let fail = |err: redb::Error| internal(&self.path, err);
        let tx = self.database.begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut images = tx.open_table(COMPUTE_IMAGES).map_err(|e| fail(e.into()))?;
            let mut deleted = tx
                .open_table(CONTAINER_DELETED)
                .map_err(|e| fail(e.into()))?;
            let mut operations = tx.open_table(OPERATIONS).map_err(|e| fail(e.into()))?;
            let mut keys = tx
                .open_table(IDEMPOTENCY_KEYS)
                .map_err(|e| fail(e.into()))?;
            let mut bindings = tx.open_table(ACCESS_BINDINGS).map_err(|e| fail(e.into()))?;
            for change in changes {
                match change {
                    Change::ComputeImage { id, folder, image } => {
                        let value = match image {
                            Some(encoded) => [&[IMAGE][..], encoded].concat(),
                            None => [&[DELETED][..], folder.as_bytes()].concat(),
                        };
                        images
                            .insert(id.as_str(), value.as_slice())
                            .map_err(|e| fail(e.into()))?;
                    }
                    Change::ContainerDeleted { id } => {
                        deleted
                            .insert(id.as_str(), ())
                            .map_err(|e| fail(e.into()))?;
                    }
                    Change::Operation { encoded } => {
                        let operation = StoredOperation::decode(encoded.as_ref())
                            .map_err(|err| internal(&self.path, err))?;
                        operations
                            .insert(operation.id(), encoded.as_ref())
                            .map_err(|e| fail(e.into()))?;
                    }
                    Change::Key {
                        key,
                        operation_id,
                        at,
                    } => {
                        let record = KeyRecord {
                            subject: key.subject.clone(),
                            method: key.method.clone(),
                            key: key.key.clone(),
                            operation_id: operation_id.clone(),
                            at: Some(*at),
                        };
                        keys.insert(key_text(key).as_str(), record.encode_to_vec().as_slice())
                            .map_err(|e| fail(e.into()))?;
                    }
                    Change::KeyExpired { key } => {
                        keys.remove(key_text(key).as_str())
                            .map_err(|e| fail(e.into()))?;
                    }
                    // No bindings left: nothing kept.
                    Change::Bindings { image_id, encoded } if encoded.is_empty() => {
                        bindings
                            .remove(image_id.as_str())
                            .map_err(|e| fail(e.into()))?;
                    }
                    Change::Bindings { image_id, encoded } => {
                        bindings
                            .insert(image_id.as_str(), encoded.as_ref())
                            .map_err(|e| fail(e.into()))?;
                    }
                }
            }
        }
        tx.commit().map_err(|e| fail(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_come_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = DurableLog::open(dir.path()).unwrap();
        let operation = StoredOperation {
            operation: crate::proto::operation::Operation {
                id: "fd8op".into(),
                ..Default::default()
            },
            image_id: "fd8img".into(),
            ..Default::default()
        };
        let key = IdempotencyKey {
            subject: "ci".into(),
            method: "/m".into(),
            key: "k".into(),
        };
        let changes = vec![
            Change::ComputeImage {
                id: "fd8img".into(),
                folder: "b1g".into(),
                image: None,
            },
            Change::ContainerDeleted { id: "crp1".into() },
            Change::Operation {
                encoded: Bytes::from(operation.encode_to_vec()),
            },
            Change::Key {
                key: key.clone(),
                operation_id: "fd8op".into(),
                at: Timestamp::default(),
            },
        ];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(log.append(changes.clone())).unwrap();
        drop(log);
        let reopened = DurableLog::open(dir.path()).unwrap();
        assert_eq!(reopened.replay().unwrap(), changes);
        runtime
            .block_on(reopened.append(vec![Change::KeyExpired { key }]))
            .unwrap();
        assert_eq!(reopened.replay().unwrap().len(), 3);
    }
}
