//! Code generated from proto/ by build.rs, and the encoded descriptor set that
//! reflection and the JSON mapping read.

#![allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]

use std::sync::LazyLock;

use prost_reflect::{DescriptorError, DescriptorPool};

include!(concat!(env!("OUT_DIR"), "/protos.rs"));

pub use yandex::cloud::compute::v1 as compute;
pub use yandex::cloud::containerregistry::v1 as container_registry;
pub use yandex::cloud::endpoint;
pub use yandex::cloud::operation;

/// The `google.protobuf.Timestamp` of the generated messages: pbjson's, which
/// has the proto3 JSON serde that prost-types' lacks (build.rs).
pub use pbjson_types::Timestamp;

/// Every file under proto/ with its imports, options kept (google.api.http included).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));

/// The descriptors of the standard services served beside ours (health, both
/// reflection versions): reflection lists them, metrics read their kinds.
pub const STANDARD_DESCRIPTOR_SETS: [&[u8]; 3] = [
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// Full names of the gRPC services this server implements.
pub const COMPUTE_IMAGE_SERVICE: &str = "yandex.cloud.compute.v1.ImageService";
pub const CONTAINER_REGISTRY_IMAGE_SERVICE: &str = "yandex.cloud.containerregistry.v1.ImageService";
pub const API_ENDPOINT_SERVICE: &str = "yandex.cloud.endpoint.ApiEndpointService";
pub const OPERATION_SERVICE: &str = "yandex.cloud.operation.OperationService";

static POOL: LazyLock<Result<DescriptorPool, DescriptorError>> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET));

/// The descriptors of [`FILE_DESCRIPTOR_SET`], decoded once.
pub fn descriptor_pool() -> Result<&'static DescriptorPool, &'static DescriptorError> {
    POOL.as_ref()
}
