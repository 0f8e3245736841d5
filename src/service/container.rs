//! `yandex.cloud.containerregistry.v1.ImageService`.

use std::sync::Arc;

use bytes::Bytes;

use super::authorize::{self, encoded_string_field, folder_of_repository};
use super::{ImagePage, backend_failed, list_failed};
use crate::domain::ImageId;
use crate::domain::access::Caller;
use crate::domain::container::{ContainerScope, ListContainerImages};
use crate::error::ApiError;
use crate::proto::container_registry::{GetImageRequest, ListImagesRequest};
use crate::store::ContainerImageRepository;

/// The field number of `Image.name` (the repository name, which starts with the registry id).
const NAME: u32 = 2;

/// The Container Registry ImageService over its store.
pub struct ContainerImages {
    store: Arc<dyn ContainerImageRepository>,
}

impl ContainerImages {
    pub fn new(store: Arc<dyn ContainerImageRepository>) -> Self {
        Self { store }
    }

    /// Get: the image's encoding. An image is in the folder of its registry.
    pub async fn get(
        &self,
        caller: Option<&Caller>,
        request: GetImageRequest,
    ) -> Result<Bytes, ApiError> {
        let id = ImageId::parse("image_id", request.image_id)?;
        tracing::Span::current().record("image_id", id.as_str());
        let image = match self.store.get_container_image_encoded(&id).await {
            Ok(Some(image)) => image,
            Ok(None) => return Err(ApiError::image_not_found(id.as_str())),
            Err(err) => return Err(backend_failed(err)),
        };
        if let Some(caller) = caller {
            // Boxed, so that a call without authentication carries none of its state.
            Box::pin(authorize::check(Some(caller), || async {
                match encoded_string_field(&image, NAME) {
                    Some(name) => folder_of_repository(self.store.as_ref(), &name).await,
                    None => Ok(None),
                }
            }))
            .await?;
        }
        Ok(image)
    }

    /// List: a page of the folder's, registry's or repository's images.
    pub async fn list(
        &self,
        caller: Option<&Caller>,
        request: ListImagesRequest,
    ) -> Result<ImagePage, ApiError> {
        let list = ListContainerImages::parse(request)?;
        let store = self.store.as_ref();
        let scope = &list.query.scope;
        authorize::check(caller, || async move {
            match scope {
                ContainerScope::Folder(folder) => Ok(Some(folder.as_str().to_owned())),
                ContainerScope::Registry(registry) => {
                    store.registry_folder(registry.as_str()).await
                }
                ContainerScope::Repository(name) => {
                    folder_of_repository(store, name.as_str()).await
                }
            }
        })
        .await?;
        let page = store
            .list_container_images_encoded(&list.query, &list.page)
            .await
            .map_err(list_failed)?;
        ImagePage::new(&list, page)
    }
}
