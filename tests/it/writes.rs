//! The write API through a tonic client built from our protos: Create,
//! Update, Delete and ListOperations, the Operation service, idempotency keys,
//! validation, rollback, concurrency, authorization and catalog reload. The
//! Terraform-shaped sequence and the other backend-neutral checks run on the
//! embedded backend and on PostgreSQL by the same code.

use std::time::{Duration, Instant};

use crate::common::{self, TestApp, process::Server, test_settings, write_temp};
use crate::pg_support::TestSchema;

use image_service::app::{Application, Settings};
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{self, create_image_request::Source};
use image_service::proto::container_registry;
use image_service::proto::container_registry::image_service_client::ImageServiceClient as RegistryClient;
use image_service::proto::operation::operation::Result as Outcome;
use image_service::proto::operation::operation_service_client::OperationServiceClient;
use image_service::proto::operation::{CancelOperationRequest, GetOperationRequest, Operation};
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

const FOLDER: &str = "b1gwrites";

/// The server on a backend, and what keeps that backend alive.
struct Started {
    app: TestApp,
    _schema: Option<TestSchema>,
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Postgres,
}

async fn start_on(
    backend: Backend,
    test: &str,
    edit: impl FnOnce(&mut Settings),
) -> Option<Started> {
    let mut settings = test_settings(None);
    edit(&mut settings);
    match backend {
        Backend::Memory => Some(Started {
            app: TestApp::start(settings, None, None).await,
            _schema: None,
        }),
        Backend::Postgres => {
            let schema = TestSchema::create(test).await?;
            let database = schema.migrated().await;
            let app = Application::build_with_database(&settings, database)
                .await
                .expect("the server starts");
            Some(Started {
                app: TestApp::from_application(app),
                _schema: Some(schema),
            })
        }
    }
}

fn create_request(name: &str) -> compute::CreateImageRequest {
    compute::CreateImageRequest {
        folder_id: FOLDER.into(),
        name: name.into(),
        description: "made by a test".into(),
        labels: [("env".to_owned(), "ci".to_owned())].into(),
        family: "test-family".into(),
        // As Terraform sends them when unset.
        min_disk_size: 0,
        os: Some(compute::Os::default()),
        source: Some(Source::DiskId("fhmdisk0000000000001".into())),
        ..Default::default()
    }
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("idempotency-key", key.parse().expect("ascii"));
    request
}

struct Clients {
    images: ImageServiceClient<Channel>,
    operations: OperationServiceClient<Channel>,
}

impl Clients {
    async fn of(app: &TestApp) -> Self {
        let channel = app.channel().await;
        Self {
            images: ImageServiceClient::new(channel.clone()),
            operations: OperationServiceClient::new(channel),
        }
    }

    async fn create(
        &mut self,
        request: compute::CreateImageRequest,
    ) -> Result<Operation, tonic::Status> {
        self.images.create(request).await.map(|r| r.into_inner())
    }

    async fn get_image(&mut self, id: &str) -> Result<compute::Image, tonic::Status> {
        self.images
            .get(compute::GetImageRequest {
                image_id: id.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn get_operation(&mut self, id: &str) -> Operation {
        self.operations
            .get(GetOperationRequest {
                operation_id: id.into(),
            })
            .await
            .expect("the operation is readable")
            .into_inner()
    }

    /// Polls OperationService.Get, as the SDKs wait, until done.
    async fn wait(&mut self, id: &str) -> Operation {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let operation = self.get_operation(id).await;
            if operation.done {
                return operation;
            }
            assert!(Instant::now() < deadline, "operation {id} never finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn list_names(&mut self) -> Vec<String> {
        let page = self
            .images
            .list(compute::ListImagesRequest {
                folder_id: FOLDER.into(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .expect("lists")
            .into_inner();
        page.images.into_iter().map(|i| i.name).collect()
    }
}

fn metadata_image_id(operation: &Operation, type_name: &str) -> String {
    let metadata = operation
        .metadata
        .as_ref()
        .expect("metadata on every operation");
    assert_eq!(
        metadata.type_url,
        format!("type.googleapis.com/{type_name}")
    );
    compute::CreateImageMetadata::decode(metadata.value.as_slice())
        .expect("metadata decodes")
        .image_id
}

fn response_image(operation: &Operation) -> compute::Image {
    match &operation.result {
        Some(Outcome::Response(any)) => {
            assert_eq!(
                any.type_url,
                "type.googleapis.com/yandex.cloud.compute.v1.Image"
            );
            compute::Image::decode(any.value.as_slice()).expect("the image decodes")
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

fn assert_id(id: &str) {
    assert_eq!(id.len(), 20, "{id}");
    assert!(id.starts_with("fd8"), "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)),
        "{id}"
    );
}

/// What Terraform's `yandex_compute_image` does over its life: Create, read
/// the id from the metadata before waiting, wait, Read, Update labels then
/// name (one call each, waited), Delete, and Read NOT_FOUND.
async fn terraform_sequence(backend: Backend) {
    let Some(started) = start_on(backend, "terraform_sequence", |_| {}).await else {
        return;
    };
    let mut clients = Clients::of(&started.app).await;
    let created = clients
        .create(create_request("tf-image"))
        .await
        .expect("created");
    assert_id(&created.id);
    assert_eq!(created.description, "Create image");
    assert!(!created.done, "the first reply is the running operation");
    assert!(created.created_at.is_some() && created.modified_at.is_some());
    let image_id = metadata_image_id(&created, "yandex.cloud.compute.v1.CreateImageMetadata");
    assert_id(&image_id);
    // Visible at once, still being created.
    let early = clients.get_image(&image_id).await.expect("visible at once");
    assert_eq!(early.status, compute::image::Status::Creating as i32);

    let done = clients.wait(&created.id).await;
    assert_eq!(
        metadata_image_id(&done, "yandex.cloud.compute.v1.CreateImageMetadata"),
        image_id,
        "the metadata stays on every Get"
    );
    let image = response_image(&done);
    assert_eq!(image.status, compute::image::Status::Ready as i32);
    let read = clients.get_image(&image_id).await.expect("read");
    assert_eq!(read, image);
    assert_eq!(read.folder_id, FOLDER);
    assert_eq!(read.family, "test-family");
    assert_eq!(
        read.os.as_ref().map(|o| o.r#type),
        Some(compute::os::Type::Linux as i32)
    );
    assert_eq!(
        read.min_disk_size % (1 << 30),
        0,
        "whole GiB, as Terraform reads it"
    );
    assert!(read.min_disk_size > 0);

    let update =
        |paths: &[&str], name: &str, labels: &[(&str, &str)]| compute::UpdateImageRequest {
            image_id: image_id.clone(),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
    let relabel = clients
        .images
        .update(update(
            &["labels"],
            "ignored-name",
            &[("env", "prod"), ("team", "a")],
        ))
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(relabel.description, "Update image");
    metadata_image_id(&relabel, "yandex.cloud.compute.v1.UpdateImageMetadata");
    let relabelled = response_image(&clients.wait(&relabel.id).await);
    assert_eq!(
        relabelled.labels.get("env").map(String::as_str),
        Some("prod")
    );
    assert_eq!(relabelled.name, "tf-image", "the mask named labels only");
    let rename = clients
        .images
        .update(update(&["name"], "tf-renamed", &[]))
        .await
        .expect("renamed")
        .into_inner();
    let renamed = response_image(&clients.wait(&rename.id).await);
    assert_eq!(renamed.name, "tf-renamed");
    assert_eq!(renamed.labels.len(), 2, "labels kept");
    assert_eq!(clients.get_image(&image_id).await.expect("read"), renamed);

    let delete = clients
        .images
        .delete(compute::DeleteImageRequest {
            image_id: image_id.clone(),
        })
        .await
        .expect("deleting")
        .into_inner();
    assert_eq!(delete.description, "Delete image");
    metadata_image_id(&delete, "yandex.cloud.compute.v1.DeleteImageMetadata");
    let deleted = clients.wait(&delete.id).await;
    match &deleted.result {
        Some(Outcome::Response(any)) => {
            assert_eq!(any.type_url, "type.googleapis.com/google.protobuf.Empty");
        }
        other => panic!("expected Empty, got {other:?}"),
    }
    let gone = clients.get_image(&image_id).await.expect_err("gone");
    assert_eq!(gone.code(), Code::NotFound);
    // Terraform counts a synchronous NOT_FOUND of Delete as deleted.
    let again = clients
        .images
        .delete(compute::DeleteImageRequest {
            image_id: image_id.clone(),
        })
        .await
        .expect_err("absent");
    assert_eq!(again.code(), Code::NotFound);
    let absent_update = clients
        .images
        .update(update(&["name"], "x", &[]))
        .await
        .expect_err("absent");
    assert_eq!(absent_update.code(), Code::NotFound);

    // Its operations, newest first, two to a page.
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = clients
            .images
            .list_operations(compute::ListImageOperationsRequest {
                image_id: image_id.clone(),
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .expect("lists operations")
            .into_inner();
        assert!(page.operations.len() <= 2);
        ids.extend(page.operations.into_iter().map(|o| o.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids, [delete.id, rename.id, relabel.id, created.id]);
    started.app.stop().await;
}

#[tokio::test]
async fn terraform_sequence_on_the_embedded_backend() {
    terraform_sequence(Backend::Memory).await;
}

#[tokio::test]
async fn terraform_sequence_on_postgres() {
    terraform_sequence(Backend::Postgres).await;
}

/// A repeated key answers the operation it started, in its current state.
async fn idempotency_keys(backend: Backend) {
    let Some(started) = start_on(backend, "idempotency_keys", |_| {}).await else {
        return;
    };
    let mut clients = Clients::of(&started.app).await;
    let first = clients
        .images
        .create(with_key(create_request("keyed"), "k-1"))
        .await
        .expect("created")
        .into_inner();
    let done = clients.wait(&first.id).await;
    let repeat = clients
        .images
        .create(with_key(create_request("keyed"), "k-1"))
        .await
        .expect("the repeat is no error (the name is not checked again)")
        .into_inner();
    assert_eq!(repeat.id, first.id);
    assert!(repeat.done, "the operation as it is now");
    assert_eq!(repeat, done);
    assert_eq!(clients.list_names().await, ["keyed"], "one image");
    // Another key is another write (and this one's name is taken).
    let other = clients
        .images
        .create(with_key(create_request("keyed"), "k-2"))
        .await
        .expect_err("a second image of that name");
    assert_eq!(other.code(), Code::AlreadyExists);
    // The same key on another method is its own.
    let image_id = metadata_image_id(&first, "yandex.cloud.compute.v1.CreateImageMetadata");
    let delete = clients
        .images
        .delete(with_key(
            compute::DeleteImageRequest {
                image_id: image_id.clone(),
            },
            "k-1",
        ))
        .await
        .expect("deletes")
        .into_inner();
    assert_ne!(delete.id, first.id);
    // Reads ignore keys.
    let read = clients
        .images
        .get(with_key(compute::GetImageRequest { image_id }, "k-1"))
        .await;
    assert!(read.is_ok());
    started.app.stop().await;
}

#[tokio::test]
async fn idempotency_keys_on_the_embedded_backend() {
    idempotency_keys(Backend::Memory).await;
}

#[tokio::test]
async fn idempotency_keys_on_postgres() {
    idempotency_keys(Backend::Postgres).await;
}

/// Concurrent writers: one name, one winner; distinct names, all of them.
async fn concurrent_writers(backend: Backend) {
    let Some(started) = start_on(backend, "concurrent_writers", |_| {}).await else {
        return;
    };
    let channel = started.app.channel().await;
    let racing = (0..16).map(|_| {
        let mut client = ImageServiceClient::new(channel.clone());
        tokio::spawn(async move { client.create(create_request("same-name")).await })
    });
    let mut codes = Vec::new();
    for outcome in futures_join(racing).await {
        codes.push(outcome.map(|_| Code::Ok).unwrap_or_else(|s| s.code()));
    }
    assert_eq!(
        codes.iter().filter(|c| **c == Code::Ok).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Code::AlreadyExists).count(),
        15,
        "{codes:?}"
    );
    let distinct = (0..40).map(|i| {
        let mut client = ImageServiceClient::new(channel.clone());
        tokio::spawn(async move { client.create(create_request(&format!("image-{i}"))).await })
    });
    for outcome in futures_join(distinct).await {
        outcome.expect("every distinct name is created");
    }
    let mut clients = Clients::of(&started.app).await;
    assert_eq!(clients.list_names().await.len(), 41);
    started.app.stop().await;
}

async fn futures_join<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        results.push(task.await.expect("the task ends"));
    }
    results
}

#[tokio::test]
async fn concurrent_writers_on_the_embedded_backend() {
    concurrent_writers(Backend::Memory).await;
}

#[tokio::test]
async fn concurrent_writers_on_postgres() {
    concurrent_writers(Backend::Postgres).await;
}

/// A failed import and a cancelled Create leave nothing behind.
async fn failures_roll_back(backend: Backend) {
    let Some(started) = start_on(backend, "failures_roll_back", |s| {
        s.writes.operation_time = Some(Duration::from_secs(30));
    })
    .await
    else {
        return;
    };
    let mut clients = Clients::of(&started.app).await;
    let mut bad = create_request("bad-import");
    bad.source = Some(Source::Uri("ftp://example/disk.img".into()));
    let running = clients
        .create(bad)
        .await
        .expect("accepted, fails in the operation");
    let image_id = metadata_image_id(&running, "yandex.cloud.compute.v1.CreateImageMetadata");
    // Running for 30 s: a Get does not finish it early.
    assert!(!clients.get_operation(&running.id).await.done);
    let cancelled = clients
        .operations
        .cancel(CancelOperationRequest {
            operation_id: running.id.clone(),
        })
        .await
        .expect("cancels")
        .into_inner();
    assert!(cancelled.done);
    match &cancelled.result {
        Some(Outcome::Error(status)) => assert_eq!(status.code, Code::Cancelled as i32),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        clients
            .get_image(&image_id)
            .await
            .expect_err("rolled back")
            .code(),
        Code::NotFound
    );
    assert!(clients.list_names().await.is_empty());
    started.app.stop().await;

    let Some(started) = start_on(backend, "failures_roll_back_2", |_| {}).await else {
        return;
    };
    let mut clients = Clients::of(&started.app).await;
    let mut bad = create_request("bad-import");
    bad.source = Some(Source::Uri("not a link".into()));
    let running = clients.create(bad).await.expect("accepted");
    let image_id = metadata_image_id(&running, "yandex.cloud.compute.v1.CreateImageMetadata");
    let failed = clients.wait(&running.id).await;
    match &failed.result {
        Some(Outcome::Error(status)) => {
            assert_eq!(status.code, Code::InvalidArgument as i32);
            assert!(status.message.contains("not a link"), "{}", status.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        clients
            .get_image(&image_id)
            .await
            .expect_err("rolled back")
            .code(),
        Code::NotFound
    );
    assert!(clients.list_names().await.is_empty());
    started.app.stop().await;
}

#[tokio::test]
async fn failures_roll_back_on_the_embedded_backend() {
    failures_roll_back(Backend::Memory).await;
}

#[tokio::test]
async fn failures_roll_back_on_postgres() {
    failures_roll_back(Backend::Postgres).await;
}

#[tokio::test]
async fn every_bad_field_is_refused_by_name_and_changes_nothing() {
    let app = TestApp::demo().await;
    let mut clients = Clients::of(&app).await;
    type Edit = fn(&mut compute::CreateImageRequest);
    let cases: [(&str, Edit); 14] = [
        ("folder_id", |r| r.folder_id.clear()),
        ("folder_id", |r| r.folder_id = "f".repeat(51)),
        ("name", |r| r.name = "Bad Name".into()),
        ("name", |r| r.name = "x".repeat(64)),
        ("description", |r| r.description = "d".repeat(257)),
        ("labels", |r| {
            r.labels.insert("Upper".into(), "v".into());
        }),
        ("labels", |r| {
            r.labels.insert("k".into(), "V A L".into());
        }),
        ("labels", |r| {
            r.labels = (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        }),
        ("family", |r| r.family = "-bad".into()),
        ("min_disk_size", |r| r.min_disk_size = 1024),
        ("product_ids", |r| r.product_ids = vec!["p".repeat(51)]),
        ("source", |r| r.source = None),
        ("image_id", |r| {
            r.source = Some(Source::ImageId("i".repeat(51)))
        }),
        ("snapshot_id", |r| {
            r.source = Some(Source::SnapshotId("s".repeat(51)))
        }),
    ];
    for (field, edit) in cases {
        let mut request = create_request("valid-name");
        edit(&mut request);
        let status = clients.create(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let violations = status
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.clone())
            .unwrap_or_default();
        assert_eq!(
            violations.first().map(|v| v.field.as_str()),
            Some(field),
            "{status:?}"
        );
    }
    // Update: an unknown mask path; a bad value in a named field.
    let bad_mask = clients
        .images
        .update(compute::UpdateImageRequest {
            image_id: "fd8anything".into(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["family".into()],
            }),
            ..Default::default()
        })
        .await
        .expect_err("unknown path");
    assert_eq!(bad_mask.code(), Code::InvalidArgument);
    assert!(
        bad_mask.message().contains("update_mask"),
        "{}",
        bad_mask.message()
    );
    assert!(clients.list_names().await.is_empty(), "nothing was created");
    // A source image that does not exist is NOT_FOUND, synchronously.
    let mut request = create_request("from-nothing");
    request.source = Some(Source::ImageId("fd8nosuchimage".into()));
    assert_eq!(
        clients.create(request).await.expect_err("absent").code(),
        Code::NotFound
    );
    app.stop().await;
}

#[tokio::test]
async fn an_image_made_from_an_image_inherits_its_system() {
    let app = TestApp::demo().await;
    let mut clients = Clients::of(&app).await;
    let demo = clients
        .images
        .list(compute::ListImagesRequest {
            folder_id: "standard-images".into(),
            ..Default::default()
        })
        .await
        .expect("the demo folder lists")
        .into_inner()
        .images
        .into_iter()
        .next()
        .expect("a demo image");
    let mut request = create_request("a-copy");
    request.source = Some(Source::ImageId(demo.id.clone()));
    let running = clients.create(request).await.expect("created");
    let copy = response_image(&clients.wait(&running.id).await);
    assert_eq!(copy.os, demo.os);
    assert_eq!(copy.storage_size, demo.storage_size);
    assert_eq!(copy.min_disk_size, demo.min_disk_size);
    assert_eq!(copy.product_ids, demo.product_ids);
    assert_eq!(copy.hardware_generation, demo.hardware_generation);
    app.stop().await;
}

#[tokio::test]
async fn a_set_operation_time_keeps_the_image_creating_until_it_passes() {
    let mut settings = test_settings(None);
    settings.writes.operation_time = Some(Duration::from_millis(600));
    let app = TestApp::start(settings, None, None).await;
    let mut clients = Clients::of(&app).await;
    let started = Instant::now();
    let created = clients
        .create(create_request("slow"))
        .await
        .expect("created");
    let image_id = metadata_image_id(&created, "yandex.cloud.compute.v1.CreateImageMetadata");
    let early = clients.get_operation(&created.id).await;
    if started.elapsed() < Duration::from_millis(500) {
        assert!(!early.done, "not done before its time");
        assert!(
            early.result.is_none(),
            "neither response nor error while running"
        );
        let image = clients.get_image(&image_id).await.expect("visible");
        assert_eq!(image.status, compute::image::Status::Creating as i32);
    }
    let done = clients.wait(&created.id).await;
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(
        response_image(&done).status,
        compute::image::Status::Ready as i32
    );
    // An unknown operation is NOT_FOUND; an empty id names the field.
    let unknown = clients
        .operations
        .get(GetOperationRequest {
            operation_id: "fd8nosuchoperation0".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let empty = clients
        .operations
        .get(GetOperationRequest::default())
        .await
        .expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().contains("operation_id"));
    app.stop().await;
}

#[tokio::test]
async fn a_registry_image_is_deleted_from_get_and_list() {
    let app = TestApp::demo().await;
    let mut registry = RegistryClient::new(app.channel().await);
    let mut operations = OperationServiceClient::new(app.channel().await);
    let demo = common::demo_catalog_json();
    let first = &demo["containerRegistryImages"][0];
    let id = first["id"]
        .as_str()
        .expect("a demo registry image")
        .to_owned();
    let name = first["name"].as_str().expect("its repository").to_owned();
    let registry_id = name.split('/').next().expect("a registry").to_owned();
    let list = |registry: &mut RegistryClient<Channel>| {
        let mut registry = registry.clone();
        let registry_id = registry_id.clone();
        async move {
            let mut ids = Vec::new();
            let mut token = String::new();
            loop {
                let page = registry
                    .list(container_registry::ListImagesRequest {
                        registry_id: registry_id.clone(),
                        page_size: 1,
                        page_token: token,
                        ..Default::default()
                    })
                    .await
                    .expect("lists")
                    .into_inner();
                ids.extend(page.images.into_iter().map(|i| i.id));
                if page.next_page_token.is_empty() {
                    return ids;
                }
                token = page.next_page_token;
            }
        }
    };
    let before = list(&mut registry).await;
    assert!(before.contains(&id));
    let running = registry
        .delete(container_registry::DeleteImageRequest {
            image_id: id.clone(),
        })
        .await
        .expect("deletes")
        .into_inner();
    let metadata = running.metadata.as_ref().expect("metadata");
    assert_eq!(
        metadata.type_url,
        "type.googleapis.com/yandex.cloud.containerregistry.v1.DeleteImageMetadata"
    );
    assert!(
        running.id.starts_with("crp") && running.id.len() == 20,
        "{}",
        running.id
    );
    let done = operations
        .get(GetOperationRequest {
            operation_id: running.id.clone(),
        })
        .await
        .expect("readable")
        .into_inner();
    assert!(done.done, "done by its first Get");
    let gone = registry
        .get(container_registry::GetImageRequest {
            image_id: id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    let after = list(&mut registry).await;
    let expected: Vec<String> = before.into_iter().filter(|i| *i != id).collect();
    assert_eq!(
        after, expected,
        "paged one at a time, the deleted image is skipped"
    );
    let again = registry
        .delete(container_registry::DeleteImageRequest { image_id: id })
        .await
        .expect_err("absent");
    assert_eq!(again.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn writes_need_write_access_to_the_folder() {
    let reader = "reader-token";
    let writer = "writer-token";
    let digest =
        |token: &str| image_service::transport::auth::TokenDigest::of(token.as_bytes()).to_hex();
    let tokens = write_temp(&format!(
        r#"{{"tokens": [
            {{"subject": "reader", "sha256": "{}", "folders": ["{FOLDER}"]}},
            {{"subject": "writer", "sha256": "{}", "folders": ["{FOLDER}"], "write_folders": ["{FOLDER}"]}}
        ]}}"#,
        digest(reader),
        digest(writer)
    ));
    let mut settings = test_settings(None);
    settings.auth_tokens = Some(tokens.path().to_owned());
    let app = TestApp::start(settings, None, None).await;
    let mut images = ImageServiceClient::new(app.channel().await);
    let mut operations = OperationServiceClient::new(app.channel().await);
    let as_token = |token: &str, request: compute::CreateImageRequest| {
        let mut request = Request::new(request);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        request
    };
    let denied = images
        .create(as_token(reader, create_request("by-reader")))
        .await
        .expect_err("a reader may not write");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("may not write folder"),
        "{}",
        denied.message()
    );
    let mut elsewhere = create_request("elsewhere");
    elsewhere.folder_id = "b1gother".into();
    let denied = images
        .create(as_token(writer, elsewhere))
        .await
        .expect_err("only its folders");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let created = images
        .create(as_token(writer, create_request("by-writer")))
        .await
        .expect("a writer writes")
        .into_inner();
    assert_eq!(created.created_by, "writer");
    // The reader may follow the operation (it reads the folder).
    let mut get = Request::new(GetOperationRequest {
        operation_id: created.id.clone(),
    });
    get.metadata_mut().insert(
        "authorization",
        format!("Bearer {reader}").parse().expect("ascii"),
    );
    assert!(operations.get(get).await.is_ok());
    let mut cancel = Request::new(CancelOperationRequest {
        operation_id: created.id.clone(),
    });
    cancel.metadata_mut().insert(
        "authorization",
        format!("Bearer {reader}").parse().expect("ascii"),
    );
    assert_eq!(
        operations
            .cancel(cancel)
            .await
            .expect_err("no write")
            .code(),
        Code::PermissionDenied
    );
    let anonymous = images
        .create(create_request("nobody"))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    app.stop().await;
}

/// A catalog reload replaces the catalog; the writes stay on top of it.
#[tokio::test]
async fn a_catalog_reload_keeps_the_writes() {
    let mut catalog = common::demo_catalog_json();
    let file = write_temp(&catalog.to_string());
    let server = Server::start(&["--catalog", file.path().to_str().expect("utf-8")]);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut images = ImageServiceClient::new(channel.clone());
    let mut operations = OperationServiceClient::new(channel);
    let catalog_image = catalog["computeImages"][0]["id"]
        .as_str()
        .expect("a demo image")
        .to_owned();
    let created = images
        .create(create_request("written"))
        .await
        .expect("created")
        .into_inner();
    let written_id = metadata_image_id(&created, "yandex.cloud.compute.v1.CreateImageMetadata");
    let deleting = images
        .delete(compute::DeleteImageRequest {
            image_id: catalog_image.clone(),
        })
        .await
        .expect("deletes a catalog image")
        .into_inner();
    for id in [&created.id, &deleting.id] {
        let done = operations
            .get(GetOperationRequest {
                operation_id: id.clone(),
            })
            .await
            .expect("readable")
            .into_inner();
        assert!(done.done);
    }
    // The new catalog file adds an image (and still holds the deleted one).
    let mut added = catalog["computeImages"][0].clone();
    added["id"] = "fd8addedbyreload0001".into();
    added["name"] = "added-by-reload".into();
    catalog["computeImages"]
        .as_array_mut()
        .expect("a list")
        .push(added);
    std::fs::write(file.path(), catalog.to_string()).expect("rewrites the catalog");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = images
            .get(compute::GetImageRequest {
                image_id: "fd8addedbyreload0001".into(),
            })
            .await;
        if found.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reload never served the new image"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written = images
        .get(compute::GetImageRequest {
            image_id: written_id,
        })
        .await
        .expect("a written image outlives the reload")
        .into_inner();
    assert_eq!(written.name, "written");
    let deleted = images
        .get(compute::GetImageRequest {
            image_id: catalog_image,
        })
        .await
        .expect_err("a deletion outlives the reload");
    assert_eq!(deleted.code(), Code::NotFound);
    server.terminate();
}

/// A Delete right after an Update, finished first (by its Get): the Update
/// then ends with NOT_FOUND in its error instead of never ending.
#[tokio::test]
async fn an_update_overtaken_by_a_delete_still_ends() {
    let app = TestApp::demo().await;
    let mut clients = Clients::of(&app).await;
    let created = clients
        .create(create_request("short-lived"))
        .await
        .expect("created");
    let image_id = metadata_image_id(&created, "yandex.cloud.compute.v1.CreateImageMetadata");
    clients.wait(&created.id).await;
    let update = clients
        .images
        .update(compute::UpdateImageRequest {
            image_id: image_id.clone(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
            description: "changed".into(),
            ..Default::default()
        })
        .await
        .expect("updating")
        .into_inner();
    let delete = clients
        .images
        .delete(compute::DeleteImageRequest { image_id })
        .await
        .expect("deleting")
        .into_inner();
    clients.wait(&delete.id).await;
    let updated = clients.wait(&update.id).await;
    match &updated.result {
        Some(Outcome::Error(status)) => assert_eq!(status.code, Code::NotFound as i32),
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
    app.stop().await;
}
