//! Roles from the tokens file and roles from an image's bindings, end to end
//! on both backends, over gRPC (tonic) and REST (reqwest): a binding grants
//! exactly what its role says, to exactly its subject.
//!
//! Folder [`FOLDER`] holds two new images, `shared` and `private`. Callers:
//! - owner: `admin` in the folder; editor: `editor`; viewer: `folders` (viewer);
//! - friend and stranger: no roles at all;
//! - puller: `container-registry.images.puller` in every folder;
//! - no token.

use std::time::{Duration, Instant};

use crate::common::{TestApp, binding, test_settings, write_temp};
use crate::pg_support::TestSchema;

use image_service::app::Application;
use image_service::proto::compute::create_image_request::Source;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{
    self, CreateImageMetadata, GetImageLatestByFamilyRequest, GetImageRequest, ListImagesRequest,
    UpdateImageRequest,
};
use image_service::proto::container_registry::GetImageRequest as ContainerGet;
use image_service::proto::container_registry::image_service_client::ImageServiceClient as ContainerClient;
use image_service::proto::operation::operation_service_client::OperationServiceClient;
use image_service::proto::operation::{GetOperationRequest, Operation};
use image_service::proto::yandex::cloud::access::{
    AccessBinding, AccessBindingAction, AccessBindingDelta, ListAccessBindingsRequest,
    SetAccessBindingsRequest, UpdateAccessBindingsRequest,
};
use image_service::store::catalog::Catalog;
use image_service::store::postgres::{self, ImportMode};
use image_service::transport::auth::TokenDigest;
use prost::Message;
use tempfile::NamedTempFile;
use tonic::transport::Channel;
use tonic::{Code, Request};

const FOLDER: &str = "b1groles";
const CONTAINER_IMAGE: &str = "crpphk31u48ts5plqaqo";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Owner,
    Editor,
    Viewer,
    Friend,
    Stranger,
    Puller,
    Nobody,
}

impl Who {
    fn token(self) -> Option<&'static str> {
        match self {
            Who::Owner => Some("owner-token"),
            Who::Editor => Some("editor-token"),
            Who::Viewer => Some("viewer-token"),
            Who::Friend => Some("friend-token"),
            Who::Stranger => Some("stranger-token"),
            Who::Puller => Some("puller-token"),
            Who::Nobody => None,
        }
    }

    fn ask<T>(self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = self.token() {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("ascii"),
            );
        }
        request
    }
}

fn tokens_file() -> NamedTempFile {
    let digest = |who: Who| TokenDigest::of(who.token().unwrap_or_default().as_bytes()).to_hex();
    write_temp(&format!(
        r#"{{"tokens": [
            {{"subject": "ajeowner", "subject_type": "serviceAccount", "sha256": "{}", "roles": {{"{FOLDER}": ["admin"]}}}},
            {{"subject": "ajeeditor", "sha256": "{}", "roles": {{"{FOLDER}": ["editor"]}}}},
            {{"subject": "ajeviewer", "sha256": "{}", "folders": ["{FOLDER}"]}},
            {{"subject": "ajefriend", "sha256": "{}"}},
            {{"subject": "ajestranger", "sha256": "{}"}},
            {{"subject": "ajepuller", "sha256": "{}", "roles": {{"*": ["container-registry.images.puller"]}}}}
        ]}}"#,
        digest(Who::Owner),
        digest(Who::Editor),
        digest(Who::Viewer),
        digest(Who::Friend),
        digest(Who::Stranger),
        digest(Who::Puller),
    ))
}

struct Started {
    app: TestApp,
    _tokens: NamedTempFile,
    _schema: Option<TestSchema>,
}

async fn start(postgres: bool) -> Option<Started> {
    let tokens = tokens_file();
    let mut settings = test_settings(None);
    settings.auth_tokens = Some(tokens.path().to_owned());
    if !postgres {
        return Some(Started {
            app: TestApp::start(settings, None, None).await,
            _tokens: tokens,
            _schema: None,
        });
    }
    let schema = TestSchema::create("roles_and_bindings").await?;
    let database = schema.migrated().await;
    let catalog = Catalog::demo().expect("the demo catalog");
    postgres::import_catalog(&database, &catalog, ImportMode::Replace)
        .await
        .expect("imports the demo catalog");
    let app = Application::build_with_database(&settings, database)
        .await
        .expect("starts");
    Some(Started {
        app: TestApp::from_application(app),
        _tokens: tokens,
        _schema: Some(schema),
    })
}

struct Clients {
    images: ImageServiceClient<Channel>,
    containers: ContainerClient<Channel>,
    operations: OperationServiceClient<Channel>,
}

impl Clients {
    async fn wait(&mut self, started: Operation) -> Operation {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut operation = started;
        while !operation.done {
            assert!(Instant::now() < deadline, "never done");
            tokio::time::sleep(Duration::from_millis(20)).await;
            operation = self
                .operations
                .get(Who::Owner.ask(GetOperationRequest {
                    operation_id: operation.id.clone(),
                }))
                .await
                .expect("the owner follows it")
                .into_inner();
        }
        assert!(
            operation.result.as_ref().is_some_and(|r| matches!(
                r,
                image_service::proto::operation::operation::Result::Response(_)
            )),
            "{operation:?}"
        );
        operation
    }

    /// The code of a write: OK once its operation is done, or the refusal.
    async fn done(&mut self, call: Result<tonic::Response<Operation>, tonic::Status>) -> Code {
        match call {
            Ok(started) => {
                self.wait(started.into_inner()).await;
                Code::Ok
            }
            Err(status) => status.code(),
        }
    }

    async fn create(&mut self, who: Who, name: &str) -> Result<String, Code> {
        let started = self
            .images
            .create(who.ask(compute::CreateImageRequest {
                folder_id: FOLDER.into(),
                name: name.into(),
                family: "roles".into(),
                source: Some(Source::DiskId("fhmdisk".into())),
                ..Default::default()
            }))
            .await
            .map_err(|status| status.code())?
            .into_inner();
        let metadata = started.metadata.clone().expect("metadata");
        let id = CreateImageMetadata::decode(metadata.value.as_slice())
            .expect("decodes")
            .image_id;
        self.wait(started).await;
        Ok(id)
    }

    async fn get(&mut self, who: Who, id: &str) -> Code {
        match self
            .images
            .get(who.ask(GetImageRequest {
                image_id: id.into(),
            }))
            .await
        {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }

    /// The names a List of the folder shows `who`, or the error code.
    async fn list(&mut self, who: Who) -> Result<Vec<String>, Code> {
        let page = self
            .images
            .list(who.ask(ListImagesRequest {
                folder_id: FOLDER.into(),
                ..Default::default()
            }))
            .await
            .map_err(|status| status.code())?
            .into_inner();
        Ok(page.images.into_iter().map(|image| image.name).collect())
    }

    async fn update(&mut self, who: Who, id: &str) -> Code {
        let call = self
            .images
            .update(who.ask(UpdateImageRequest {
                image_id: id.into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
                description: "changed".into(),
                ..Default::default()
            }))
            .await;
        self.done(call).await
    }

    async fn set(&mut self, who: Who, id: &str, bindings: Vec<AccessBinding>) -> Code {
        let call = self
            .images
            .set_access_bindings(who.ask(SetAccessBindingsRequest {
                resource_id: id.into(),
                access_bindings: bindings,
            }))
            .await;
        self.done(call).await
    }

    async fn add(&mut self, who: Who, id: &str, binding: AccessBinding) -> Code {
        let call = self
            .images
            .update_access_bindings(who.ask(UpdateAccessBindingsRequest {
                resource_id: id.into(),
                access_binding_deltas: vec![AccessBindingDelta {
                    action: AccessBindingAction::Add as i32,
                    access_binding: Some(binding),
                }],
            }))
            .await;
        self.done(call).await
    }

    async fn list_bindings(&mut self, who: Who, id: &str) -> Code {
        match self
            .images
            .list_access_bindings(who.ask(ListAccessBindingsRequest {
                resource_id: id.into(),
                page_size: 1000,
                ..Default::default()
            }))
            .await
        {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }
}

/// The code of a REST Get of a compute image by `who`, as an HTTP status.
async fn rest_get(app: &TestApp, who: Who, id: &str) -> u16 {
    let mut request = reqwest::Client::new().get(app.http_url(&format!("/compute/v1/images/{id}")));
    if let Some(token) = who.token() {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("answers").status().as_u16()
}

async fn roles_and_bindings(postgres: bool) {
    let Some(started) = start(postgres).await else {
        return;
    };
    let app = &started.app;
    let channel = app.channel().await;
    let mut c = Clients {
        images: ImageServiceClient::new(channel.clone()),
        containers: ContainerClient::new(channel.clone()),
        operations: OperationServiceClient::new(channel),
    };

    // Folder roles: admin and editor write, a viewer doesn't, nobody else sees.
    let shared = c.create(Who::Owner, "shared").await.expect("owner creates");
    let private = c
        .create(Who::Editor, "private")
        .await
        .expect("editor creates");
    assert_eq!(
        c.create(Who::Viewer, "v").await,
        Err(Code::PermissionDenied)
    );
    assert_eq!(
        c.create(Who::Friend, "f").await,
        Err(Code::PermissionDenied)
    );
    assert_eq!(c.get(Who::Viewer, &shared).await, Code::Ok);
    assert_eq!(c.update(Who::Viewer, &shared).await, Code::PermissionDenied);
    assert_eq!(c.get(Who::Friend, &shared).await, Code::PermissionDenied);
    assert_eq!(c.list(Who::Friend).await, Err(Code::PermissionDenied));
    let mut seen = c.list(Who::Viewer).await.expect("the viewer lists");
    seen.sort();
    assert_eq!(seen, ["private", "shared"]);

    // Managing bindings needs admin: the editor writes images but not who may.
    let friend_uses = binding("compute.images.user", "ajefriend", "userAccount");
    assert_eq!(
        c.set(Who::Editor, &shared, vec![friend_uses.clone()]).await,
        Code::PermissionDenied
    );
    assert_eq!(
        c.set(Who::Owner, &shared, vec![friend_uses.clone()]).await,
        Code::Ok
    );
    // The friend now reads exactly that image, on both faces, and nothing more.
    assert_eq!(c.get(Who::Friend, &shared).await, Code::Ok);
    assert_eq!(rest_get(app, Who::Friend, &shared).await, 200);
    assert_eq!(c.get(Who::Friend, &private).await, Code::PermissionDenied);
    assert_eq!(rest_get(app, Who::Friend, &private).await, 403);
    assert_eq!(c.list(Who::Friend).await, Ok(vec!["shared".to_owned()]));
    assert_eq!(c.list_bindings(Who::Friend, &shared).await, Code::Ok);
    assert_eq!(c.update(Who::Friend, &shared).await, Code::PermissionDenied);
    let latest = c
        .images
        .get_latest_by_family(Who::Friend.ask(GetImageLatestByFamilyRequest {
            folder_id: FOLDER.into(),
            family: "roles".into(),
        }))
        .await;
    // The family's latest is `private`, which the friend may not read.
    assert_eq!(
        latest.map(|_| ()).map_err(|s| s.code()),
        Err(Code::PermissionDenied)
    );
    // Not to the stranger, nor to the same id as another subject type.
    assert_eq!(c.get(Who::Stranger, &shared).await, Code::PermissionDenied);
    assert_eq!(
        c.set(
            Who::Owner,
            &private,
            vec![binding("editor", "ajefriend", "serviceAccount")]
        )
        .await,
        Code::Ok
    );
    assert_eq!(c.get(Who::Friend, &private).await, Code::PermissionDenied);

    // An editor binding lets the friend change the image, still not its bindings.
    let friend_edits = binding("compute.editor", "ajefriend", "userAccount");
    assert_eq!(c.add(Who::Owner, &private, friend_edits).await, Code::Ok);
    assert_eq!(c.update(Who::Friend, &private).await, Code::Ok);
    assert_eq!(
        c.add(
            Who::Friend,
            &private,
            binding("viewer", "ajestranger", "userAccount")
        )
        .await,
        Code::PermissionDenied
    );
    assert!(c.latest_ok(Who::Friend).await, "now the latest is readable");
    // An admin binding opens the bindings too.
    let friend_admin = binding("admin", "ajefriend", "userAccount");
    assert_eq!(c.add(Who::Owner, &private, friend_admin).await, Code::Ok);
    assert_eq!(
        c.add(
            Who::Friend,
            &private,
            binding("viewer", "ajestranger", "userAccount")
        )
        .await,
        Code::Ok
    );
    assert_eq!(c.get(Who::Stranger, &private).await, Code::Ok);

    // Everyone: allAuthenticatedUsers for any token, allUsers without one too;
    // neither may be given a role that writes.
    assert_eq!(
        c.add(Who::Owner, &shared, binding("editor", "allUsers", "system"))
            .await,
        Code::InvalidArgument
    );
    assert_eq!(c.get(Who::Nobody, &shared).await, Code::Unauthenticated);
    assert_eq!(rest_get(app, Who::Nobody, &shared).await, 401);
    let everyone = binding("compute.images.user", "allUsers", "system");
    assert_eq!(c.add(Who::Owner, &shared, everyone).await, Code::Ok);
    assert_eq!(c.get(Who::Nobody, &shared).await, Code::Ok);
    assert_eq!(rest_get(app, Who::Nobody, &shared).await, 200);
    assert_eq!(c.get(Who::Stranger, &shared).await, Code::Ok);
    assert_eq!(c.list(Who::Nobody).await, Ok(vec!["shared".to_owned()]));
    assert_eq!(c.get(Who::Nobody, &private).await, Code::Unauthenticated);
    assert_eq!(rest_get(app, Who::Nobody, &private).await, 401);
    assert_eq!(
        c.get(Who::Nobody, "fd8nosuchimage00000").await,
        Code::Unauthenticated,
        "nothing is told of what isn't public"
    );
    assert_eq!(c.update(Who::Nobody, &shared).await, Code::Unauthenticated);
    assert_eq!(
        c.list_bindings(Who::Nobody, &shared).await,
        Code::Unauthenticated
    );

    // Service roles stay in their service.
    assert_eq!(c.get(Who::Puller, &shared).await, Code::Ok, "allUsers");
    assert_eq!(c.get(Who::Puller, &private).await, Code::PermissionDenied);
    let pulled = c
        .containers
        .get(Who::Puller.ask(ContainerGet {
            image_id: CONTAINER_IMAGE.into(),
        }))
        .await;
    assert!(pulled.is_ok(), "{pulled:?}");
    let not_friend = c
        .containers
        .get(Who::Friend.ask(ContainerGet {
            image_id: CONTAINER_IMAGE.into(),
        }))
        .await
        .expect_err("no container roles");
    assert_eq!(not_friend.code(), Code::PermissionDenied);

    // A deleted image takes its bindings with it.
    let deleting = c
        .images
        .delete(Who::Owner.ask(compute::DeleteImageRequest {
            image_id: shared.clone(),
        }))
        .await
        .expect("owner deletes")
        .into_inner();
    c.wait(deleting).await;
    assert_eq!(c.list_bindings(Who::Owner, &shared).await, Code::NotFound);
    assert_eq!(c.list(Who::Nobody).await, Err(Code::Unauthenticated));
    started.app.stop().await;
}

impl Clients {
    async fn latest_ok(&mut self, who: Who) -> bool {
        self.images
            .get_latest_by_family(who.ask(GetImageLatestByFamilyRequest {
                folder_id: FOLDER.into(),
                family: "roles".into(),
            }))
            .await
            .is_ok()
    }
}

#[tokio::test]
async fn roles_and_bindings_grant_what_they_say_on_the_embedded_backend() {
    roles_and_bindings(false).await;
}

#[tokio::test]
async fn roles_and_bindings_grant_what_they_say_on_postgres() {
    roles_and_bindings(true).await;
}
