//! ImageService.Get of both APIs over the network with a tonic client built from our protos.

use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use common::{TestApp, demo_catalog_json};
use image_service::domain::compute::{ComputeImageQuery, Family};
use image_service::domain::container::ContainerImageQuery;
use image_service::domain::page::PageRequest;
use image_service::domain::{FolderId, ImageId};
use image_service::proto::compute::image_service_client::ImageServiceClient as ComputeClient;
use image_service::proto::compute::{self, GetImageRequest as ComputeGet};
use image_service::proto::container_registry::image_service_client::ImageServiceClient as RegistryClient;
use image_service::proto::container_registry::{self, GetImageRequest as RegistryGet};
use image_service::proto::descriptor_pool;
use image_service::store::{
    ComputeImageRepository, ContainerImageRepository, EncodedPage, ListError, Repositories,
    RepositoryError,
};
use prost_reflect::DynamicMessage;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// A catalog entry read the way the server reads it: proto3 JSON into the message.
fn from_catalog<T: prost::Message + Default>(type_name: &str, entry: &serde_json::Value) -> T {
    let descriptor = descriptor_pool()
        .unwrap()
        .get_message_by_name(type_name)
        .unwrap();
    DynamicMessage::deserialize(descriptor, entry.clone())
        .unwrap()
        .transcode_to()
        .unwrap()
}

fn request_id_header(status: &Status) -> String {
    status
        .metadata()
        .get("x-request-id")
        .expect("x-request-id on an error")
        .to_str()
        .unwrap()
        .to_owned()
}

fn assert_request_info(status: &Status) -> String {
    let details = status.get_error_details();
    let info = details.request_info().expect("RequestInfo detail");
    assert_eq!(info.request_id, request_id_header(status));
    info.request_id.clone()
}

#[tokio::test]
async fn compute_get_returns_every_demo_image_field_for_field() {
    let app = TestApp::demo().await;
    let mut client = ComputeClient::new(app.channel().await);
    let catalog = demo_catalog_json();
    let entries = catalog["computeImages"].as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        let expected: compute::Image = from_catalog("yandex.cloud.compute.v1.Image", entry);
        let response = client
            .get(ComputeGet {
                image_id: expected.id.clone(),
            })
            .await
            .unwrap();
        let request_id = response.metadata().get("x-request-id").unwrap();
        assert_eq!(request_id.len(), 36, "a generated UUID");
        assert_eq!(response.into_inner(), expected);
    }
}

#[tokio::test]
async fn compute_get_keeps_fields_the_seed_pages_omit() {
    let app = TestApp::with_catalog(
        r#"{"computeImages": [{
            "id": "fd8full", "name": "gpu", "size": "123", "labels": {"a": "1", "b": "2"},
            "os": {"type": "LINUX", "nvidia": {"driver": "535"}},
            "hardwareGeneration": {"generation2Features": {}},
            "created_at": "2025-01-02T03:04:05.123456789Z", "storage_size": 42,
            "status": 2
        }]}"#,
    )
    .await;
    let image = ComputeClient::new(app.channel().await)
        .get(ComputeGet {
            image_id: "fd8full".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(image.size, 123);
    assert_eq!(image.storage_size, 42);
    assert_eq!(image.labels.len(), 2);
    assert_eq!(image.os.unwrap().nvidia.unwrap().driver, "535");
    assert_eq!(image.status, compute::image::Status::Ready as i32);
    let created = image.created_at.unwrap();
    assert_eq!(created.nanos, 123_456_789);
    // An empty message in a oneof is still "set".
    assert!(matches!(
        image.hardware_generation.unwrap().features,
        Some(compute::hardware_generation::Features::Generation2Features(
            _
        ))
    ));
}

#[tokio::test]
async fn container_registry_get_returns_every_demo_image() {
    let app = TestApp::demo().await;
    let mut client = RegistryClient::new(app.channel().await);
    let catalog = demo_catalog_json();
    let entries = catalog["containerRegistryImages"].as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        let expected: container_registry::Image =
            from_catalog("yandex.cloud.containerregistry.v1.Image", entry);
        let got = client
            .get(RegistryGet {
                image_id: expected.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got, expected);
        assert!(!got.layers.is_empty());
    }
}

#[tokio::test]
async fn unknown_id_is_not_found_with_request_info() {
    let app = TestApp::demo().await;
    let status = ComputeClient::new(app.channel().await)
        .get(ComputeGet {
            image_id: "fd8nosuchimage".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "Image fd8nosuchimage not found");
    assert_request_info(&status);

    let status = RegistryClient::new(app.channel().await)
        .get(RegistryGet {
            image_id: "crpnosuchimage".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "Image crpnosuchimage not found");
    assert_request_info(&status);
}

#[tokio::test]
async fn invalid_image_id_names_the_field_with_bad_request_detail() {
    let app = TestApp::demo().await;
    let mut compute = ComputeClient::new(app.channel().await);
    let mut registry = RegistryClient::new(app.channel().await);
    for (image_id, description) in [
        (String::new(), "required field is empty"),
        ("x".repeat(51), "must be at most 50 characters long, got 51"),
    ] {
        let statuses = [
            compute
                .get(ComputeGet {
                    image_id: image_id.clone(),
                })
                .await
                .unwrap_err(),
            registry
                .get(RegistryGet {
                    image_id: image_id.clone(),
                })
                .await
                .unwrap_err(),
        ];
        for status in statuses {
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status.message().contains("image_id"),
                "{}",
                status.message()
            );
            let details = status.get_error_details();
            let violations = &details.bad_request().expect("BadRequest").field_violations;
            assert_eq!(violations.len(), 1);
            assert_eq!(violations[0].field, "image_id");
            assert_eq!(violations[0].description, description);
            assert_request_info(&status);
        }
    }
    // Exactly 50 characters is a valid id, just not a known one.
    let status = compute
        .get(ComputeGet {
            image_id: "x".repeat(50),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn incoming_request_id_is_kept_on_success_and_error() {
    let app = TestApp::demo().await;
    let mut client = ComputeClient::new(app.channel().await);
    let catalog = demo_catalog_json();
    let known = catalog["computeImages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut request = Request::new(ComputeGet { image_id: known });
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("mesh-req-0001"));
    request.metadata_mut().insert(
        "x-client-request-id",
        MetadataValue::from_static("client-0001"),
    );
    let response = client.get(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "mesh-req-0001"
    );

    let mut request = Request::new(ComputeGet {
        image_id: "fd8missing".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("mesh-req-0002"));
    let status = client.get(request).await.unwrap_err();
    assert_eq!(assert_request_info(&status), "mesh-req-0002");
}

#[tokio::test]
async fn every_call_gets_its_own_request_id() {
    let app = TestApp::demo().await;
    let mut client = ComputeClient::new(app.channel().await);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let status = client
            .get(ComputeGet {
                image_id: "nope".into(),
            })
            .await
            .unwrap_err();
        assert!(seen.insert(request_id_header(&status)));
    }
}

#[tokio::test]
async fn methods_not_built_answer_unimplemented_saying_so() {
    use image_service::proto::yandex::cloud::access::{
        ListAccessBindingsRequest, SetAccessBindingsRequest,
    };
    // A backend without writes (an embedding program's) leaves the writes unserved.
    let memory = image_service::store::MemoryRepository::new(
        image_service::store::catalog::Catalog::demo().unwrap(),
    );
    let read_only = Repositories {
        writes: None,
        ..Repositories::in_memory(memory)
    };
    let app = TestApp::with_repositories(read_only).await;
    let mut client = ComputeClient::new(app.channel().await);
    let status = client
        .set_access_bindings(SetAccessBindingsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status.message().contains(
            "yandex.cloud.compute.v1.ImageService/SetAccessBindings is not implemented by image-service"
        ),
        "{}",
        status.message()
    );
    assert_request_info(&status);
    let status = client
        .list_access_bindings(ListAccessBindingsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(status.message().contains("ImageService/ListAccessBindings"));
    let status = RegistryClient::new(app.channel().await)
        .delete(container_registry::DeleteImageRequest {
            image_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status
            .message()
            .contains("containerregistry.v1.ImageService/Delete")
    );
}

/// A backend that is down: the shape of a real outage (a database that refuses
/// connections, a corrupt row), seen through the repository trait.
struct DownBackend {
    error: RepositoryError,
}

#[async_trait]
impl ComputeImageRepository for DownBackend {
    async fn get_compute_image_encoded(
        &self,
        _id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        Err(self.error.clone())
    }

    async fn list_compute_images_encoded(
        &self,
        _query: &ComputeImageQuery,
        _page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        Err(self.error.clone().into())
    }

    async fn latest_compute_image_by_family(
        &self,
        _folder: &FolderId,
        _family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        Err(self.error.clone())
    }
}

#[async_trait]
impl ContainerImageRepository for DownBackend {
    async fn get_container_image_encoded(
        &self,
        _id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        Err(self.error.clone())
    }

    async fn list_container_images_encoded(
        &self,
        _query: &ContainerImageQuery,
        _page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        Err(self.error.clone().into())
    }

    async fn registry_folder(&self, _registry_id: &str) -> Result<Option<String>, RepositoryError> {
        Err(self.error.clone())
    }
}

#[tokio::test]
async fn failing_backend_answers_unavailable_or_internal() {
    for (error, code, text) in [
        (
            RepositoryError::Unavailable("connection refused".into()),
            Code::Unavailable,
            "image catalog backend is unavailable: connection refused",
        ),
        (
            RepositoryError::Internal("row 7 does not decode".into()),
            Code::Internal,
            "image catalog backend failed: row 7 does not decode",
        ),
    ] {
        let backend = Arc::new(DownBackend { error });
        let app = TestApp::with_repositories(Repositories {
            compute: backend.clone(),
            container: backend,
            writes: None,
        })
        .await;
        let status = ComputeClient::new(app.channel().await)
            .get(ComputeGet {
                image_id: "fd8any".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code);
        assert_eq!(status.message(), text);
        assert_request_info(&status);
        let status = RegistryClient::new(app.channel().await)
            .get(RegistryGet {
                image_id: "crpany".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code);
        // List and GetLatestByFamily report the backend the same way.
        let status = ComputeClient::new(app.channel().await)
            .list(compute::ListImagesRequest {
                folder_id: "f".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!((status.code(), status.message()), (code, text));
        let status = ComputeClient::new(app.channel().await)
            .get_latest_by_family(compute::GetImageLatestByFamilyRequest {
                folder_id: "f".into(),
                family: "ubuntu".into(),
            })
            .await
            .unwrap_err();
        assert_eq!((status.code(), status.message()), (code, text));
        let status = RegistryClient::new(app.channel().await)
            .list(container_registry::ListImagesRequest {
                registry_id: "crpany".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!((status.code(), status.message()), (code, text));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_gets_on_one_connection_all_succeed() {
    let app = TestApp::demo().await;
    let channel = app.channel().await;
    let catalog = demo_catalog_json();
    let ids: Vec<String> = catalog["computeImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let mut tasks = Vec::new();
    for round in 0..200 {
        let mut client = ComputeClient::new(channel.clone());
        let id = ids[round % ids.len()].clone();
        tasks.push(tokio::spawn(async move {
            client
                .get(ComputeGet {
                    image_id: id.clone(),
                })
                .await
                .map(|r| r.into_inner().id == id)
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap());
    }
}
