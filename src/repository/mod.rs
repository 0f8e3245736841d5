//! Where images come from. The gRPC and REST faces only see these traits, so a
//! backend (the in-memory catalog now, PostgreSQL later) can change without them
//! knowing.

mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;

pub use memory::MemoryRepository;

use crate::domain::ImageId;
use crate::proto::{compute, container_registry};

/// Why a backend could not answer. Not-found is not an error: lookups answer `None`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// Temporarily out of reach (connection refused, pool exhausted, timeout).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Broken data or a bug; retrying won't help.
    #[error("internal: {0}")]
    Internal(String),
}

#[async_trait]
pub trait ComputeImageRepository: Send + Sync + 'static {
    async fn get_compute_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError>;

    /// The image encoded as protobuf, for a face that sends it as it is. A
    /// backend that stores images encoded overrides this to skip decoding and
    /// re-encoding them.
    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        let image = self.get_compute_image(id).await?;
        Ok(image.map(|image| Bytes::from(image.encode_to_vec())))
    }
}

#[async_trait]
pub trait ContainerImageRepository: Send + Sync + 'static {
    async fn get_container_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<container_registry::Image>>, RepositoryError>;

    /// The image encoded as protobuf; see [`ComputeImageRepository::get_compute_image_encoded`].
    async fn get_container_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        let image = self.get_container_image(id).await?;
        Ok(image.map(|image| Bytes::from(image.encode_to_vec())))
    }
}

/// The backends behind both APIs, shared by every face and connection.
#[derive(Clone)]
pub struct Repositories {
    pub compute: Arc<dyn ComputeImageRepository>,
    pub container: Arc<dyn ContainerImageRepository>,
}

impl Repositories {
    /// Both APIs served from one in-memory catalog.
    pub fn in_memory(memory: MemoryRepository) -> Self {
        let memory = Arc::new(memory);
        Self {
            compute: memory.clone(),
            container: memory,
        }
    }
}
