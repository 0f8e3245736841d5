//! The REST face over the network with a real HTTP client (and raw sockets for
//! requests no well-behaved client would send).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestApp, demo_catalog_json};
use image_service::proto::compute::GetImageRequest;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::descriptor_pool;
use prost_reflect::DynamicMessage;
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get(
    app: &TestApp,
    path: &str,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let response = client().get(app.http_url(path)).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json", "{path}");
    assert!(headers.contains_key("x-request-id"), "{path}");
    let body = response.json().await.unwrap();
    (status, headers, body)
}

/// Checks the google.rpc.Status body shape and returns its details.
fn assert_status_body(body: &Value, code: i64, message_part: &str, request_id: &str) -> Vec<Value> {
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(message_part),
        "{body}"
    );
    let details = body["details"].as_array().unwrap().clone();
    let info = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RequestInfo")
        .expect("RequestInfo detail");
    assert_eq!(info["requestId"], request_id);
    details
}

#[tokio::test]
async fn get_returns_the_same_message_as_grpc_for_every_demo_image() {
    let app = TestApp::demo().await;
    let pool = descriptor_pool().unwrap();
    let catalog = demo_catalog_json();
    let mut grpc = ImageServiceClient::new(app.channel().await);
    for entry in catalog["computeImages"].as_array().unwrap() {
        let id = entry["id"].as_str().unwrap();
        let (status, _, body) = get(&app, &format!("/compute/v1/images/{id}")).await;
        assert_eq!(status, 200);
        // Parsed strictly into the message type, the JSON is the gRPC answer.
        let descriptor = pool
            .get_message_by_name("yandex.cloud.compute.v1.Image")
            .unwrap();
        let from_rest: image_service::proto::compute::Image =
            DynamicMessage::deserialize(descriptor, body.clone())
                .unwrap()
                .transcode_to()
                .unwrap();
        let from_grpc = grpc
            .get(GetImageRequest {
                image_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(from_rest, from_grpc);
        // The canonical forms: int64 as strings, enums by name.
        if let Some(size) = body.get("storageSize") {
            assert!(size.is_string());
        }
        assert!(body["status"].is_string());
    }
    for entry in catalog["containerRegistryImages"].as_array().unwrap() {
        let id = entry["id"].as_str().unwrap();
        let (status, _, body) = get(&app, &format!("/container-registry/v1/images/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["id"], id);
        assert_eq!(body["layers"], entry["layers"]);
    }
}

#[tokio::test]
async fn oneof_member_that_is_an_empty_message_is_present() {
    let app = TestApp::demo().await;
    let (_, _, body) = get(&app, "/compute/v1/images/fd824k6uqk9cvi1ise4i").await;
    assert_eq!(
        body["hardwareGeneration"],
        serde_json::json!({"generation2Features": {}})
    );
    // Defaults (pooled=false, empty labels) are left out.
    let (_, _, body) = get(&app, "/compute/v1/images/fd8r3cfeol2tp166r4tp").await;
    assert!(body.get("pooled").is_none());
    assert!(body.get("labels").is_none());
}

#[tokio::test]
async fn not_found_is_a_status_body_with_the_incoming_request_id() {
    let app = TestApp::demo().await;
    let response = client()
        .get(app.http_url("/compute/v1/images/fd8nothere"))
        .header("x-request-id", "edge-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"], "edge-7");
    let body: Value = response.json().await.unwrap();
    assert_status_body(&body, 5, "Image fd8nothere not found", "edge-7");
}

#[tokio::test]
async fn invalid_id_is_400_with_bad_request_detail() {
    let app = TestApp::demo().await;
    let long = "x".repeat(51);
    let (status, headers, body) = get(&app, &format!("/container-registry/v1/images/{long}")).await;
    assert_eq!(status, 400);
    let request_id = headers["x-request-id"].to_str().unwrap();
    let details = assert_status_body(&body, 3, "image_id", request_id);
    let bad = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .expect("BadRequest detail");
    assert_eq!(bad["fieldViolations"][0]["field"], "image_id");
}

#[tokio::test]
async fn unknown_path_and_wrong_method() {
    let app = TestApp::demo().await;
    let (status, headers, body) = get(&app, "/compute/v9/whatever").await;
    assert_eq!(status, 404);
    assert_status_body(
        &body,
        5,
        "no route",
        headers["x-request-id"].to_str().unwrap(),
    );

    let response = client()
        .put(app.http_url("/compute/v1/images/fd8x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, PATCH, DELETE");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_status_body(&body, 12, "not allowed", &request_id);
}

#[tokio::test]
async fn declared_but_unbuilt_calls_are_501() {
    // Writes are declared; a backend without them doesn't serve them.
    let memory = image_service::store::MemoryRepository::new(
        image_service::store::catalog::Catalog::demo().unwrap(),
    );
    let app = TestApp::with_repositories(image_service::store::Repositories {
        writes: None,
        ..image_service::store::Repositories::in_memory(memory)
    })
    .await;
    let response = client()
        .post(app.http_url("/compute/v1/images/fd8x:setAccessBindings"))
        .body(r#"{"accessBindings": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 501);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is not implemented by image-service")
    );
}

#[tokio::test]
async fn query_parameters_in_both_spellings_fill_the_request() {
    let app = TestApp::demo().await;
    for query in [
        "folderId=standard-images&pageSize=2",
        "folder_id=standard-images&page_size=2",
    ] {
        let (status, _, body) = get(&app, &format!("/compute/v1/images?{query}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["images"].as_array().unwrap().len(), 2);
        assert!(body["nextPageToken"].is_string());
    }
    let (status, _, body) = get(
        &app,
        "/compute/v1/images:latestByFamily?folderId=standard-images&family=ubuntu-2204-lts",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "fd824k6uqk9cvi1ise4i");
}

#[tokio::test]
async fn paging_over_rest_returns_every_image_once() {
    let app = TestApp::demo().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let path =
            format!("/compute/v1/images?folderId=standard-images&pageSize=1&pageToken={token}");
        let (status, _, body) = get(&app, &path).await;
        assert_eq!(status, 200, "{body}");
        for image in body["images"].as_array().unwrap() {
            seen.push(image["id"].as_str().unwrap().to_owned());
        }
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => token = next.to_owned(),
            _ => break,
        }
    }
    let catalog = demo_catalog_json();
    let mut expected: Vec<String> = catalog["computeImages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["folderId"] == "standard-images")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_them() {
    let app = TestApp::demo().await;
    for (query, field) in [
        ("folderId=a&pageSize=abc", "pageSize"),
        ("folderId=a&bogus=1", "bogus"),
        ("folderId=a&pageSize=2000", "page_size"),
        ("folderId=a&filter=name%20%3D", "filter"),
        ("folderId=a&pageSize=%zz", "pageSize"),
    ] {
        let (status, _, body) = get(&app, &format!("/compute/v1/images?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], 3);
        let bad = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap_or_else(|| panic!("BadRequest for {query}: {body}"));
        assert_eq!(bad["fieldViolations"][0]["field"], field, "{query}");
    }
}

/// Sends raw bytes and returns the status line and whole response.
fn raw(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.http_addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_4xx_and_the_server_keeps_serving() {
    let app = TestApp::demo().await;
    let bad_escape = raw(
        &app,
        b"GET /compute/v1/images/fd8%zz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(bad_escape.starts_with("HTTP/1.1 400"), "{bad_escape}");
    assert!(bad_escape.contains("bad percent-encoding"));

    let long_uri = format!(
        "GET /compute/v1/images/{} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "a".repeat(10_000)
    );
    let response = raw(&app, long_uri.as_bytes());
    assert!(response.starts_with("HTTP/1.1 414"), "{response}");

    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n",
        "b".repeat(100_000)
    );
    let response = raw(&app, huge_header.as_bytes());
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "{}",
        &response[..response.len().min(200)]
    );

    let big_body = client()
        .post(app.http_url("/compute/v1/images"))
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await;
    if let Ok(response) = big_body {
        assert_eq!(response.status(), 413);
    }

    // Everyone else is still served.
    let (status, _, _) = get(&app, "/compute/v1/images/fd824k6uqk9cvi1ise4i").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let app = TestApp::demo().await;
    let response = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .get(app.http_url("/compute/v1/images/fd824k6uqk9cvi1ise4i"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn probes_follow_health() {
    let app = TestApp::demo().await;
    let response = client().get(app.http_url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = client().get(app.http_url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    app.health()
        .set_service_status(
            "yandex.cloud.containerregistry.v1.ImageService",
            tonic_health::ServingStatus::NotServing,
        )
        .await;
    let response = client().get(app.http_url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("yandex.cloud.containerregistry.v1.ImageService"),
        "{body}"
    );
    // Liveness does not depend on readiness.
    let response = client().get(app.http_url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}
