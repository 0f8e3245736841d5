//! Compiles the .proto files in proto/ with protox (pure Rust, no protoc on the
//! machine) and generates prost messages plus tonic servers and clients.
//!
//! It also writes `descriptor_set.bin`, the encoded FileDescriptorSet that server
//! reflection and the REST face read. That one is produced by
//! `encode_file_descriptor_set()`, which keeps extension options such as
//! `google.api.http`; the decoded prost form would silently drop them.

use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";

/// The files whose services and messages we serve; their imports come along.
const ENTRY_FILES: &[&str] = &[
    "yandex/cloud/compute/v1/image_service.proto",
    "yandex/cloud/containerregistry/v1/image_service.proto",
    "yandex/cloud/containerregistry/v1/registry.proto",
    "yandex/cloud/endpoint/api_endpoint_service.proto",
    "yandex/cloud/validation.proto",
    "google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(ENTRY_FILES)?;

    std::fs::write(
        out_dir.join("descriptor_set.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Sorted maps give the same bytes and JSON for the same image every time.
        .btree_map(".")
        .include_file("protos.rs")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
