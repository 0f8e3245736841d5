//! List and GetLatestByFamily against clients we didn't write: the official
//! Yandex Cloud Python SDK (tests/clients/sdk_list.py pages through the demo
//! catalog with its own stubs) and grpcurl (schema from server reflection).
//!
//! The tools are found as in tests/real_clients.rs: `IMAGE_SERVICE_PYTHON` /
//! `IMAGE_SERVICE_GRPCURL`, else `python3` / `grpcurl` on PATH; without them the
//! tests skip, unless `CI` or `IMAGE_SERVICE_REQUIRE_CLIENTS=1` is set.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::TestApp;
use common::clients::{
    all_output, grpcurl, grpcurl_run, python_with_sdk, run_demo_catalog_script, success_text,
};
use serde_json::Value;

const SDK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_list.py");

const COMPUTE_LIST: &str = "yandex.cloud.compute.v1.ImageService/List";
const COMPUTE_LATEST: &str = "yandex.cloud.compute.v1.ImageService/GetLatestByFamily";
const CONTAINER_LIST: &str = "yandex.cloud.containerregistry.v1.ImageService/List";

/// `grpcurl -plaintext -d REQUEST ADDR METHOD`.
async fn grpcurl_call(tool: &Path, app: &TestApp, request: &Value, method: &str) -> Output {
    grpcurl_run(tool, app, &["-d", &request.to_string()], &[method]).await
}

/// grpcurl's answer to a call that must have succeeded, as JSON.
fn json_answer(out: &Output, what: &str) -> Value {
    let text = success_text(out, what);
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{what}: grpcurl printed no JSON ({err}):\n{text}"))
}

fn ids_of(answer: &Value) -> Vec<String> {
    answer["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .map(|i| i["id"].as_str().expect("an id").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdk_pages_through_the_demo_catalog() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let app = TestApp::demo().await;
    run_demo_catalog_script(python, SDK_SCRIPT, app.grpc_addr.to_string()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_pages_filters_and_gets_the_latest_image() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;

    // Two pages of two, newest first, READY only; the second ends the list.
    let mut request = serde_json::json!({
        "folder_id": "b1gdemo7f0lder2qk8vh",
        "page_size": 2,
        "filter": "status = 'READY'",
        "order_by": "createdAt desc",
    });
    let first = json_answer(
        &grpcurl_call(&grpcurl, &app, &request, COMPUTE_LIST).await,
        "List page 1",
    );
    assert_eq!(
        ids_of(&first),
        ["fd828cob72di3nq6h3fm", "fd8o2pjpr9dfpl308ukq"]
    );
    let token = first["nextPageToken"].as_str().expect("a next page token");
    request["page_token"] = token.into();
    let second = json_answer(
        &grpcurl_call(&grpcurl, &app, &request, COMPUTE_LIST).await,
        "List page 2",
    );
    assert_eq!(ids_of(&second), ["fd871gtv3jscsg9qrase"]);
    assert!(
        second.get("nextPageToken").is_none(),
        "the last page has no token: {second}"
    );

    let latest = json_answer(
        &grpcurl_call(
            &grpcurl,
            &app,
            &serde_json::json!({"folder_id": "standard-images", "family": "debian-12"}),
            COMPUTE_LATEST,
        )
        .await,
        "GetLatestByFamily",
    );
    assert_eq!(latest["id"], "fd8r3cfeol2tp166r4tp");
    assert_eq!(latest["status"], "READY");

    let registry = json_answer(
        &grpcurl_call(
            &grpcurl,
            &app,
            &serde_json::json!({"folder_id": "b1gdemo7f0lder2qk8vh", "order_by": "name, created_at desc"}),
            CONTAINER_LIST,
        )
        .await,
        "containerregistry List",
    );
    assert_eq!(
        ids_of(&registry),
        [
            "crpphg9khf9ophjidojm",
            "crp0rp8juv273i2hplls",
            "crpphk31u48ts5plqaqo"
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_shows_the_errors_of_list_and_latest() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;
    for (request, method, code, message) in [
        (
            serde_json::json!({"folder_id": "standard-images", "filter": "name ~ 'x'"}),
            COMPUTE_LIST,
            "InvalidArgument",
            "Request validation error: filter: syntax error at column 6",
        ),
        (
            serde_json::json!({"folder_id": "standard-images", "family": "no-such-family"}),
            COMPUTE_LATEST,
            "NotFound",
            "Image family no-such-family not found in folder standard-images",
        ),
        (
            serde_json::json!({}),
            CONTAINER_LIST,
            "InvalidArgument",
            "one of repository_name, registry_id or folder_id is required",
        ),
    ] {
        let out = grpcurl_call(&grpcurl, &app, &request, method).await;
        let text = all_output(&out);
        assert!(
            !out.status.success(),
            "{method} {request} succeeded:\n{text}"
        );
        assert!(text.contains(&format!("Code: {code}")), "{method}:\n{text}");
        assert!(text.contains(message), "{method}:\n{text}");
    }
    app.stop().await;
}
