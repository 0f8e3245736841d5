//! `yandex.cloud.containerregistry.v1.ImageService` on gRPC.

use std::sync::Arc;

use super::{EncodedMessage, Served, method};
use crate::proto::container_registry::image_service_server::ImageServiceServer;

/// The generated server stands only for the service's name (routing needs it).
type Named = ImageServiceServer<()>;
use crate::proto::container_registry::{GetImageRequest, ListImagesRequest};
use crate::service::ContainerImages;

pub const GET: &str = "/yandex.cloud.containerregistry.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.containerregistry.v1.ImageService/List";

/// The Container Registry ImageService, decoding requests of at most `max` bytes.
pub fn server(service: Arc<ContainerImages>, max: usize) -> Served<Named> {
    Served::new(vec![
        method(
            GET,
            max,
            service.clone(),
            |s, caller, r: GetImageRequest| async move { s.get(caller.as_deref(), r).await },
            EncodedMessage,
        ),
        method(
            LIST,
            max,
            service,
            |s, caller, r: ListImagesRequest| async move { s.list(caller.as_deref(), r).await },
            std::convert::identity,
        ),
    ])
}
