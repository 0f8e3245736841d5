//! `yandex.cloud.compute.v1.ImageService`.

use std::sync::Arc;

use bytes::Bytes;

use super::authorize::{self, encoded_string_field};
use super::{ImagePage, backend_failed, list_failed};
use crate::domain::ImageId;
use crate::domain::access::Caller;
use crate::domain::compute::{LatestByFamily, ListComputeImages};
use crate::error::ApiError;
use crate::proto::compute::{
    GetImageLatestByFamilyRequest, GetImageRequest, Image, ListImagesRequest,
};
use crate::store::ComputeImageRepository;

/// The field number of `Image.folder_id`.
const FOLDER_ID: u32 = 2;

/// The compute ImageService over its store.
pub struct ComputeImages {
    store: Arc<dyn ComputeImageRepository>,
}

impl ComputeImages {
    pub fn new(store: Arc<dyn ComputeImageRepository>) -> Self {
        Self { store }
    }

    /// Get: the image's encoding. `caller` is who authentication let in (none
    /// when it is off).
    pub async fn get(
        &self,
        caller: Option<&Caller>,
        request: GetImageRequest,
    ) -> Result<Bytes, ApiError> {
        let id = ImageId::parse("image_id", request.image_id)?;
        tracing::Span::current().record("image_id", id.as_str());
        let image = match self.store.get_compute_image_encoded(&id).await {
            Ok(Some(image)) => image,
            Ok(None) => return Err(ApiError::image_not_found(id.as_str())),
            Err(err) => return Err(backend_failed(err)),
        };
        if let Some(caller) = caller {
            // Boxed, so that a call without authentication carries none of its state.
            Box::pin(authorize::check(Some(caller), || async {
                Ok(encoded_string_field(&image, FOLDER_ID))
            }))
            .await?;
        }
        Ok(image)
    }

    /// List: a page of the folder's images.
    pub async fn list(
        &self,
        caller: Option<&Caller>,
        request: ListImagesRequest,
    ) -> Result<ImagePage, ApiError> {
        let list = ListComputeImages::parse(request)?;
        let folder = list.query.folder_id.as_str();
        authorize::check(caller, || async { Ok(Some(folder.to_owned())) }).await?;
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
        let folder = query.folder_id.as_str();
        authorize::check(caller, || async { Ok(Some(folder.to_owned())) }).await?;
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
