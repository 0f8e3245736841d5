//! `yandex.cloud.containerregistry.v1.ImageService` on gRPC.

use std::sync::Arc;

use tonic::Request;
use tonic::server::NamedService;

use super::unary::{Method, Served, unary};
use super::{EncodedMessage, parts, respond};
use crate::proto::container_registry::{GetImageRequest, ListImagesRequest};
use crate::service::ContainerImages;

/// The service's name, for routing.
pub struct ContainerImageService;

impl NamedService for ContainerImageService {
    const NAME: &'static str = crate::proto::CONTAINER_REGISTRY_IMAGE_SERVICE;
}

pub const GET: &str = "/yandex.cloud.containerregistry.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.containerregistry.v1.ImageService/List";

/// The Container Registry ImageService, decoding requests of at most
/// `max_request_size` bytes.
pub fn server(
    service: Arc<ContainerImages>,
    max_request_size: usize,
) -> Served<ContainerImageService> {
    let methods: Vec<Method> = vec![
        unary(GET, max_request_size, {
            let service = service.clone();
            move |request: Request<GetImageRequest>| {
                let service = service.clone();
                async move {
                    let (id, caller, message) = parts(request);
                    respond(
                        service.get(caller.as_deref(), message).await,
                        id,
                        EncodedMessage,
                    )
                }
            }
        }),
        unary(LIST, max_request_size, {
            move |request: Request<ListImagesRequest>| {
                let service = service.clone();
                async move {
                    let (id, caller, message) = parts(request);
                    respond(service.list(caller.as_deref(), message).await, id, |page| {
                        page
                    })
                }
            }
        }),
    ];
    Served::new(methods)
}
