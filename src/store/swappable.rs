//! Backends that serve from another one, and the one that can be replaced
//! while it serves.
//!
//! A wrapper implements [`Delegate`] (which backend to ask now) and gets both
//! repository traits from the blanket impls here: every method is passed on,
//! those with a default too (a default would hide the backend's own fast
//! path), so a method added to the traits is passed on once, here, for every
//! wrapper.
//!
//! [`SwappableRepository`]: catalog reload builds a new in-memory repository
//! beside the live one and swaps it in with one atomic pointer store. A call
//! reads the pointer once and finishes on the repository it found, so calls in
//! flight during a swap all succeed (on the old catalog) and later ones see
//! the new catalog. Reading the pointer is lock-free (arc-swap), so Get stays
//! as cheap as before.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;

use super::{
    ComputeImageRepository, ContainerImageRepository, EncodedPage, ListError, RepositoryError,
};
use crate::domain::compute::{ComputeImageQuery, Family};
use crate::domain::container::ContainerImageQuery;
use crate::domain::page::PageRequest;
use crate::domain::{FolderId, ImageId};
use crate::proto::compute;

/// A backend that answers by asking [`Delegate::backend`].
pub trait Delegate: Send + Sync + 'static {
    type Backend: Send + Sync + 'static;

    /// The backend to ask for this call.
    fn backend(&self) -> impl Deref<Target = Self::Backend> + Send;
}

#[async_trait]
impl<T> ComputeImageRepository for T
where
    T: Delegate,
    T::Backend: ComputeImageRepository,
{
    async fn latest_compute_image_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        self.backend()
            .latest_compute_image_by_family(folder, family)
            .await
    }

    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        self.backend().get_compute_image_encoded(id).await
    }

    async fn list_compute_images_encoded(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        self.backend()
            .list_compute_images_encoded(query, page)
            .await
    }
}

#[async_trait]
impl<T> ContainerImageRepository for T
where
    T: Delegate,
    T::Backend: ContainerImageRepository,
{
    async fn registry_folder(&self, registry_id: &str) -> Result<Option<String>, RepositoryError> {
        self.backend().registry_folder(registry_id).await
    }

    async fn get_container_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        self.backend().get_container_image_encoded(id).await
    }

    async fn list_container_images_encoded(
        &self,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        self.backend()
            .list_container_images_encoded(query, page)
            .await
    }
}

/// Serves both APIs from whichever `R` was stored last.
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

impl<R: Send + Sync + 'static> Delegate for SwappableRepository<R> {
    type Backend = R;

    fn backend(&self) -> impl Deref<Target = R> + Send {
        // A guard of the pointer read once: the call finishes on this backend.
        SwappedIn(self.current.load())
    }
}

/// The backend a call found, kept for the call.
struct SwappedIn<R>(arc_swap::Guard<Arc<R>>);

impl<R> Deref for SwappedIn<R> {
    type Target = R;

    fn deref(&self) -> &R {
        &self.0
    }
}
