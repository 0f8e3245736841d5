//! `GET /metrics`: Prometheus exposition with the conventional gRPC server
//! names, counting calls of both faces by method and code.

use crate::common;

use common::TestApp;
use image_service::proto::compute::GetImageRequest;
use image_service::proto::compute::image_service_client::ImageServiceClient;

const GET: &str =
    r#"grpc_type="unary",grpc_service="yandex.cloud.compute.v1.ImageService",grpc_method="Get""#;

async fn metrics(app: &TestApp) -> String {
    let response = reqwest::get(app.http_url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn counts_calls_of_both_faces_by_method_and_code() {
    let app = TestApp::demo().await;
    let mut client = ImageServiceClient::new(app.channel().await);
    for id in ["fd824k6uqk9cvi1ise4i", "fd8missing", ""] {
        let _ = client
            .get(GetImageRequest {
                image_id: id.into(),
            })
            .await;
    }
    let rest = reqwest::get(app.http_url("/compute/v1/images/fd824k6uqk9cvi1ise4i"))
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);

    let text = metrics(&app).await;
    for line in [
        format!("grpc_server_started_total{{{GET}}} 4"),
        format!(r#"grpc_server_handled_total{{{GET},grpc_code="OK"}} 2"#),
        format!(r#"grpc_server_handled_total{{{GET},grpc_code="NotFound"}} 1"#),
        format!(r#"grpc_server_handled_total{{{GET},grpc_code="InvalidArgument"}} 1"#),
        format!("grpc_server_handling_seconds_count{{{GET}}} 4"),
        format!(
            r#"image_service_catalog_images{{api="compute"}} {}"#,
            common::demo_catalog_json()["computeImages"]
                .as_array()
                .unwrap()
                .len()
        ),
        "image_service_calls_in_flight 0".to_owned(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
}
