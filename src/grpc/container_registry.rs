//! `yandex.cloud.containerregistry.v1.ImageService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{EncodedGet, NOT_YET, READ_ONLY, get_image, request_id, unimplemented, unwrap_image};
use crate::proto::container_registry::image_service_server::{ImageService, ImageServiceServer};
use crate::proto::container_registry::{
    DeleteImageRequest, GetImageRequest, Image, ListImagesRequest, ListImagesResponse,
};
use crate::proto::yandex::cloud::operation::Operation;
use crate::repository::ContainerImageRepository;

const SERVICE: &str = "yandex.cloud.containerregistry.v1.ImageService";

pub struct ContainerRegistryImages {
    repository: Arc<dyn ContainerImageRepository>,
}

/// The Container Registry ImageService, its Get answered with the stored encoding.
pub type ContainerRegistryImagesServer =
    EncodedGet<ImageServiceServer<ContainerRegistryImages>, GetImageRequest>;

impl ContainerRegistryImages {
    pub fn server(repository: Arc<dyn ContainerImageRepository>) -> ContainerRegistryImagesServer {
        let lookup = repository.clone();
        EncodedGet::new(
            ImageServiceServer::new(Self { repository }),
            "/yandex.cloud.containerregistry.v1.ImageService/Get",
            |request: GetImageRequest| request.image_id,
            Arc::new(move |id| {
                let repository = lookup.clone();
                Box::pin(async move { repository.get_container_image_encoded(&id).await })
            }),
        )
    }
}

#[tonic::async_trait]
impl ImageService for ContainerRegistryImages {
    async fn list(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        Err(unimplemented(&request, &format!("{SERVICE}/List"), NOT_YET))
    }

    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        let request_id = request_id(&request);
        let raw_id = request.into_inner().image_id;
        get_image(request_id, raw_id, |id| async move {
            unwrap_image(self.repository.get_container_image(&id).await)
        })
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
