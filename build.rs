//! Compiles the .proto files in proto/ with protox (pure Rust, no protoc on the
//! machine) and generates prost messages plus tonic servers and clients.
//!
//! The messages a catalog file holds also get serde implementations of the
//! proto3 JSON mapping from pbjson-build, appended to their package's file, so
//! the catalog loader parses straight into prost structs.
//!
//! It also writes `descriptor_set.bin`, the encoded FileDescriptorSet that server
//! reflection and the REST face read. That one is produced by
//! `encode_file_descriptor_set()`, which keeps extension options such as
//! `google.api.http`; the decoded prost form would silently drop them.

use std::fs::OpenOptions;
use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";

/// The files whose services and messages we serve; their imports come along.
const ENTRY_FILES: &[&str] = &[
    "yandex/cloud/compute/v1/image_service.proto",
    "yandex/cloud/containerregistry/v1/image_service.proto",
    "yandex/cloud/containerregistry/v1/registry.proto",
    "yandex/cloud/endpoint/api_endpoint_service.proto",
    "yandex/cloud/operation/operation_service.proto",
    "yandex/cloud/validation.proto",
    "google/rpc/error_details.proto",
    // The response of the Delete operations, named by the operation option
    // only: listed so that the REST face can write it as JSON.
    "google/protobuf/empty.proto",
];

/// The catalog file's messages and every type they contain: these get serde
/// implementations (pbjson). Request messages don't; nothing parses them from JSON
/// through serde.
const CATALOG_MESSAGES: &[&str] = &[
    ".yandex.cloud.compute.v1.Image",
    ".yandex.cloud.compute.v1.Os",
    ".yandex.cloud.compute.v1.Nvidia",
    ".yandex.cloud.compute.v1.HardwareGeneration",
    ".yandex.cloud.compute.v1.LegacyHardwareFeatures",
    ".yandex.cloud.compute.v1.Generation2HardwareFeatures",
    ".yandex.cloud.compute.v1.PCITopology",
    ".yandex.cloud.compute.v1.KMSKey",
    ".yandex.cloud.containerregistry.v1.Image",
    ".yandex.cloud.containerregistry.v1.Blob",
    ".yandex.cloud.containerregistry.v1.Registry",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(ENTRY_FILES)?;

    let encoded_descriptors = compiler.encode_file_descriptor_set();
    std::fs::write(out_dir.join("descriptor_set.bin"), &encoded_descriptors)?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Sorted maps give the same bytes and JSON for the same image every time.
        .btree_map(".")
        // pbjson's Timestamp: the same message, plus the RFC 3339 serde the
        // catalog loader needs (prost-types' has none).
        .extern_path(".google.protobuf.Timestamp", "::pbjson_types::Timestamp")
        .include_file("protos.rs")
        .compile_fds(compiler.file_descriptor_set())?;

    // Appended to the package files prost just wrote, so each impl sits in
    // the module of its type.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded_descriptors)?
        .extern_path(".google.protobuf", "::pbjson_types")
        .btree_map(["."])
        .generate(CATALOG_MESSAGES, |package| {
            OpenOptions::new()
                .append(true)
                .open(out_dir.join(format!("{package}.rs")))
        })?;
    Ok(())
}
