//! `yandex.cloud.compute.v1.ImageService`: what its Get and List are about,
//! and GetLatestByFamily.

use bytes::Bytes;

use super::authorize::{self, encoded_string_field};
use super::{ImageApi, Images, backend_failed};
use crate::domain::ImageId;
use crate::domain::access::Caller;
use crate::domain::compute::{ComputeImageQuery, LatestByFamily, ListComputeImages};
use crate::error::ApiError;
use crate::proto::compute::{
    GetImageLatestByFamilyRequest, GetImageRequest, Image, ListImagesRequest,
};
use crate::store::{Compute, ComputeImageRepository, EncodedPage, ListError, RepositoryError};

/// The field number of `Image.folder_id`.
const FOLDER_ID: u32 = 2;

/// The compute ImageService.
pub type ComputeImages = Images<Compute>;

impl ImageApi for Compute {
    type Store = dyn ComputeImageRepository;
    type GetRequest = GetImageRequest;
    type ListRequest = ListImagesRequest;
    type Query = ComputeImageQuery;

    fn image_id(request: GetImageRequest) -> String {
        request.image_id
    }

    fn parse_list(request: ListImagesRequest) -> Result<ListComputeImages, ApiError> {
        ListComputeImages::parse(request)
    }

    async fn get_encoded(
        store: &Self::Store,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        store.get_compute_image_encoded(id).await
    }

    async fn folder_of_image(
        _store: &Self::Store,
        image: &Bytes,
    ) -> Result<Option<String>, RepositoryError> {
        Ok(encoded_string_field(image, FOLDER_ID))
    }

    async fn folder_of_query(
        _store: &Self::Store,
        query: &ComputeImageQuery,
    ) -> Result<Option<String>, RepositoryError> {
        Ok(Some(query.folder_id.as_str().to_owned()))
    }

    async fn list_encoded(
        store: &Self::Store,
        list: &ListComputeImages,
    ) -> Result<EncodedPage, ListError> {
        store
            .list_compute_images_encoded(&list.query, &list.page)
            .await
    }
}

impl ComputeImages {
    /// GetLatestByFamily: the family's newest READY image in the folder.
    pub async fn get_latest_by_family(
        &self,
        caller: Option<&Caller>,
        request: GetImageLatestByFamilyRequest,
    ) -> Result<Image, ApiError> {
        let query = LatestByFamily::parse(request)?;
        authorize::check_folder(caller, &query.folder_id).await?;
        let latest = self
            .store
            .latest_compute_image_by_family(&query.folder_id, &query.family)
            .await
            .map_err(backend_failed)?;
        match latest {
            Some(image) => {
                tracing::Span::current().record("image_id", image.id.as_str());
                Ok(Image::clone(&image))
            }
            None => Err(ApiError::family_not_found(
                query.family.as_str(),
                query.folder_id.as_str(),
            )),
        }
    }
}
