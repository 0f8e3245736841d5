//! `yandex.cloud.containerregistry.v1.ImageService` on gRPC.

use std::sync::Arc;

use super::{Served, image_methods};
use crate::proto::container_registry::image_service_server::ImageServiceServer;
use crate::service::ContainerImages;

/// The generated server stands only for the service's name (routing needs it).
type Named = ImageServiceServer<()>;

pub const GET: &str = "/yandex.cloud.containerregistry.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.containerregistry.v1.ImageService/List";

/// The Container Registry ImageService, decoding requests of at most `max` bytes.
pub fn server(service: Arc<ContainerImages>, max: usize) -> Served<Named> {
    Served::new(image_methods(service, max, GET, LIST))
}
