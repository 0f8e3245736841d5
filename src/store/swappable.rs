//! A backend that can be replaced while it serves: catalog reload builds a new
//! in-memory repository beside the live one and swaps it in with one atomic
//! pointer store. A call reads the pointer once and finishes on the
//! repository it found, so calls in flight during a swap all succeed (on the
//! old catalog) and later ones see the new catalog. Reading the pointer is
//! lock-free (arc-swap), so Get stays as cheap as before.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;

use super::{
    ComputeImageRepository, ContainerImageRepository, EncodedPage, ListError, Page, RepositoryError,
};
use crate::domain::compute::{ComputeImageQuery, Family};
use crate::domain::container::ContainerImageQuery;
use crate::domain::page::PageRequest;
use crate::domain::{FolderId, ImageId};
use crate::proto::{compute, container_registry};

/// Serves both APIs from whichever `R` was stored last. Every trait method is
/// delegated, those with a default too: a default here would hide `R`'s own
/// (a method added to the traits must be added here as well).
pub struct SwappableRepository<R> {
    current: ArcSwap<R>,
}

impl<R> SwappableRepository<R> {
    pub fn new(initial: R) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
        }
    }

    /// Serves `next` from now on; calls already running finish on the old one,
    /// which is freed when the last of them ends.
    pub fn swap(&self, next: R) {
        self.current.store(Arc::new(next));
    }

    /// The repository being served now.
    pub fn current(&self) -> Arc<R> {
        self.current.load_full()
    }
}

#[async_trait]
impl<R: ComputeImageRepository> ComputeImageRepository for SwappableRepository<R> {
    async fn get_compute_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        self.current.load().get_compute_image(id).await
    }

    async fn list_compute_images(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<Page<compute::Image>, ListError> {
        self.current.load().list_compute_images(query, page).await
    }

    async fn latest_compute_image_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        self.current
            .load()
            .latest_compute_image_by_family(folder, family)
            .await
    }

    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        self.current.load().get_compute_image_encoded(id).await
    }

    async fn list_compute_images_encoded(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        self.current
            .load()
            .list_compute_images_encoded(query, page)
            .await
    }
}

#[async_trait]
impl<R: ContainerImageRepository> ContainerImageRepository for SwappableRepository<R> {
    async fn get_container_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<container_registry::Image>>, RepositoryError> {
        self.current.load().get_container_image(id).await
    }

    async fn list_container_images(
        &self,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<Page<container_registry::Image>, ListError> {
        self.current.load().list_container_images(query, page).await
    }

    async fn get_container_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        self.current.load().get_container_image_encoded(id).await
    }

    async fn list_container_images_encoded(
        &self,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        self.current
            .load()
            .list_container_images_encoded(query, page)
            .await
    }

    async fn registry_folder(&self, registry_id: &str) -> Result<Option<String>, RepositoryError> {
        self.current.load().registry_folder(registry_id).await
    }
}
