//! `yandex.cloud.compute.v1.ImageService` on gRPC.

use std::sync::Arc;

use tonic::Request;
use tonic::server::NamedService;

use super::unary::{Method, Served, unary};
use super::{EncodedMessage, parts, respond};
use crate::proto::compute::{GetImageLatestByFamilyRequest, GetImageRequest, ListImagesRequest};
use crate::service::ComputeImages;

/// The service's name, for routing.
pub struct ComputeImageService;

impl NamedService for ComputeImageService {
    const NAME: &'static str = crate::proto::COMPUTE_IMAGE_SERVICE;
}

pub const GET: &str = "/yandex.cloud.compute.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.compute.v1.ImageService/List";
const GET_LATEST_BY_FAMILY: &str = "/yandex.cloud.compute.v1.ImageService/GetLatestByFamily";

/// The compute ImageService, decoding requests of at most `max_request_size` bytes.
pub fn server(service: Arc<ComputeImages>, max_request_size: usize) -> Served<ComputeImageService> {
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
            let service = service.clone();
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
        unary(GET_LATEST_BY_FAMILY, max_request_size, {
            move |request: Request<GetImageLatestByFamilyRequest>| {
                let service = service.clone();
                async move {
                    let (id, caller, message) = parts(request);
                    let latest = service
                        .get_latest_by_family(caller.as_deref(), message)
                        .await;
                    respond(latest, id, |image| image)
                }
            }
        }),
    ];
    Served::new(methods)
}
