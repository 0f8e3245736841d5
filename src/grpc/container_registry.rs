//! `yandex.cloud.containerregistry.v1.ImageService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::authorize::{self, encoded_string_field, folder_of_repository};
use super::request_context::RequestId;
use super::{
    EncodedGet, EncodedList, EncodedListResponse, READ_ONLY, caller, get_image, list_failed,
    page_response, request_id, status, unimplemented, unwrap_image,
};
use crate::domain::container::{ContainerScope, ListContainerImages};
use crate::error::ApiError;
use crate::proto::container_registry::image_service_server::{ImageService, ImageServiceServer};
use crate::proto::container_registry::{
    DeleteImageRequest, GetImageRequest, Image, ListImagesRequest, ListImagesResponse,
};
use crate::proto::yandex::cloud::operation::Operation;
use crate::repository::ContainerImageRepository;

const SERVICE: &str = "yandex.cloud.containerregistry.v1.ImageService";
/// The field number of `Image.name` (the repository name, which starts with the registry id).
const NAME: u32 = 2;

pub struct ContainerRegistryImages {
    repository: Arc<dyn ContainerImageRepository>,
}

/// The Container Registry ImageService, its Get and List answered with the
/// stored encodings.
pub type ContainerRegistryImagesServer = EncodedList<
    EncodedGet<ImageServiceServer<ContainerRegistryImages>, GetImageRequest>,
    ListImagesRequest,
>;

impl ContainerRegistryImages {
    /// The service, to call in-process (a benchmark, an embedding program).
    pub fn new(repository: Arc<dyn ContainerImageRepository>) -> Self {
        Self { repository }
    }

    /// The service with Get and List answered from the stored encodings,
    /// decoding requests of at most `max_request_size` bytes.
    pub fn server(
        repository: Arc<dyn ContainerImageRepository>,
        max_request_size: usize,
    ) -> ContainerRegistryImagesServer {
        let lookup = repository.clone();
        let registries = repository.clone();
        let lister = repository.clone();
        let get = EncodedGet::new(
            ImageServiceServer::new(Self::new(repository))
                .max_decoding_message_size(max_request_size),
            "/yandex.cloud.containerregistry.v1.ImageService/Get",
            |request: GetImageRequest| request.image_id,
            Arc::new(move |id| {
                let repository = lookup.clone();
                Box::pin(async move {
                    let found = repository.get_container_image_encoded(&id).await;
                    (id, found)
                })
            }),
            Arc::new(move |bytes| {
                let repository = registries.clone();
                Box::pin(async move {
                    match encoded_string_field(&bytes, NAME) {
                        Some(name) => folder_of_repository(repository, name).await,
                        None => Ok(None),
                    }
                })
            }),
            max_request_size,
        );
        EncodedList::new(
            get,
            "/yandex.cloud.containerregistry.v1.ImageService/List",
            Arc::new(move |request| Box::pin(list_encoded(lister.clone(), request))),
            max_request_size,
        )
    }
}

/// A List request parsed and its caller allowed to read the scope's folder:
/// the request and its request id, or the status to answer.
async fn admit_list(
    repository: &Arc<dyn ContainerImageRepository>,
    request: Request<ListImagesRequest>,
) -> Result<(ListContainerImages, Option<RequestId>), Status> {
    let request_id = request_id(&request);
    let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
    let caller = caller(&request);
    let list = ListContainerImages::parse(request.into_inner()).map_err(fail)?;
    let scope = &list.query.scope;
    authorize::check(caller.as_deref(), || async move {
        match scope {
            ContainerScope::Folder(folder) => Ok(Some(folder.as_str().to_owned())),
            ContainerScope::Registry(registry) => {
                repository.registry_folder(registry.as_str()).await
            }
            ContainerScope::Repository(name) => {
                folder_of_repository(repository.clone(), name.as_str().to_owned()).await
            }
        }
    })
    .await
    .map_err(fail)?;
    Ok((list, request_id))
}

/// List answered with the page's stored encodings: [`ImageService::list`]
/// without decoding and re-encoding the images.
async fn list_encoded(
    repository: Arc<dyn ContainerImageRepository>,
    request: Request<ListImagesRequest>,
) -> Result<Response<EncodedListResponse>, Status> {
    let (list, request_id) = admit_list(&repository, request).await?;
    let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
    let page = repository
        .list_container_images_encoded(&list.query, &list.page)
        .await
        .map_err(|err| fail(list_failed(err)))?;
    let response = EncodedListResponse::new(&list, page).map_err(fail)?;
    Ok(Response::new(response))
}

#[tonic::async_trait]
impl ImageService for ContainerRegistryImages {
    async fn list(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let (list, request_id) = admit_list(&self.repository, request).await?;
        let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
        let page = self
            .repository
            .list_container_images(&list.query, &list.page)
            .await
            .map_err(|err| fail(list_failed(err)))?;
        let (images, next_page_token) =
            page_response(&list, page, |image: &Image| &image.id).map_err(fail)?;
        Ok(Response::new(ListImagesResponse {
            images,
            next_page_token,
        }))
    }

    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        let request_id = request_id(&request);
        let caller = caller(&request);
        let raw_id = request.into_inner().image_id;
        get_image(
            request_id,
            caller,
            raw_id,
            |id| async move {
                let found = self.repository.get_container_image(&id).await;
                (id, unwrap_image(found))
            },
            |image: &Image| folder_of_repository(self.repository.clone(), image.name.clone()),
        )
        .await
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
}
