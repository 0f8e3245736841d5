//! Where images come from. The gRPC and REST faces only see these traits, so a
//! backend (the in-memory catalog now, PostgreSQL later) can change without them
//! knowing.

/// Implements [`ComputeImageRepository`] and [`ContainerImageRepository`] for a
/// backend that serves both APIs alike, by its inherent methods generic over
/// the API ([`Api`]): `get_image_encoded` and `list_images_encoded`, plus
/// `latest_by_family` and `folder_of_registry`.
macro_rules! impl_repositories {
    ($backend:ty) => {
        impl_repositories!(@api $backend, ComputeImageRepository, Compute,
            $crate::domain::compute::ComputeImageQuery,
            get_compute_image_encoded, list_compute_images_encoded,
            async fn latest_compute_image_by_family(
                &self,
                folder: &$crate::domain::FolderId,
                family: &$crate::domain::compute::Family,
            ) -> Result<
                Option<std::sync::Arc<$crate::proto::compute::Image>>,
                $crate::store::RepositoryError,
            > {
                self.latest_by_family(folder, family).await
            }
        );
        impl_repositories!(@api $backend, ContainerImageRepository, Container,
            $crate::domain::container::ContainerImageQuery,
            get_container_image_encoded, list_container_images_encoded,
            async fn registry_folder(
                &self,
                registry_id: &str,
            ) -> Result<Option<String>, $crate::store::RepositoryError> {
                self.folder_of_registry(registry_id).await
            }
        );
    };
    (@api $backend:ty, $trait:ident, $api:ident, $query:ty,
        $get_encoded:ident, $list_encoded:ident, $($own:tt)*) => {
        #[async_trait::async_trait]
        impl $crate::store::$trait for $backend {
            async fn $get_encoded(
                &self,
                id: &$crate::domain::ImageId,
            ) -> Result<Option<bytes::Bytes>, $crate::store::RepositoryError> {
                self.get_image_encoded::<$crate::store::$api>(id).await
            }

            async fn $list_encoded(
                &self,
                query: &$query,
                page: &$crate::domain::page::PageRequest,
            ) -> Result<$crate::store::EncodedPage, $crate::store::ListError> {
                self.list_images_encoded::<$crate::store::$api>(query, page).await
            }

            $($own)*
        }
    };
}

pub mod catalog;
mod memory;
pub mod postgres;
pub mod replica;
mod swappable;
pub mod write;
pub mod written;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;

pub use memory::MemoryRepository;
pub use postgres::PostgresRepository;
pub use swappable::{Delegate, SwappableRepository};
pub use write::{BindingRepository, OperationPage, WriteRepository, WriteTransaction};
pub use written::WrittenCatalog;

use crate::domain::compute::{ComputeImageQuery, Family};
use crate::domain::container::ContainerImageQuery;
use crate::domain::page::PageRequest;
use crate::domain::{FolderId, ImageId};
use crate::proto::{compute, container_registry};

/// One of the two APIs, for the code of a backend that serves both alike.
pub(crate) trait Api: Send + Sync + 'static {
    type Image: Message + Default + Send + Sync + 'static;
    type Query: Send + Sync + 'static;
}

/// `yandex.cloud.compute.v1`: marks code written once for both APIs.
pub struct Compute;

/// `yandex.cloud.containerregistry.v1`.
pub struct Container;

impl Api for Compute {
    type Image = compute::Image;
    type Query = ComputeImageQuery;
}

impl Api for Container {
    type Image = container_registry::Image;
    type Query = ContainerImageQuery;
}

/// Why a backend could not answer. Not-found is not an error: lookups answer `None`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// Temporarily out of reach (connection refused, pool exhausted, timeout).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Broken data or a bug; retrying won't help.
    #[error("internal: {0}")]
    Internal(String),
    /// The running call's deadline (`grpc-timeout`) passed before the backend answered.
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
}

/// Why a List could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The image the page token continues after is gone, so there is no
    /// position to continue from.
    #[error("the image {0} that the page token continues after no longer exists")]
    CursorNotFound(ImageId),
    #[error(transparent)]
    Backend(#[from] RepositoryError),
}

/// A query fetches one item more than the page size to tell whether another
/// page follows: the page without it, and whether it was there.
pub(crate) fn split_extra<T>(mut items: Vec<T>, size: usize) -> (Vec<T>, bool) {
    let more = items.len() > size;
    items.truncate(size);
    (items, more)
}

/// One page of a List with each image as its protobuf encoding, for a face
/// that sends the images as they are (a backend that stores them encoded hands
/// out slices of its storage: nothing is decoded or re-encoded per image).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodedPage {
    /// At most the page size, in the query's order.
    pub items: Vec<Bytes>,
    /// The id of the page's last image when more images follow it (the next
    /// page continues after it); `None` on the last page.
    pub continues_after: Option<String>,
}

/// The compute images of a backend. Images are answered as their protobuf
/// encodings: the faces send them as they are, and a backend that stores them
/// encoded hands out its own bytes.
#[async_trait]
pub trait ComputeImageRepository: Send + Sync + 'static {
    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError>;

    /// The images of `query.folder_id` that pass `query.filter`, in
    /// `query.order` then id ascending, from just after `page.after`'s position
    /// in that order (`page.after` need not pass the filter; it must exist).
    async fn list_compute_images_encoded(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError>;

    /// The READY image of `family` in `folder` with the latest `created_at`;
    /// of several, the one with the smallest id (the first that List ordered by
    /// `createdAt desc` would show).
    async fn latest_compute_image_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError>;
}

/// The container images of a backend, encoded as for [`ComputeImageRepository`].
#[async_trait]
pub trait ContainerImageRepository: Send + Sync + 'static {
    async fn get_container_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError>;

    /// The images in `query.scope` that pass `query.filter`, in `query.order`
    /// then id ascending, from just after `page.after`'s position in that order.
    async fn list_container_images_encoded(
        &self,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError>;

    /// The folder of a registry, for authorization (an image is in the folder
    /// of its registry). `None` for a registry this backend doesn't know, and
    /// then only callers of every folder may read its images.
    async fn registry_folder(&self, registry_id: &str) -> Result<Option<String>, RepositoryError>;
}

/// The backends behind both APIs, shared by every face and connection.
#[derive(Clone)]
pub struct Repositories {
    pub compute: Arc<dyn ComputeImageRepository>,
    pub container: Arc<dyn ContainerImageRepository>,
    /// Where writes go; `None`: a read-only backend (writes answer UNIMPLEMENTED).
    pub writes: Option<Arc<dyn WriteRepository>>,
}

impl Repositories {
    /// Both APIs served from one in-memory catalog, writes kept in memory.
    pub fn in_memory(memory: MemoryRepository) -> Self {
        Self::written(Arc::new(WrittenCatalog::in_memory(Arc::new(memory))))
    }

    /// Both APIs served from one in-memory catalog that can be replaced while
    /// serving (catalog reload), writes kept in memory.
    pub fn swappable(repository: Arc<SwappableRepository<MemoryRepository>>) -> Self {
        Self::written(Arc::new(WrittenCatalog::in_memory(repository)))
    }

    /// Both APIs served from a catalog with the writes over it.
    pub fn written<B>(written: Arc<WrittenCatalog<B>>) -> Self
    where
        B: ComputeImageRepository + ContainerImageRepository,
    {
        Self {
            compute: written.clone(),
            container: written.clone(),
            writes: Some(written),
        }
    }

    /// Both APIs served from memory, kept in step with a PostgreSQL database
    /// that takes the writes.
    pub fn cached(replica: Arc<replica::CachedReplica>) -> Self {
        Self {
            compute: replica.clone(),
            container: replica.clone(),
            writes: Some(replica),
        }
    }

    /// Both APIs served from one PostgreSQL database.
    pub fn postgres(repository: PostgresRepository) -> Self {
        let repository = Arc::new(repository);
        Self {
            compute: repository.clone(),
            container: repository.clone(),
            writes: Some(repository),
        }
    }
}
