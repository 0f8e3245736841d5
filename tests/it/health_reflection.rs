//! grpc.health.v1 and server reflection (v1 and v1alpha) over the network.

use crate::common;

use common::TestApp;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest as ReflectionRequestV1;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as ReflectionV1;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as RequestV1;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as ResponseV1;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest as ReflectionRequestV1Alpha;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as ReflectionV1Alpha;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as RequestV1Alpha;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as ResponseV1Alpha;

const SERVICES: [&str; 7] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "yandex.cloud.compute.v1.ImageService",
    "yandex.cloud.containerregistry.v1.ImageService",
    "yandex.cloud.endpoint.ApiEndpointService",
    "yandex.cloud.operation.OperationService",
];

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let app = TestApp::demo().await;
    let mut health = HealthClient::new(app.channel().await);
    for service in [
        "",
        "yandex.cloud.compute.v1.ImageService",
        "yandex.cloud.containerregistry.v1.ImageService",
    ] {
        let status = health
            .check(check(service))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

#[tokio::test]
async fn health_of_an_unknown_service_is_not_found() {
    let app = TestApp::demo().await;
    let status = HealthClient::new(app.channel().await)
        .check(check("no.such.Service"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn health_watch_streams_status_changes() {
    let app = TestApp::demo().await;
    let mut stream = HealthClient::new(app.channel().await)
        .watch(check("yandex.cloud.compute.v1.ImageService"))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    app_health_down(&app).await;
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(second.status, ServingStatus::NotServing as i32);
}

async fn app_health_down(app: &TestApp) {
    app.health()
        .set_service_status(
            "yandex.cloud.compute.v1.ImageService",
            tonic_health::ServingStatus::NotServing,
        )
        .await;
}

#[tokio::test]
async fn reflection_v1_lists_every_service() {
    let app = TestApp::demo().await;
    let request = ReflectionRequestV1 {
        host: String::new(),
        message_request: Some(RequestV1::ListServices(String::new())),
    };
    let mut responses = ReflectionV1::new(app.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(ResponseV1::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, SERVICES);
}

#[tokio::test]
async fn reflection_v1alpha_lists_every_service_and_describes_image() {
    let app = TestApp::demo().await;
    let requests = [
        ReflectionRequestV1Alpha {
            host: String::new(),
            message_request: Some(RequestV1Alpha::ListServices(String::new())),
        },
        ReflectionRequestV1Alpha {
            host: String::new(),
            message_request: Some(RequestV1Alpha::FileContainingSymbol(
                "yandex.cloud.compute.v1.Image".into(),
            )),
        },
    ];
    let mut responses = ReflectionV1Alpha::new(app.channel().await)
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(ResponseV1Alpha::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, SERVICES);

    let Some(ResponseV1Alpha::FileDescriptorResponse(files)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected file descriptors");
    };
    use prost::Message;
    let file = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
        .find(|f| f.name() == "yandex/cloud/compute/v1/image.proto")
        .expect("image.proto served");
    let image = file
        .message_type
        .iter()
        .find(|m| m.name() == "Image")
        .unwrap();
    let size = image.field.iter().find(|f| f.name() == "size").unwrap();
    assert_eq!(size.number(), 16);
}
