//! `yandex.cloud.containerregistry.v1.ImageService` on gRPC.

use std::sync::Arc;

use super::{Served, image_methods, write_method};
use crate::proto::container_registry::DeleteImageRequest;
use crate::proto::container_registry::image_service_server::ImageServiceServer;
use crate::service::writes::DELETE_CONTAINER;
use crate::service::{ContainerImages, Writes};

/// The generated server stands only for the service's name (routing needs it).
type Named = ImageServiceServer<()>;

pub const GET: &str = "/yandex.cloud.containerregistry.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.containerregistry.v1.ImageService/List";

/// The Container Registry ImageService, decoding requests of at most `max`
/// bytes; its Delete when `writes` is given.
pub fn server(
    service: Arc<ContainerImages>,
    writes: Option<Arc<Writes>>,
    max: usize,
) -> Served<Named> {
    let mut methods = image_methods(service, max, GET, LIST);
    if let Some(writes) = writes {
        methods.push(write_method(
            DELETE_CONTAINER,
            max,
            writes,
            |s, caller, key, r: DeleteImageRequest| async move {
                s.delete_container(caller.as_deref(), key.as_deref(), r)
                    .await
            },
        ));
    }
    Served::new(methods)
}
