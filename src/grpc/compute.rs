//! `yandex.cloud.compute.v1.ImageService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::authorize::{self, encoded_string_field};
use super::request_context::RequestId;
use super::{
    EncodedGet, EncodedList, EncodedListResponse, READ_ONLY, backend_failed, caller, get_image,
    list_failed, page_response, request_id, status, unimplemented, unwrap_image,
};
use crate::domain::compute::{LatestByFamily, ListComputeImages};
use crate::error::ApiError;
use crate::proto::compute::image_service_server::{ImageService, ImageServiceServer};
use crate::proto::compute::{
    CreateImageRequest, DeleteImageRequest, GetImageLatestByFamilyRequest, GetImageRequest, Image,
    ListImageOperationsRequest, ListImageOperationsResponse, ListImagesRequest, ListImagesResponse,
    UpdateImageRequest,
};
use crate::proto::yandex::cloud::access::{
    ListAccessBindingsRequest, ListAccessBindingsResponse, SetAccessBindingsRequest,
    UpdateAccessBindingsRequest,
};
use crate::proto::yandex::cloud::operation::Operation;
use crate::repository::ComputeImageRepository;

const SERVICE: &str = "yandex.cloud.compute.v1.ImageService";
/// The field number of `Image.folder_id`.
const FOLDER_ID: u32 = 2;

pub struct ComputeImages {
    repository: Arc<dyn ComputeImageRepository>,
}

/// The compute ImageService, its Get and List answered with the stored encodings.
pub type ComputeImagesServer =
    EncodedList<EncodedGet<ImageServiceServer<ComputeImages>, GetImageRequest>, ListImagesRequest>;

impl ComputeImages {
    /// The service, to call in-process (a benchmark, an embedding program).
    pub fn new(repository: Arc<dyn ComputeImageRepository>) -> Self {
        Self { repository }
    }

    /// The service with Get and List answered from the stored encodings,
    /// decoding requests of at most `max_request_size` bytes.
    pub fn server(
        repository: Arc<dyn ComputeImageRepository>,
        max_request_size: usize,
    ) -> ComputeImagesServer {
        let lookup = repository.clone();
        let lister = repository.clone();
        let get = EncodedGet::new(
            ImageServiceServer::new(Self::new(repository))
                .max_decoding_message_size(max_request_size),
            "/yandex.cloud.compute.v1.ImageService/Get",
            |request: GetImageRequest| request.image_id,
            Arc::new(move |id| {
                let repository = lookup.clone();
                Box::pin(async move {
                    let found = repository.get_compute_image_encoded(&id).await;
                    (id, found)
                })
            }),
            Arc::new(|bytes| Box::pin(async move { Ok(encoded_string_field(&bytes, FOLDER_ID)) })),
            max_request_size,
        );
        EncodedList::new(
            get,
            "/yandex.cloud.compute.v1.ImageService/List",
            Arc::new(move |request| Box::pin(list_encoded(lister.clone(), request))),
            max_request_size,
        )
    }
}

/// A List request parsed and its caller allowed to read the folder: the
/// request and its request id, or the status to answer.
async fn admit_list(
    request: Request<ListImagesRequest>,
) -> Result<(ListComputeImages, Option<RequestId>), Status> {
    let request_id = request_id(&request);
    let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
    let caller = caller(&request);
    let list = ListComputeImages::parse(request.into_inner()).map_err(fail)?;
    let folder = list.query.folder_id.as_str();
    authorize::check(caller.as_deref(), || async { Ok(Some(folder.to_owned())) })
        .await
        .map_err(fail)?;
    Ok((list, request_id))
}

/// List answered with the page's stored encodings: [`ImageService::list`]
/// without decoding and re-encoding the images.
async fn list_encoded(
    repository: Arc<dyn ComputeImageRepository>,
    request: Request<ListImagesRequest>,
) -> Result<Response<EncodedListResponse>, Status> {
    let (list, request_id) = admit_list(request).await?;
    let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
    let page = repository
        .list_compute_images_encoded(&list.query, &list.page)
        .await
        .map_err(|err| fail(list_failed(err)))?;
    let response = EncodedListResponse::new(&list, page).map_err(fail)?;
    Ok(Response::new(response))
}

#[tonic::async_trait]
impl ImageService for ComputeImages {
    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        let request_id = request_id(&request);
        let caller = caller(&request);
        let raw_id = request.into_inner().image_id;
        get_image(
            request_id,
            caller,
            raw_id,
            |id| async move {
                let found = self.repository.get_compute_image(&id).await;
                (id, unwrap_image(found))
            },
            |image: &Image| std::future::ready(Ok(Some(image.folder_id.clone()))),
        )
        .await
    }

    async fn get_latest_by_family(
        &self,
        request: Request<GetImageLatestByFamilyRequest>,
    ) -> Result<Response<Image>, Status> {
        let request_id = request_id(&request);
        let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
        let caller = caller(&request);
        let query = LatestByFamily::parse(request.into_inner()).map_err(fail)?;
        let folder = query.folder_id.as_str();
        authorize::check(caller.as_deref(), || async { Ok(Some(folder.to_owned())) })
            .await
            .map_err(fail)?;
        let latest = self
            .repository
            .latest_compute_image_by_family(&query.folder_id, &query.family)
            .await
            .map_err(|err| fail(backend_failed(err)))?;
        match latest {
            Some(image) => {
                tracing::Span::current().record("image_id", image.id.as_str());
                Ok(Response::new(Image::clone(&image)))
            }
            None => Err(fail(ApiError::family_not_found(
                query.family.as_str(),
                query.folder_id.as_str(),
            ))),
        }
    }

    async fn list(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let (list, request_id) = admit_list(request).await?;
        let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
        let page = self
            .repository
            .list_compute_images(&list.query, &list.page)
            .await
            .map_err(|err| fail(list_failed(err)))?;
        let (images, next_page_token) =
            page_response(&list, page, |image: &Image| &image.id).map_err(fail)?;
        Ok(Response::new(ListImagesResponse {
            images,
            next_page_token,
        }))
    }

    async fn create(
        &self,
        request: Request<CreateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(unimplemented(
            &request,
            &format!("{SERVICE}/Create"),
            READ_ONLY,
        ))
    }

    async fn update(
        &self,
        request: Request<UpdateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(unimplemented(
            &request,
            &format!("{SERVICE}/Update"),
            READ_ONLY,
        ))
    }

    async fn delete(
        &self,
        request: Request<DeleteImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(unimplemented(
            &request,
            &format!("{SERVICE}/Delete"),
            READ_ONLY,
        ))
    }

    async fn list_operations(
        &self,
        request: Request<ListImageOperationsRequest>,
    ) -> Result<Response<ListImageOperationsResponse>, Status> {
        Err(unimplemented(
            &request,
            &format!("{SERVICE}/ListOperations"),
            READ_ONLY,
        ))
    }

    async fn list_access_bindings(
        &self,
        request: Request<ListAccessBindingsRequest>,
    ) -> Result<Response<ListAccessBindingsResponse>, Status> {
        Err(unimplemented(
            &request,
            &format!("{SERVICE}/ListAccessBindings"),
            READ_ONLY,
        ))
    }

    async fn set_access_bindings(
        &self,
        request: Request<SetAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(unimplemented(
            &request,
            &format!("{SERVICE}/SetAccessBindings"),
            READ_ONLY,
        ))
    }

    async fn update_access_bindings(
        &self,
        request: Request<UpdateAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(unimplemented(
            &request,
            &format!("{SERVICE}/UpdateAccessBindings"),
            READ_ONLY,
        ))
    }
}
