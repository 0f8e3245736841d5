//! `yandex.cloud.containerregistry.v1.ImageService`: what its Get and List
//! are about. An image is in the folder of its registry.

use bytes::Bytes;

use super::authorize::{encoded_string_field, folder_of_repository};
use super::{ImageApi, Images};
use crate::domain::ImageId;
use crate::domain::access::Service;
use crate::domain::container::{ContainerImageQuery, ContainerScope, ListContainerImages};
use crate::error::ApiError;
use crate::proto::container_registry::{GetImageRequest, ListImagesRequest};
use crate::store::{Container, ContainerImageRepository, EncodedPage, ListError, RepositoryError};

/// The field number of `Image.name` (the repository name, which starts with the registry id).
const NAME: u32 = 2;

/// The Container Registry ImageService.
pub type ContainerImages = Images<Container>;

impl ImageApi for Container {
    type Store = dyn ContainerImageRepository;
    type GetRequest = GetImageRequest;
    type ListRequest = ListImagesRequest;
    type Query = ContainerImageQuery;

    const SERVICE: Service = Service::ContainerRegistry;

    fn image_id(request: GetImageRequest) -> String {
        request.image_id
    }

    fn parse_list(request: ListImagesRequest) -> Result<ListContainerImages, ApiError> {
        ListContainerImages::parse(request)
    }

    async fn get_encoded(
        store: &Self::Store,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        store.get_container_image_encoded(id).await
    }

    async fn folder_of_image(
        store: &Self::Store,
        image: &Bytes,
    ) -> Result<Option<String>, RepositoryError> {
        match encoded_string_field(image, NAME) {
            Some(name) => folder_of_repository(store, &name).await,
            None => Ok(None),
        }
    }

    async fn folder_of_query(
        store: &Self::Store,
        query: &ContainerImageQuery,
    ) -> Result<Option<String>, RepositoryError> {
        match &query.scope {
            ContainerScope::Folder(folder) => Ok(Some(folder.as_str().to_owned())),
            ContainerScope::Registry(registry) => store.registry_folder(registry.as_str()).await,
            ContainerScope::Repository(name) => folder_of_repository(store, name.as_str()).await,
        }
    }

    async fn list_encoded(
        store: &Self::Store,
        list: &ListContainerImages,
    ) -> Result<EncodedPage, ListError> {
        store
            .list_container_images_encoded(&list.query, &list.page)
            .await
    }

    /// Container images have no bindings, so no caller reads only some.
    async fn list_of(
        _images: Vec<Bytes>,
        _list: &ListContainerImages,
    ) -> Result<EncodedPage, ListError> {
        Ok(EncodedPage::default())
    }
}
