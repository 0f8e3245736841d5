//! The PostgreSQL backend: the catalog in three tables, each image's full
//! protobuf encoding in `body` next to the columns queries filter and sort on.
//!
//! - `pool`: connections with bounded waits and a statement timeout, errors
//!   mapped to [`RepositoryError`];
//! - `migrations`: the schema, versioned, applied under an advisory lock;
//! - `sql`: the List queries (filter, order, keyset paging) as SQL;
//! - `catalog_io`: import and export of catalog files;
//! - `tls`: TLS to the server, from the URL's `sslmode` and `sslrootcert`;
//! - `writes`: the write API's transactions (images, operations, keys);
//! - `changes`: the change sequence cached replicas follow.
//!
//! Only portable SQL (no PL/pgSQL, no triggers), so CockroachDB and YugabyteDB
//! can hold it too. Text columns use the "C" collation: bytewise order, the
//! order of Rust strings, which the in-memory backend sorts by.

mod catalog_io;
pub mod changes;
mod migrations;
mod pool;
mod sql;
mod tls;
mod writes;

use std::sync::Arc;

use bytes::{Buf, Bytes};
use prost::Message;
use prost::encoding::{decode_key, skip_field};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub use catalog_io::{ImportMode, export_catalog, import_catalog};
pub use migrations::{MIGRATIONS, check_schema, migrate};
pub use pool::{Database, DatabaseError, ErrorKind, PoolSettings, PoolState};

use super::{Api, Compute, Container, EncodedPage, ListError, RepositoryError, split_extra};
use crate::domain::compute::{ComputeImageQuery, Family};
use crate::domain::container::ContainerImageQuery;
use crate::domain::page::PageRequest;
use crate::domain::{FolderId, ImageId};
use crate::proto::compute;
use crate::proto::compute::image::Status;

/// Both APIs served from one database.
#[derive(Clone)]
pub struct PostgresRepository {
    database: Database,
    /// Whether writes notify the replicas listening (see [`changes`]).
    notify: bool,
}

impl PostgresRepository {
    pub fn new(database: Database) -> Self {
        Self {
            database,
            notify: true,
        }
    }

    /// Writes that notify only if the engine has notifications (asked once).
    pub async fn probed(database: Database) -> Result<Self, RepositoryError> {
        let notify = changes::notifications_supported(&database).await?;
        Ok(Self { database, notify })
    }

    /// Whether its writes notify listening replicas.
    pub fn notifies(&self) -> bool {
        self.notify
    }

    pub fn database(&self) -> &Database {
        &self.database
    }
}

fn decode_row<T: Message + Default>(row: &Row) -> Result<T, RepositoryError> {
    T::decode(body_of(row)?)
        .map_err(|err| RepositoryError::Internal(format!("stored image is corrupt: {err}")))
}

/// `body` (column 0) of a row, as stored.
fn body_of(row: &Row) -> Result<&[u8], RepositoryError> {
    row.try_get(0)
        .map_err(|err| RepositoryError::Internal(format!("unexpected row: {err}")))
}

/// The id (field 1 of both APIs' images) of an encoded image, read without
/// decoding the rest.
#[derive(Clone, PartialEq, Message)]
struct IdOnly {
    #[prost(string, tag = "1")]
    id: String,
}

/// Whether `body` is a sequence of well-formed protobuf fields: a cheap check
/// (nothing is allocated, nested messages are skipped whole) that a body sent
/// as it is is not truncated or garbage, as the decoding path would notice.
fn well_formed(mut body: &[u8]) -> bool {
    while body.has_remaining() {
        let Ok((tag, wire_type)) = decode_key(&mut body) else {
            return false;
        };
        if skip_field(wire_type, tag, &mut body, Default::default()).is_err() {
            return false;
        }
    }
    true
}

/// A page of the stored encodings from `size + 1` rows at most, sent as they
/// are: no decode and re-encode per image.
fn encoded_page_from(rows: &[Row], size: usize) -> Result<EncodedPage, RepositoryError> {
    let bodies = rows.iter().map(body_of).collect::<Result<Vec<_>, _>>()?;
    let (bodies, more) = split_extra(bodies, size);
    if !bodies.iter().all(|body| well_formed(body)) {
        return Err(RepositoryError::Internal(
            "stored image is corrupt: not a protobuf message".into(),
        ));
    }
    let continues_after = match bodies.last() {
        Some(last) if more => Some(
            IdOnly::decode(*last)
                .map_err(|err| {
                    RepositoryError::Internal(format!("stored image is corrupt: {err}"))
                })?
                .id,
        ),
        _ => None,
    };
    Ok(EncodedPage {
        items: bodies.into_iter().map(Bytes::copy_from_slice).collect(),
        continues_after,
    })
}

/// The page size plus one, as a SQL LIMIT.
fn limit(size: usize) -> i64 {
    i64::try_from(size).map_or(i64::MAX, |s| s.saturating_add(1))
}

/// An API's table and its List query.
trait Stored: Api {
    const TABLE: &'static str;
    const GET: &'static str;
    fn list_statement(query: &Self::Query, page: &PageRequest) -> sql::Statement;
}

impl Stored for Compute {
    const TABLE: &'static str = "compute_images";
    const GET: &'static str = "SELECT body FROM compute_images WHERE id = $1";

    fn list_statement(query: &ComputeImageQuery, page: &PageRequest) -> sql::Statement {
        sql::compute_list(query, page)
    }
}

impl Stored for Container {
    const TABLE: &'static str = "container_images";
    const GET: &'static str = "SELECT body FROM container_images WHERE id = $1";

    fn list_statement(query: &ContainerImageQuery, page: &PageRequest) -> sql::Statement {
        sql::container_list(query, page)
    }
}

impl_repositories!(PostgresRepository);

impl PostgresRepository {
    async fn get_image_encoded<A: Stored>(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        // Decoded first, so that a corrupt body is an error rather than bytes
        // sent on; re-encoded, so that what is sent is what was decoded.
        let row = self.database.query_opt(A::GET, &[&id.as_str()]).await?;
        row.map(|row| decode_row::<A::Image>(&row).map(|image| Bytes::from(image.encode_to_vec())))
            .transpose()
    }

    async fn list_images_encoded<A: Stored>(
        &self,
        query: &A::Query,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        let rows = self.list_rows::<A>(query, page).await?;
        Ok(encoded_page_from(&rows, page.size.get())?)
    }

    /// The rows of a List page, at most one more than the page size.
    async fn list_rows<A: Stored>(
        &self,
        query: &A::Query,
        page: &PageRequest,
    ) -> Result<Vec<Row>, ListError> {
        let statement = A::list_statement(query, page);
        let params: Vec<&(dyn ToSql + Sync)> = statement.params();
        let rows = self.database.query(&statement.text, &params).await?;
        if rows.is_empty() {
            self.check_cursor(A::TABLE, page).await?;
        }
        Ok(rows)
    }

    async fn latest_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        let row = self
            .database
            .query_opt(
                "SELECT body FROM compute_images \
                 WHERE folder_id = $1 AND family = $2 AND status = $3 \
                 ORDER BY created_at_seconds DESC, created_at_nanos DESC, id ASC LIMIT 1",
                &[&folder.as_str(), &family.as_str(), &(Status::Ready as i32)],
            )
            .await?;
        row.map(|row| decode_row(&row).map(Arc::new)).transpose()
    }

    async fn folder_of_registry(
        &self,
        registry_id: &str,
    ) -> Result<Option<String>, RepositoryError> {
        let row = self
            .database
            .query_opt(
                "SELECT folder_id FROM container_registries WHERE id = $1",
                &[&registry_id],
            )
            .await?;
        row.map(|row| {
            row.try_get::<_, String>(0)
                .map_err(|err| RepositoryError::Internal(format!("registry folder_id: {err}")))
        })
        .transpose()
    }
}

impl PostgresRepository {
    /// An empty page after a cursor: either the end, or the cursor's image is
    /// gone (its sort key looked up as NULL, so nothing compared after it).
    /// Only then does a List take a second round trip.
    async fn check_cursor(&self, table: &'static str, page: &PageRequest) -> Result<(), ListError> {
        let Some(after) = &page.after else {
            return Ok(());
        };
        let text = format!("SELECT 1 FROM {table} WHERE id = $1");
        let found = self
            .database
            .query_opt(&text, &[&after.as_str()])
            .await?
            .is_some();
        if found {
            Ok(())
        } else {
            Err(ListError::CursorNotFound(after.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::container_registry;

    #[test]
    fn a_body_is_checked_and_its_id_read_without_decoding() {
        let image = container_registry::Image {
            id: "crp1".into(),
            name: "crpreg/app".into(),
            layers: vec![container_registry::Blob::default(); 3],
            ..Default::default()
        };
        let body = image.encode_to_vec();
        assert!(well_formed(&body));
        assert!(well_formed(&[]));
        assert_eq!(IdOnly::decode(body.as_slice()).unwrap().id, "crp1");
        // Truncated, or not protobuf at all.
        assert!(!well_formed(&body[..body.len() - 1]));
        assert!(!well_formed(b"\xff\xff\xff"));
    }
}
