//! `yandex.cloud.compute.v1.ImageService` on gRPC.

use std::sync::Arc;

use super::{EncodedMessage, Served, method};
use crate::proto::compute::image_service_server::ImageServiceServer;

/// The generated server stands only for the service's name (routing needs it).
type Named = ImageServiceServer<()>;
use crate::proto::compute::{GetImageLatestByFamilyRequest, GetImageRequest, ListImagesRequest};
use crate::service::ComputeImages;

pub const GET: &str = "/yandex.cloud.compute.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.compute.v1.ImageService/List";
const GET_LATEST_BY_FAMILY: &str = "/yandex.cloud.compute.v1.ImageService/GetLatestByFamily";

/// The compute ImageService, decoding requests of at most `max_request_size` bytes.
pub fn server(service: Arc<ComputeImages>, max: usize) -> Served<Named> {
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
            service.clone(),
            |s, caller, r: ListImagesRequest| async move { s.list(caller.as_deref(), r).await },
            std::convert::identity,
        ),
        method(
            GET_LATEST_BY_FAMILY,
            max,
            service,
            |s, caller, r: GetImageLatestByFamilyRequest| async move {
                s.get_latest_by_family(caller.as_deref(), r).await
            },
            std::convert::identity,
        ),
    ])
}
