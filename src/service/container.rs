//! `yandex.cloud.containerregistry.v1.ImageService`.

use bytes::Bytes;

use super::authorize::{self, encoded_string_field, folder_of_repository};
use super::{ImagePage, Images, get_image, list_failed};
use crate::domain::access::Caller;
use crate::domain::container::{ContainerScope, ListContainerImages};
use crate::error::ApiError;
use crate::proto::container_registry::{GetImageRequest, ListImagesRequest};
use crate::store::ContainerImageRepository;

/// The field number of `Image.name` (the repository name, which starts with the registry id).
const NAME: u32 = 2;

/// The Container Registry ImageService.
pub type ContainerImages = Images<dyn ContainerImageRepository>;

impl ContainerImages {
    /// Get: the image's encoding. An image is in the folder of its registry.
    pub async fn get(
        &self,
        caller: Option<&Caller>,
        request: GetImageRequest,
    ) -> Result<Bytes, ApiError> {
        let store = self.store.as_ref();
        get_image(
            caller,
            request.image_id,
            |id| async move {
                let found = store.get_container_image_encoded(&id).await;
                (id, found)
            },
            |image| {
                let name = encoded_string_field(image, NAME);
                async move {
                    match name {
                        Some(name) => folder_of_repository(store, &name).await,
                        None => Ok(None),
                    }
                }
            },
        )
        .await
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
