//! `yandex.cloud.containerregistry.v1.ImageService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{NOT_YET, READ_ONLY, get_image, request_id, unimplemented};
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

impl ContainerRegistryImages {
    pub fn server(repository: Arc<dyn ContainerImageRepository>) -> ImageServiceServer<Self> {
        ImageServiceServer::new(Self { repository })
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
            self.repository.get_container_image(&id).await
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
