//! `yandex.cloud.compute.v1.ImageService`: what its Get and List are about,
//! and GetLatestByFamily.

use bytes::Bytes;
use prost::Message;

use super::authorize::{self, compute_image_folder};
use super::{ImageApi, Images, backend_failed};
use crate::domain::ImageId;
use crate::domain::access::{Action, Caller, Service};
use crate::domain::compute::{ComputeImageQuery, LatestByFamily, ListComputeImages};
use crate::error::ApiError;
use crate::proto::compute::{
    GetImageLatestByFamilyRequest, GetImageRequest, Image, ListImagesRequest,
};
use crate::store::catalog::{Catalog, ImageList};
use crate::store::{
    Compute, ComputeImageRepository, EncodedPage, ListError, MemoryRepository, RepositoryError,
};

/// The compute ImageService.
pub type ComputeImages = Images<Compute>;

impl ImageApi for Compute {
    type Store = dyn ComputeImageRepository;
    type GetRequest = GetImageRequest;
    type ListRequest = ListImagesRequest;
    type Query = ComputeImageQuery;

    const SERVICE: Service = Service::Compute;

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
        Ok(compute_image_folder(image))
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

    /// Through an index of just these images, so the filter, order and
    /// paging are the ones every List has.
    async fn list_of(
        images: Vec<Bytes>,
        list: &ListComputeImages,
    ) -> Result<EncodedPage, ListError> {
        let decoded = images
            .iter()
            .map(|encoded| Image::decode(encoded.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                RepositoryError::Internal(format!("a stored image does not decode: {err}"))
            })?;
        let compute_images = ImageList::from_images(decoded, |image| &image.id).map_err(|err| {
            RepositoryError::Internal(format!("an image is bound twice: {err:?}"))
        })?;
        let index = MemoryRepository::new(Catalog {
            compute_images,
            ..Catalog::default()
        });
        index
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
        let latest = self
            .store
            .latest_compute_image_by_family(&query.folder_id, &query.family)
            .await
            .map_err(backend_failed)?;
        // A binding counts only when there is an image: a missing family is
        // told only to the folder's readers.
        let folder = Some(query.folder_id.as_str());
        let bindings = || async {
            match &latest {
                Some(image) => self.image_bindings(&image.id).await,
                None => Ok(Vec::new()),
            }
        };
        authorize::check_in(caller, Action::Read, Service::Compute, folder, bindings).await?;
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
