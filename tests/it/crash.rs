//! No acknowledged write is lost: the real binary takes concurrent writes,
//! is killed with SIGKILL in the middle of them, and is started again on the
//! same `--data-dir` (or PostgreSQL schema). Every write whose reply arrived
//! must be there, its operation readable and finished; nothing half-written
//! may show (every image listed has its Create operation). A graceful restart
//! keeps idempotency keys too.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::process::Server;
use crate::pg_support::TestSchema;

use image_service::proto::compute::create_image_request::Source;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{self, image::Status};
use image_service::proto::operation::operation_service_client::OperationServiceClient;
use image_service::proto::operation::{GetOperationRequest, Operation};
use image_service::proto::yandex::cloud::access::{
    AccessBinding, ListAccessBindingsRequest, SetAccessBindingsRequest, Subject,
};
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request};

const FOLDER: &str = "b1gcrash";
const WRITERS: usize = 4;

/// What the writers saw acknowledged.
#[derive(Default)]
struct Acknowledged {
    /// (image id, operation id) of each Create answered.
    created: Vec<(String, String)>,
    /// (image id, operation id) of each Delete answered.
    deleted: Vec<(String, String)>,
}

async fn connect(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects")
}

fn image_of(operation: &Operation) -> String {
    let metadata = operation.metadata.as_ref().expect("metadata");
    compute::CreateImageMetadata::decode(metadata.value.as_slice())
        .expect("metadata decodes")
        .image_id
}

/// Writers that Create (and Delete every third image they made) until stopped.
fn spawn_writers(
    channel: &Channel,
    seen: &Arc<Mutex<Acknowledged>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|worker| {
            let mut images = ImageServiceClient::new(channel.clone());
            let seen = seen.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let request = compute::CreateImageRequest {
                        folder_id: FOLDER.into(),
                        name: format!("crash-{worker}-{n}"),
                        labels: [("n".to_owned(), n.to_string())].into(),
                        source: Some(Source::DiskId("fhmdisk".into())),
                        ..Default::default()
                    };
                    let Ok(reply) = images.create(request).await else {
                        return; // the server is gone
                    };
                    let operation = reply.into_inner();
                    let image = image_of(&operation);
                    seen.lock()
                        .expect("not poisoned")
                        .created
                        .push((image.clone(), operation.id));
                    if n % 3 == 2 {
                        // Wait for READY first: a CREATING image can't be deleted.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        let delete = compute::DeleteImageRequest {
                            image_id: image.clone(),
                        };
                        match images.delete(delete).await {
                            Ok(reply) => seen
                                .lock()
                                .expect("not poisoned")
                                .deleted
                                .push((image, reply.into_inner().id)),
                            Err(status) if status.code() == Code::FailedPrecondition => {}
                            Err(_) => return,
                        }
                    }
                }
            })
        })
        .collect()
}

async fn wait_done(operations: &mut OperationServiceClient<Channel>, id: &str) -> Operation {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let operation = operations
            .get(GetOperationRequest {
                operation_id: id.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("acknowledged operation {id} is lost: {status:?}"))
            .into_inner();
        if operation.done {
            return operation;
        }
        assert!(
            Instant::now() < deadline,
            "operation {id} never finished after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs writers against a server started with `args`, kills it mid-stream,
/// restarts it and checks every acknowledged write.
async fn acknowledged_writes_survive_kill(args: &[&str]) {
    let mut server = Server::start(args);
    let channel = connect(&server.addr).await;
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let writers = spawn_writers(&channel, &seen);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    for writer in writers {
        let _ = writer.await;
    }
    drop(channel);
    let seen = Arc::try_unwrap(seen)
        .ok()
        .expect("writers ended")
        .into_inner()
        .expect("not poisoned");
    assert!(
        seen.created.len() >= 50,
        "only {} writes acknowledged",
        seen.created.len()
    );

    let restarted = Server::start(args);
    let channel = connect(&restarted.addr).await;
    let mut images = ImageServiceClient::new(channel.clone());
    let mut operations = OperationServiceClient::new(channel);
    let deleted: BTreeSet<&str> = seen
        .deleted
        .iter()
        .map(|(image, _)| image.as_str())
        .collect();
    for (image, operation) in &seen.deleted {
        let done = wait_done(&mut operations, operation).await;
        assert!(done.result.is_some(), "{done:?}");
        let gone = images
            .get(compute::GetImageRequest {
                image_id: image.clone(),
            })
            .await
            .expect_err("an acknowledged Delete holds");
        assert_eq!(gone.code(), Code::NotFound);
    }
    for (image, operation) in &seen.created {
        let done = wait_done(&mut operations, operation).await;
        assert!(done.result.is_some(), "{done:?}");
        if deleted.contains(image.as_str()) {
            continue;
        }
        let found = images
            .get(compute::GetImageRequest {
                image_id: image.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("acknowledged image {image} is lost: {status:?}"))
            .into_inner();
        assert_eq!(found.status, Status::Ready as i32, "{found:?}");
        assert_eq!(found.folder_id, FOLDER);
    }
    // Nothing half-written: every image there has its Create operation.
    let listed = images
        .list(compute::ListImagesRequest {
            folder_id: FOLDER.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    assert!(listed.images.len() >= seen.created.len() - seen.deleted.len());
    for image in &listed.images {
        let history = images
            .list_operations(compute::ListImageOperationsRequest {
                image_id: image.id.clone(),
                ..Default::default()
            })
            .await
            .expect("its operations")
            .into_inner();
        let first = history.operations.last().expect("an operation per image");
        assert_eq!(first.description, "Create image", "{image:?}");
        assert_eq!(image_of(first), image.id);
    }
    restarted.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_with_a_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path().to_str().expect("utf-8").to_owned();
    acknowledged_writes_survive_kill(&["--data-dir", &dir]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_on_postgres() {
    let Some(schema) = TestSchema::create("acknowledged_writes_survive_kill_on_postgres").await
    else {
        return;
    };
    acknowledged_writes_survive_kill(&["--database-url", &schema.url]).await;
}

/// A graceful restart on the same data directory: the same images,
/// operations and access bindings, and a key used before still names its
/// operation.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_writes_and_idempotency_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8").to_owned();
    let args = ["--data-dir", path.as_str()];
    let server = Server::start(&args);
    let mut images = ImageServiceClient::new(connect(&server.addr).await);
    let create = || {
        let mut request = Request::new(compute::CreateImageRequest {
            folder_id: FOLDER.into(),
            name: "kept".into(),
            source: Some(Source::DiskId("fhmdisk".into())),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("idempotency-key", "restart-key".parse().expect("ascii"));
        request
    };
    let first = images.create(create()).await.expect("created").into_inner();
    let image = image_of(&first);
    let viewer = AccessBinding {
        role_id: "viewer".into(),
        subject: Some(Subject {
            id: "aje-kept".into(),
            r#type: "userAccount".into(),
        }),
    };
    let mut operations = OperationServiceClient::new(connect(&server.addr).await);
    wait_done(&mut operations, &first.id).await;
    images
        .set_access_bindings(SetAccessBindingsRequest {
            resource_id: image.clone(),
            access_bindings: vec![viewer.clone()],
        })
        .await
        .expect("binds");
    assert_eq!(server.terminate().code(), Some(0));

    let server = Server::start(&args);
    let channel = connect(&server.addr).await;
    let mut images = ImageServiceClient::new(channel.clone());
    let mut operations = OperationServiceClient::new(channel);
    let done = wait_done(&mut operations, &first.id).await;
    assert!(done.result.is_some());
    let again = images
        .create(create())
        .await
        .expect("the key is known")
        .into_inner();
    assert_eq!(again.id, first.id, "the key still names its operation");
    let found = images
        .get(compute::GetImageRequest {
            image_id: image.clone(),
        })
        .await
        .expect("kept")
        .into_inner();
    assert_eq!(found.name, "kept");
    let bindings = images
        .list_access_bindings(ListAccessBindingsRequest {
            resource_id: image,
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(bindings.access_bindings, [viewer], "bindings kept");
    server.terminate();
}
