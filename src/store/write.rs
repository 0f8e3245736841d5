//! What a backend offers the writes: a transaction that reads and changes
//! images, operations and idempotency keys together, and the reads of
//! operations. The rules of the writes (what Create checks, what finishing an
//! operation does) are written once, in `service::writes`, over these.

use async_trait::async_trait;

use super::RepositoryError;
use crate::domain::operation::{IdempotencyKey, StoredOperation};
use crate::proto::Timestamp;
use crate::proto::yandex::cloud::access::AccessBinding;
use crate::proto::{compute, container_registry};

/// One atomic change: nothing it wrote is seen by anyone until [`commit`]
/// returns, and then all of it is. Dropped without a commit, it changes nothing.
///
/// [`commit`]: WriteTransaction::commit
#[async_trait]
pub trait WriteTransaction: Send {
    /// Holds writers of the same `scope` (a folder, a key) off until this
    /// transaction ends, so checks and the writes they allow can't interleave.
    async fn lock(&mut self, scope: &str) -> Result<(), RepositoryError>;

    async fn compute_image(&mut self, id: &str) -> Result<Option<compute::Image>, RepositoryError>;

    async fn container_image(
        &mut self,
        id: &str,
    ) -> Result<Option<container_registry::Image>, RepositoryError>;

    /// The id of an image named `name` in `folder`, other than `except`.
    async fn compute_image_named(
        &mut self,
        folder: &str,
        name: &str,
        except: &str,
    ) -> Result<Option<String>, RepositoryError>;

    async fn put_compute_image(&mut self, image: &compute::Image) -> Result<(), RepositoryError>;

    async fn delete_compute_image(&mut self, id: &str) -> Result<(), RepositoryError>;

    async fn delete_container_image(&mut self, id: &str) -> Result<(), RepositoryError>;

    /// The operation started with `key` at or after `since` (older ones have expired).
    async fn operation_of_key(
        &mut self,
        key: &IdempotencyKey,
        since: &Timestamp,
    ) -> Result<Option<StoredOperation>, RepositoryError>;

    async fn operation(&mut self, id: &str) -> Result<Option<StoredOperation>, RepositoryError>;

    /// Stores `operation` (new or changed); a new one may come with the key
    /// that started it, which then names it.
    async fn put_operation(
        &mut self,
        operation: &StoredOperation,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), RepositoryError>;

    /// The access bindings of an image, in the order they were added.
    async fn access_bindings(
        &mut self,
        image_id: &str,
    ) -> Result<Vec<AccessBinding>, RepositoryError>;

    /// Replaces the bindings of an image; none: it has no bindings any more.
    async fn put_access_bindings(
        &mut self,
        image_id: &str,
        bindings: &[AccessBinding],
    ) -> Result<(), RepositoryError>;

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError>;
}

/// A page of an image's operations, newest first.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OperationPage {
    pub operations: Vec<StoredOperation>,
    /// The id of the page's last operation when more follow.
    pub continues_after: Option<String>,
}

impl OperationPage {
    /// The page of `found`, which holds up to one operation more than `limit`
    /// when more follow.
    pub fn of(found: Vec<StoredOperation>, limit: usize) -> Self {
        let (operations, more) = super::split_extra(found, limit);
        let continues_after = more
            .then(|| operations.last().map(|op| op.id().to_owned()))
            .flatten();
        Self {
            operations,
            continues_after,
        }
    }
}

/// The access bindings of compute images, as authorization reads them
/// (outside any write): only when a caller's folder roles are not enough.
#[async_trait]
pub trait BindingRepository: Send + Sync + 'static {
    /// The bindings of an image, in the order they were added.
    async fn image_bindings(&self, image_id: &str) -> Result<Vec<AccessBinding>, RepositoryError>;

    /// The images of `folder` that have bindings, each with its bindings.
    async fn folder_bindings(
        &self,
        folder: &str,
    ) -> Result<Vec<(String, Vec<AccessBinding>)>, RepositoryError>;
}

/// A backend that takes writes.
#[async_trait]
pub trait WriteRepository: BindingRepository {
    async fn begin(&self) -> Result<Box<dyn WriteTransaction + '_>, RepositoryError>;

    async fn operation(&self, id: &str) -> Result<Option<StoredOperation>, RepositoryError>;

    /// The operations of an image, newest first, after the one with id `after`.
    async fn image_operations(
        &self,
        image_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<OperationPage, RepositoryError>;

    /// The ids of the operations not done yet (to finish them after a restart).
    async fn pending_operations(&self) -> Result<Vec<String>, RepositoryError>;

    /// Forgets idempotency keys older than `before`; returns how many.
    async fn expire_keys(&self, before: &Timestamp) -> Result<u64, RepositoryError>;
}
