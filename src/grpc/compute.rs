//! `yandex.cloud.compute.v1.ImageService` on gRPC.

use std::sync::Arc;

use super::{Served, image_methods, method, write_method};
use crate::proto::compute::image_service_server::ImageServiceServer;
use crate::proto::compute::{
    CreateImageRequest, DeleteImageRequest, GetImageLatestByFamilyRequest,
    ListImageOperationsRequest, UpdateImageRequest,
};
use crate::proto::yandex::cloud::access::{
    ListAccessBindingsRequest, SetAccessBindingsRequest, UpdateAccessBindingsRequest,
};
use crate::service::writes::{CREATE, DELETE, SET_ACCESS_BINDINGS, UPDATE, UPDATE_ACCESS_BINDINGS};
use crate::service::{ComputeImages, Writes};

/// The generated server stands only for the service's name (routing needs it).
type Named = ImageServiceServer<()>;

pub const GET: &str = "/yandex.cloud.compute.v1.ImageService/Get";
const LIST: &str = "/yandex.cloud.compute.v1.ImageService/List";
const GET_LATEST_BY_FAMILY: &str = "/yandex.cloud.compute.v1.ImageService/GetLatestByFamily";
const LIST_OPERATIONS: &str = "/yandex.cloud.compute.v1.ImageService/ListOperations";
const LIST_ACCESS_BINDINGS: &str = "/yandex.cloud.compute.v1.ImageService/ListAccessBindings";

/// The compute ImageService, decoding requests of at most `max` bytes; its
/// writes when `writes` is given (else they answer UNIMPLEMENTED).
pub fn server(
    service: Arc<ComputeImages>,
    writes: Option<Arc<Writes>>,
    max: usize,
) -> Served<Named> {
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
    if let Some(writes) = writes {
        methods.extend([
            write_method(
                CREATE,
                max,
                writes.clone(),
                |s, caller, key, r: CreateImageRequest| async move {
                    s.create(caller.as_deref(), key.as_deref(), r).await
                },
            ),
            write_method(
                UPDATE,
                max,
                writes.clone(),
                |s, caller, key, r: UpdateImageRequest| async move {
                    s.update(caller.as_deref(), key.as_deref(), r).await
                },
            ),
            write_method(
                DELETE,
                max,
                writes.clone(),
                |s, caller, key, r: DeleteImageRequest| async move {
                    s.delete(caller.as_deref(), key.as_deref(), r).await
                },
            ),
            write_method(
                SET_ACCESS_BINDINGS,
                max,
                writes.clone(),
                |s, caller, key, r: SetAccessBindingsRequest| async move {
                    s.set_access_bindings(caller.as_deref(), key.as_deref(), r)
                        .await
                },
            ),
            write_method(
                UPDATE_ACCESS_BINDINGS,
                max,
                writes.clone(),
                |s, caller, key, r: UpdateAccessBindingsRequest| async move {
                    s.update_access_bindings(caller.as_deref(), key.as_deref(), r)
                        .await
                },
            ),
            method(
                LIST_ACCESS_BINDINGS,
                max,
                writes.clone(),
                |s, caller, r: ListAccessBindingsRequest| async move {
                    s.list_access_bindings(caller.as_deref(), r).await
                },
                std::convert::identity,
            ),
            method(
                LIST_OPERATIONS,
                max,
                writes,
                |s, caller, r: ListImageOperationsRequest| async move {
                    s.list_operations(caller.as_deref(), r).await
                },
                std::convert::identity,
            ),
        ]);
    }
    Served::new(methods)
}
