//! The embedded backend: the whole catalog in hash maps, read without locks.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{ComputeImageRepository, ContainerImageRepository, RepositoryError};
use crate::catalog::Catalog;
use crate::domain::ImageId;
use crate::proto::{compute, container_registry};

type Index<T> = HashMap<Box<str>, Arc<T>, foldhash::fast::RandomState>;

/// An immutable snapshot of a validated catalog, indexed by id.
pub struct MemoryRepository {
    compute: Index<compute::Image>,
    container: Index<container_registry::Image>,
}

impl MemoryRepository {
    /// Indexes a catalog. Ids are already known to be unique: [`Catalog`] checked them.
    pub fn new(catalog: Catalog) -> Self {
        fn index<T>(items: Vec<T>, id: impl Fn(&T) -> &str) -> Index<T> {
            let mut map = Index::with_capacity_and_hasher(items.len(), Default::default());
            for item in items {
                map.insert(id(&item).into(), Arc::new(item));
            }
            map
        }
        Self {
            compute: index(catalog.compute_images, |i| &i.id),
            container: index(catalog.container_images, |i| &i.id),
        }
    }

    pub fn compute_len(&self) -> usize {
        self.compute.len()
    }

    pub fn container_len(&self) -> usize {
        self.container.len()
    }
}

#[async_trait]
impl ComputeImageRepository for MemoryRepository {
    async fn get_compute_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        Ok(self.compute.get(id.as_str()).cloned())
    }
}

#[async_trait]
impl ContainerImageRepository for MemoryRepository {
    async fn get_container_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<container_registry::Image>>, RepositoryError> {
        Ok(self.container.get(id.as_str()).cloned())
    }
}
