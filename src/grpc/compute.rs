//! `yandex.cloud.compute.v1.ImageService` on gRPC.

use std::sync::Arc;

use super::{Served, image_methods, method};
use crate::proto::compute::GetImageLatestByFamilyRequest;
use crate::proto::compute::image_service_server::ImageServiceServer;
use crate::service::ComputeImages;

/// The generated server stands only for the service's name (routing needs it).
type Named = ImageServiceServer<()>;

pub const GET: &str = "/yandex.cloud.compute.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.compute.v1.ImageService/List";
const GET_LATEST_BY_FAMILY: &str = "/yandex.cloud.compute.v1.ImageService/GetLatestByFamily";

/// The compute ImageService, decoding requests of at most `max` bytes.
pub fn server(service: Arc<ComputeImages>, max: usize) -> Served<Named> {
    let mut methods = image_methods(service.clone(), max, GET, LIST);
    methods.push(method(
        GET_LATEST_BY_FAMILY,
        max,
        service,
        |s, caller, r: GetImageLatestByFamilyRequest| async move {
            s.get_latest_by_family(caller.as_deref(), r).await
        },
        std::convert::identity,
    ));
    Served::new(methods)
}
