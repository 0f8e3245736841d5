//! Bearer-token authentication and folder authorization (`--auth-tokens`),
//! over gRPC (tonic, grpcurl, the official Python SDK) and REST (reqwest), on
//! the demo catalog:
//!
//! - folder `b1gdemo7f0lder2qk8vh`: compute images, and registry
//!   `crpovcqia9d67t6vgmm0` (repository `crpovcqia9d67t6vgmm0/ubuntu`);
//! - folder `standard-images`: compute images only;
//! - folder `b1g2teamapps0f0lder7`: registry `crpd2nrqffpp3e93946m`.

use crate::common;
use crate::pg_support;

use std::ffi::OsString;
use std::time::Duration;

use common::clients::{all_output, grpcurl, grpcurl_run, python_with_sdk, run};
use common::{TestApp, test_settings, write_temp};
use image_service::app::Application;
use image_service::app::Settings;
use image_service::proto::compute::image_service_client::ImageServiceClient as ComputeClient;
use image_service::proto::compute::{
    GetImageLatestByFamilyRequest, GetImageRequest as ComputeGet, ListImagesRequest as ComputeList,
};
use image_service::proto::container_registry::image_service_client::ImageServiceClient as ContainerClient;
use image_service::proto::container_registry::{
    GetImageRequest as ContainerGet, ListImagesRequest as ContainerList,
};
use image_service::store::catalog::Catalog;
use image_service::store::postgres::{self, ImportMode};
use image_service::transport::auth::TokenDigest;
use pg_support::TestSchema;
use tempfile::NamedTempFile;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const READER_TOKEN: &str = "reader-t0ken.abc";
const ADMIN_TOKEN: &str = "admin-t0ken.xyz";
const TEAM_FOLDER: &str = "b1gdemo7f0lder2qk8vh";

/// What a call reads, and whether the reader (of [`TEAM_FOLDER`] only) may.
#[derive(Debug, Clone, Copy)]
enum Call {
    ComputeGet(&'static str),
    ComputeList(&'static str),
    LatestByFamily(&'static str, &'static str),
    ContainerGet(&'static str),
    ContainerListByFolder(&'static str),
    ContainerListByRegistry(&'static str),
    ContainerListByRepository(&'static str),
}

/// Every kind of image call, once on the reader's folder (first) and once
/// outside it (second).
const CALLS: [(Call, Call); 7] = [
    (
        Call::ComputeGet("fd8o2pjpr9dfpl308ukq"),
        Call::ComputeGet("fd8e0i00mv2ba2rsl5re"),
    ),
    (
        Call::ComputeList(TEAM_FOLDER),
        Call::ComputeList("standard-images"),
    ),
    (
        Call::LatestByFamily(TEAM_FOLDER, "app-base"),
        Call::LatestByFamily("standard-images", "debian-12"),
    ),
    (
        Call::ContainerGet("crpphk31u48ts5plqaqo"),
        Call::ContainerGet("crpnanhnu5ea83js93tf"),
    ),
    (
        Call::ContainerListByFolder(TEAM_FOLDER),
        Call::ContainerListByFolder("b1g2teamapps0f0lder7"),
    ),
    (
        Call::ContainerListByRegistry("crpovcqia9d67t6vgmm0"),
        Call::ContainerListByRegistry("crpd2nrqffpp3e93946m"),
    ),
    (
        Call::ContainerListByRepository("crpovcqia9d67t6vgmm0/ubuntu"),
        Call::ContainerListByRepository("crpd2nrqffpp3e93946m/team/app"),
    ),
];

/// The `authorization` header a test sends.
#[derive(Debug, Clone, Copy)]
enum Credentials {
    None,
    Malformed,
    Unknown,
    Reader,
    Admin,
}

impl Credentials {
    fn header(self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Malformed => Some(format!("Basic {READER_TOKEN}")),
            Self::Unknown => Some("Bearer not-a-known-token".to_owned()),
            Self::Reader => Some(format!("Bearer {READER_TOKEN}")),
            Self::Admin => Some(format!("Bearer {ADMIN_TOKEN}")),
        }
    }

    /// The code and a part of the message a call should end with.
    fn expected(self, in_reader_folder: bool) -> (Code, &'static str) {
        match self {
            Self::None => (Code::Unauthenticated, "Authentication required"),
            Self::Malformed => (Code::Unauthenticated, "Malformed authorization header"),
            Self::Unknown => (Code::Unauthenticated, "Unknown bearer token"),
            Self::Reader if !in_reader_folder => (Code::PermissionDenied, "reader may not read"),
            Self::Reader | Self::Admin => (Code::Ok, ""),
        }
    }
}

const ALL_CREDENTIALS: [Credentials; 5] = [
    Credentials::None,
    Credentials::Malformed,
    Credentials::Unknown,
    Credentials::Reader,
    Credentials::Admin,
];

fn tokens_file() -> NamedTempFile {
    let digest = |token: &str| TokenDigest::of(token.as_bytes()).to_hex();
    write_temp(&format!(
        r#"{{"tokens": [
            {{"subject": "reader", "sha256": "{}", "folders": ["{TEAM_FOLDER}", "some-other-folder"]}},
            {{"subject": "admin", "sha256": "{}", "folders": ["*"]}}
        ]}}"#,
        digest(READER_TOKEN),
        digest(ADMIN_TOKEN)
    ))
}

/// Settings with authentication on; the tokens file must outlive the server.
fn settings_with_auth() -> (Settings, NamedTempFile) {
    let tokens = tokens_file();
    let mut settings = test_settings(None);
    settings.auth_tokens = Some(tokens.path().to_owned());
    (settings, tokens)
}

/// The demo catalog with authentication on.
async fn start() -> (TestApp, NamedTempFile) {
    let (settings, tokens) = settings_with_auth();
    (TestApp::start(settings, None, None).await, tokens)
}

fn request<T>(message: T, credentials: Credentials) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(header) = credentials.header() {
        request
            .metadata_mut()
            .insert("authorization", header.parse().unwrap());
    }
    request
}

/// Makes `call` over gRPC; Ok with the number of images answered.
async fn grpc_call(
    channel: &Channel,
    call: Call,
    credentials: Credentials,
) -> Result<usize, Status> {
    let mut compute = ComputeClient::new(channel.clone());
    let mut container = ContainerClient::new(channel.clone());
    let container_list = |repository_name: &str, registry_id: &str, folder_id: &str| {
        request(
            ContainerList {
                repository_name: repository_name.into(),
                registry_id: registry_id.into(),
                folder_id: folder_id.into(),
                ..Default::default()
            },
            credentials,
        )
    };
    Ok(match call {
        Call::ComputeGet(id) => {
            let image = compute
                .get(request(
                    ComputeGet {
                        image_id: id.into(),
                    },
                    credentials,
                ))
                .await?;
            assert_eq!(image.get_ref().id, id);
            1
        }
        Call::ComputeList(folder) => {
            let list = compute
                .list(request(
                    ComputeList {
                        folder_id: folder.into(),
                        ..Default::default()
                    },
                    credentials,
                ))
                .await?;
            list.get_ref().images.len()
        }
        Call::LatestByFamily(folder, family) => {
            let image = compute
                .get_latest_by_family(request(
                    GetImageLatestByFamilyRequest {
                        folder_id: folder.into(),
                        family: family.into(),
                    },
                    credentials,
                ))
                .await?;
            assert_eq!(image.get_ref().family, family);
            1
        }
        Call::ContainerGet(id) => {
            let image = container
                .get(request(
                    ContainerGet {
                        image_id: id.into(),
                    },
                    credentials,
                ))
                .await?;
            assert_eq!(image.get_ref().id, id);
            1
        }
        Call::ContainerListByFolder(folder) => {
            let list = container.list(container_list("", "", folder)).await?;
            list.get_ref().images.len()
        }
        Call::ContainerListByRegistry(registry) => {
            let list = container.list(container_list("", registry, "")).await?;
            list.get_ref().images.len()
        }
        Call::ContainerListByRepository(name) => {
            let list = container.list(container_list(name, "", "")).await?;
            list.get_ref().images.len()
        }
    })
}

fn rest_path(call: Call) -> String {
    match call {
        Call::ComputeGet(id) => format!("/compute/v1/images/{id}"),
        Call::ComputeList(folder) => format!("/compute/v1/images?folderId={folder}"),
        Call::LatestByFamily(folder, family) => {
            format!("/compute/v1/images:latestByFamily?folderId={folder}&family={family}")
        }
        Call::ContainerGet(id) => format!("/container-registry/v1/images/{id}"),
        Call::ContainerListByFolder(folder) => {
            format!("/container-registry/v1/images?folderId={folder}")
        }
        Call::ContainerListByRegistry(registry) => {
            format!("/container-registry/v1/images?registryId={registry}")
        }
        Call::ContainerListByRepository(name) => {
            format!("/container-registry/v1/images?repositoryName={name}")
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn grpc_image_calls_need_a_token_for_the_folder() {
    let (app, _tokens) = start().await;
    let channel = app.channel().await;
    for (inside, outside) in CALLS {
        for credentials in ALL_CREDENTIALS {
            for (call, in_folder) in [(inside, true), (outside, false)] {
                let (code, message) = credentials.expected(in_folder);
                let what = format!("{call:?} with {credentials:?}");
                match grpc_call(&channel, call, credentials).await {
                    Ok(images) => {
                        assert_eq!(code, Code::Ok, "{what}: succeeded, want {code:?}");
                        assert!(images > 0, "{what}: answered no images");
                    }
                    Err(status) => {
                        assert_eq!(status.code(), code, "{what}: {status:?}");
                        assert!(status.message().contains(message), "{what}: {status:?}");
                    }
                }
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn rest_image_calls_need_a_token_for_the_folder() {
    let (app, _tokens) = start().await;
    let client = http_client();
    for (inside, outside) in CALLS {
        for credentials in ALL_CREDENTIALS {
            for (call, in_folder) in [(inside, true), (outside, false)] {
                let (code, message) = credentials.expected(in_folder);
                let path = rest_path(call);
                let mut get = client.get(app.http_url(&path));
                if let Some(header) = credentials.header() {
                    get = get.header("authorization", header);
                }
                let response = get.send().await.unwrap();
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap();
                let what = format!("GET {path} with {credentials:?}: {status} {body}");
                let want = match code {
                    Code::Ok => 200,
                    Code::Unauthenticated => 401,
                    Code::PermissionDenied => 403,
                    other => panic!("unexpected {other:?}"),
                };
                assert_eq!(status, want, "{what}");
                if code == Code::Ok {
                    assert!(body["code"].is_null(), "{what}");
                } else {
                    assert_eq!(body["code"], code as i32, "{what}");
                    assert!(
                        body["message"].as_str().unwrap().contains(message),
                        "{what}"
                    );
                }
            }
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_backend_finds_the_folders_of_registries() {
    let Some(schema) = TestSchema::create("auth_postgres").await else {
        return;
    };
    let database = schema.migrated().await;
    let catalog = Catalog::demo().unwrap();
    postgres::import_catalog(&database, &catalog, ImportMode::Replace)
        .await
        .unwrap();
    let (settings, _tokens) = settings_with_auth();
    let app = Application::build_with_database(&settings, database)
        .await
        .unwrap();
    let app = TestApp::from_application(app);
    let channel = app.channel().await;
    for (inside, outside) in CALLS {
        for credentials in [Credentials::Reader, Credentials::Admin, Credentials::None] {
            for (call, in_folder) in [(inside, true), (outside, false)] {
                let (code, _) = credentials.expected(in_folder);
                let got = grpc_call(&channel, call, credentials).await;
                let got = got.map_or_else(|status| status.code(), |_| Code::Ok);
                assert_eq!(got, code, "{call:?} with {credentials:?}");
            }
        }
    }
    app.stop().await;
    schema.drop().await;
}

#[tokio::test]
async fn a_missing_image_is_not_found_for_a_known_caller_only() {
    let (app, _tokens) = start().await;
    let channel = app.channel().await;
    let missing = Call::ComputeGet("fd8doesnotexist000000");
    let status = grpc_call(&channel, missing, Credentials::Reader)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = grpc_call(&channel, missing, Credentials::None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    app.stop().await;
}

#[tokio::test]
async fn health_reflection_and_probes_stay_open() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let (app, _tokens) = start().await;
    let status = HealthClient::new(app.channel().await)
        .check(HealthCheckRequest {
            service: "yandex.cloud.compute.v1.ImageService".into(),
        })
        .await
        .unwrap();
    assert_eq!(status.get_ref().status, 1, "SERVING");
    let client = http_client();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = client.get(app.http_url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    if let Some(grpcurl) = grpcurl() {
        let out = grpcurl_run(&grpcurl, &app, &[], &["list"]).await;
        let text = all_output(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("yandex.cloud.compute.v1.ImageService"),
            "{text}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_sends_the_token_as_metadata() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let (app, _tokens) = start().await;
    let get = ["-d", r#"{"imageId": "fd8o2pjpr9dfpl308ukq"}"#];
    let method = "yandex.cloud.compute.v1.ImageService/Get";
    let (grpcurl, app_ref) = (&grpcurl, &app);
    let with = |header: &'static str| async move {
        let mut flags = vec!["-H", header];
        flags.extend(get);
        let out = grpcurl_run(grpcurl, app_ref, &flags, &[method]).await;
        (out.status.success(), all_output(&out))
    };
    let (ok, text) = with("authorization: Bearer reader-t0ken.abc").await;
    assert!(ok, "{text}");
    assert!(text.contains("app-base-v2"), "{text}");
    let (ok, text) = with("authorization: Bearer wrong").await;
    assert!(!ok && text.contains("Unauthenticated"), "{text}");
    let (ok, text) = with("x-other: 1").await;
    assert!(!ok && text.contains("Authentication required"), "{text}");
    app.stop().await;
}

const SDK_AUTH_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_auth.py");

#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdk_sends_its_iam_token() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let (app, _tokens) = start().await;
    let args: Vec<OsString> = vec![
        SDK_AUTH_SCRIPT.into(),
        app.grpc_addr.to_string().into(),
        READER_TOKEN.into(),
    ];
    let out = run(python, args).await;
    let text = all_output(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("sdk_auth: ok"), "{text}");
    app.stop().await;
}
