//! The embedded backend: the whole catalog in memory, read without locks.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ComputeImageRepository, ContainerImageRepository, RepositoryError};
use crate::catalog::{Catalog, ImageList};
use crate::domain::ImageId;
use crate::proto::{compute, container_registry};

/// An immutable snapshot of a validated catalog. The catalog's lists are
/// already indexed by id and hold each image encoded: the encoded lookups hand
/// out the stored bytes, the others decode the one image they return.
pub struct MemoryRepository {
    compute: ImageList<compute::Image>,
    container: ImageList<container_registry::Image>,
}

impl MemoryRepository {
    /// Serves a catalog. Ids are already known to be unique: [`Catalog`] checked them.
    pub fn new(catalog: Catalog) -> Self {
        Self {
            compute: catalog.compute_images,
            container: catalog.container_images,
        }
    }

    pub fn compute_len(&self) -> usize {
        self.compute.len()
    }

    pub fn container_len(&self) -> usize {
        self.container.len()
    }
}

fn lookup<T: prost::Message + Default>(
    list: &ImageList<T>,
    id: &ImageId,
) -> Result<Option<Arc<T>>, RepositoryError> {
    match list.get(id.as_str()) {
        Ok(image) => Ok(image.map(Arc::new)),
        // Only the catalog loader writes these bytes, so this is a bug, not bad input.
        Err(err) => Err(RepositoryError::Internal(format!(
            "stored image {id} does not decode: {err}"
        ))),
    }
}

#[async_trait]
impl ComputeImageRepository for MemoryRepository {
    async fn get_compute_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        lookup(&self.compute, id)
    }

    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        Ok(self.compute.get_encoded(id.as_str()))
    }
}

#[async_trait]
impl ContainerImageRepository for MemoryRepository {
    async fn get_container_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<container_registry::Image>>, RepositoryError> {
        lookup(&self.container, id)
    }

    async fn get_container_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        Ok(self.container.get_encoded(id.as_str()))
    }
}
