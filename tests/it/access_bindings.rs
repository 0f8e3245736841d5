//! ListAccessBindings, SetAccessBindings and UpdateAccessBindings, the way
//! Terraform's `yandex_compute_image_iam_binding` calls them (List with
//! page_size 1000 paging on next_page_token, Set, Update in batches, each
//! waited on), on the embedded backend and on PostgreSQL; the field rules;
//! the REST paths.

use std::time::{Duration, Instant};

use crate::common::{TestApp, binding, test_settings};
use crate::pg_support::TestSchema;

use image_service::app::Application;
use image_service::proto::compute::create_image_request::Source;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{self, CreateImageMetadata};
use image_service::proto::operation::operation::Result as Outcome;
use image_service::proto::operation::operation_service_client::OperationServiceClient;
use image_service::proto::operation::{GetOperationRequest, Operation};
use image_service::proto::yandex::cloud::access::{
    AccessBinding, AccessBindingAction, AccessBindingDelta, AccessBindingsOperationResult,
    ListAccessBindingsRequest, SetAccessBindingsRequest, UpdateAccessBindingsRequest,
};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

struct Started {
    app: TestApp,
    _schema: Option<TestSchema>,
}

async fn start(postgres: bool, test: &str) -> Option<Started> {
    if !postgres {
        return Some(Started {
            app: TestApp::demo().await,
            _schema: None,
        });
    }
    let schema = TestSchema::create(test).await?;
    let database = schema.migrated().await;
    let app = Application::build_with_database(&test_settings(None), database)
        .await
        .expect("starts");
    Some(Started {
        app: TestApp::from_application(app),
        _schema: Some(schema),
    })
}

fn delta(action: AccessBindingAction, binding: &AccessBinding) -> AccessBindingDelta {
    AccessBindingDelta {
        action: action as i32,
        access_binding: Some(binding.clone()),
    }
}

async fn wait(operations: &mut OperationServiceClient<Channel>, id: &str) -> Operation {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let operation = operations
            .get(GetOperationRequest {
                operation_id: id.into(),
            })
            .await
            .expect("readable")
            .into_inner();
        if operation.done {
            return operation;
        }
        assert!(Instant::now() < deadline, "never done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn effective(operation: &Operation) -> Vec<AccessBindingDelta> {
    match &operation.result {
        Some(Outcome::Response(any)) => {
            assert_eq!(
                any.type_url,
                "type.googleapis.com/yandex.cloud.access.AccessBindingsOperationResult"
            );
            AccessBindingsOperationResult::decode(any.value.as_slice())
                .expect("decodes")
                .effective_deltas
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Every binding of the image, as Terraform reads them: pages of 1000
/// (here `page_size`), following next_page_token.
async fn list_all(
    images: &mut ImageServiceClient<Channel>,
    image: &str,
    page_size: i64,
) -> Vec<AccessBinding> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = images
            .list_access_bindings(ListAccessBindingsRequest {
                resource_id: image.into(),
                page_size,
                page_token: token,
            })
            .await
            .expect("lists bindings")
            .into_inner();
        all.extend(page.access_bindings);
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

async fn terraform_iam_binding_sequence(postgres: bool) {
    let Some(started) = start(postgres, "terraform_iam_binding_sequence").await else {
        return;
    };
    let channel = started.app.channel().await;
    let mut images = ImageServiceClient::new(channel.clone());
    let mut operations = OperationServiceClient::new(channel);
    let created = images
        .create(compute::CreateImageRequest {
            folder_id: "b1gbindings".into(),
            name: "shared".into(),
            source: Some(Source::DiskId("fhmdisk".into())),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    let metadata = created.metadata.as_ref().expect("metadata");
    let image = CreateImageMetadata::decode(metadata.value.as_slice())
        .expect("decodes")
        .image_id;
    wait(&mut operations, &created.id).await;
    assert!(list_all(&mut images, &image, 1000).await.is_empty());

    let user = binding("compute.images.user", "allAuthenticatedUsers", "system");
    let editor = binding("editor", "ajeci", "serviceAccount");
    let viewer = binding("viewer", "aje-viewer", "userAccount");
    let set = images
        .set_access_bindings(SetAccessBindingsRequest {
            resource_id: image.clone(),
            access_bindings: vec![user.clone(), editor.clone()],
        })
        .await
        .expect("sets")
        .into_inner();
    assert_eq!(set.description, "Set access bindings");
    let metadata = set.metadata.as_ref().expect("metadata");
    assert_eq!(
        metadata.type_url,
        "type.googleapis.com/yandex.cloud.access.SetAccessBindingsMetadata"
    );
    let done = wait(&mut operations, &set.id).await;
    assert_eq!(
        effective(&done),
        [
            delta(AccessBindingAction::Add, &user),
            delta(AccessBindingAction::Add, &editor)
        ]
    );
    assert_eq!(
        list_all(&mut images, &image, 1000).await,
        [user.clone(), editor.clone()]
    );

    // Update in batches: what exists is not added twice, what is missing not removed.
    let batches = [
        vec![
            delta(AccessBindingAction::Add, &user),
            delta(AccessBindingAction::Add, &viewer),
        ],
        vec![
            delta(AccessBindingAction::Remove, &editor),
            delta(
                AccessBindingAction::Remove,
                &binding("admin", "nobody", "userAccount"),
            ),
        ],
    ];
    let mut applied = Vec::new();
    for batch in batches {
        let update = images
            .update_access_bindings(UpdateAccessBindingsRequest {
                resource_id: image.clone(),
                access_binding_deltas: batch,
            })
            .await
            .expect("updates")
            .into_inner();
        assert_eq!(
            update.metadata.as_ref().map(|m| m.type_url.as_str()),
            Some("type.googleapis.com/yandex.cloud.access.UpdateAccessBindingsMetadata")
        );
        applied.extend(effective(&wait(&mut operations, &update.id).await));
    }
    assert_eq!(
        applied,
        [
            delta(AccessBindingAction::Add, &viewer),
            delta(AccessBindingAction::Remove, &editor)
        ]
    );
    assert_eq!(
        list_all(&mut images, &image, 1).await,
        [user.clone(), viewer.clone()],
        "paged one at a time"
    );
    // Set to the same again changes nothing.
    let again = images
        .set_access_bindings(SetAccessBindingsRequest {
            resource_id: image.clone(),
            access_bindings: vec![user.clone(), viewer.clone()],
        })
        .await
        .expect("sets")
        .into_inner();
    assert!(effective(&wait(&mut operations, &again.id).await).is_empty());
    let absent = images
        .list_access_bindings(ListAccessBindingsRequest {
            resource_id: "fd8nosuchimage".into(),
            ..Default::default()
        })
        .await
        .expect_err("absent");
    assert_eq!(absent.code(), Code::NotFound);
    started.app.stop().await;
}

#[tokio::test]
async fn terraform_iam_binding_sequence_on_the_embedded_backend() {
    terraform_iam_binding_sequence(false).await;
}

#[tokio::test]
async fn terraform_iam_binding_sequence_on_postgres() {
    terraform_iam_binding_sequence(true).await;
}

#[tokio::test]
async fn bad_bindings_are_refused_naming_the_field() {
    let app = TestApp::demo().await;
    let mut images = ImageServiceClient::new(app.channel().await);
    let image = "fd8e0i00mv2ba2rsl5re".to_owned();
    let set = |bindings: Vec<AccessBinding>| SetAccessBindingsRequest {
        resource_id: image.clone(),
        access_bindings: bindings,
    };
    let cases: Vec<(SetAccessBindingsRequest, &str)> = vec![
        (SetAccessBindingsRequest::default(), "resource_id"),
        (set(vec![binding("", "a", "userAccount")]), "role_id"),
        (
            set(vec![binding(&"r".repeat(65), "a", "userAccount")]),
            "role_id",
        ),
        (
            set(vec![binding("viewer", "", "userAccount")]),
            "subject.id",
        ),
        (set(vec![binding("viewer", "a", "robot")]), "subject.type"),
        (
            set(vec![binding("viewer", "everybody", "system")]),
            "subject.id",
        ),
        (
            set(vec![binding("viewer", "a", "userAccount"); 1001]),
            "access_bindings",
        ),
    ];
    for (request, field) in cases {
        let status = images.set_access_bindings(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().contains(field),
            "{field}: {}",
            status.message()
        );
    }
    let empty = images
        .update_access_bindings(UpdateAccessBindingsRequest {
            resource_id: image.clone(),
            access_binding_deltas: vec![],
        })
        .await
        .expect_err("no deltas");
    assert!(empty.message().contains("access_binding_deltas"));
    let no_action = images
        .update_access_bindings(UpdateAccessBindingsRequest {
            resource_id: image.clone(),
            access_binding_deltas: vec![AccessBindingDelta {
                action: 0,
                access_binding: Some(binding("viewer", "a", "userAccount")),
            }],
        })
        .await
        .expect_err("no action");
    assert!(no_action.message().contains("action"));
    let too_big = images
        .list_access_bindings(ListAccessBindingsRequest {
            resource_id: image.clone(),
            page_size: 1001,
            ..Default::default()
        })
        .await
        .expect_err("page size");
    assert!(too_big.message().contains("page_size"));
    // Nothing was set by the refusals.
    assert!(list_all(&mut images, &image, 1000).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_rest_paths_set_and_list_bindings() {
    let app = TestApp::demo().await;
    let client = reqwest::Client::new();
    let image = "fd8e0i00mv2ba2rsl5re";
    let set = client
        .post(app.http_url(&format!("/compute/v1/images/{image}:setAccessBindings")))
        .body(r#"{"accessBindings": [{"roleId": "compute.images.user", "subject": {"id": "allUsers", "type": "system"}}]}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(set.status(), 200);
    let operation: serde_json::Value = set.json().await.expect("JSON");
    assert_eq!(operation["metadata"]["resourceId"], image);
    let done: serde_json::Value = client
        .get(app.http_url(&format!(
            "/operations/{}",
            operation["id"].as_str().unwrap_or_default()
        )))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        done["response"]["effectiveDeltas"][0]["action"], "ADD",
        "{done}"
    );
    let listed: serde_json::Value = client
        .get(app.http_url(&format!(
            "/compute/v1/images/{image}:listAccessBindings?pageSize=10"
        )))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        listed["accessBindings"][0]["subject"]["id"], "allUsers",
        "{listed}"
    );
    let bad = client
        .post(app.http_url(&format!("/compute/v1/images/{image}:updateAccessBindings")))
        .body(r#"{"accessBindingDeltas": []}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(bad.status(), 400);
    app.stop().await;
}
