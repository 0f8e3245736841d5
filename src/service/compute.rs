//! `yandex.cloud.compute.v1.ImageService`.

use bytes::Bytes;

use super::authorize::{self, encoded_string_field};
use super::{ImagePage, Images, backend_failed, get_image, list_failed};
use crate::domain::access::Caller;
use crate::domain::compute::{LatestByFamily, ListComputeImages};
use crate::error::ApiError;
use crate::proto::compute::{
    GetImageLatestByFamilyRequest, GetImageRequest, Image, ListImagesRequest,
};
use crate::store::ComputeImageRepository;

/// The field number of `Image.folder_id`.
const FOLDER_ID: u32 = 2;

/// The compute ImageService.
pub type ComputeImages = Images<dyn ComputeImageRepository>;

impl ComputeImages {
    /// Get: the image's encoding. `caller` is who authentication let in (none
    /// when it is off).
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
                let found = store.get_compute_image_encoded(&id).await;
                (id, found)
            },
            |image| std::future::ready(Ok(encoded_string_field(image, FOLDER_ID))),
        )
        .await
    }

    /// List: a page of the folder's images.
    pub async fn list(
        &self,
        caller: Option<&Caller>,
        request: ListImagesRequest,
    ) -> Result<ImagePage, ApiError> {
        let list = ListComputeImages::parse(request)?;
        authorize::check_folder(caller, &list.query.folder_id).await?;
        let page = self
            .store
            .list_compute_images_encoded(&list.query, &list.page)
            .await
            .map_err(list_failed)?;
        ImagePage::new(&list, page)
    }

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
