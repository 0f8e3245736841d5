//! The server against clients we didn't write: the official Yandex Cloud Python
//! SDK (its own generated stubs and message classes), the official Node.js SDK
//! (its generated clients and its `ApiError`) and grpcurl (which learns the
//! schema from server reflection). Plus a check of our descriptors against the
//! Python SDK's, field by field.
//!
//! The tools come from `IMAGE_SERVICE_PYTHON` / `IMAGE_SERVICE_GRPCURL` /
//! `IMAGE_SERVICE_NODE`, else `python3` / `grpcurl` / `node` on PATH, the
//! Node.js SDK from `IMAGE_SERVICE_NODE_CLIENTS` (else `tests/clients/node`).
//! Without them the tests skip, unless `CI` or `IMAGE_SERVICE_REQUIRE_CLIENTS=1`
//! is set, where they fail instead.

use crate::common;

use std::io::Write;

use common::clients::{
    all_output, grpcurl, grpcurl_run, node_sdk, python_with_sdk, run, run_demo_catalog_script,
    success_text,
};
use common::{TestApp, demo_catalog_json};
use serde_json::Value;

const SDK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_get.py");
const WIRE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/check_wire_schema.py"
);

const COMPUTE_GET: &str = "yandex.cloud.compute.v1.ImageService/Get";
const CONTAINER_GET: &str = "yandex.cloud.containerregistry.v1.ImageService/Get";
const UNKNOWN_ID: &str = "fd8doesnotexist000000";

/// Drops the members proto3 JSON leaves out when they hold their default
/// (false, 0, "", "0" for int64, []), so the catalog's explicit defaults
/// compare equal to grpcurl's output. Empty objects stay: `{}` is a set
/// message such as `"generation2Features": {}`, which must come back.
fn without_defaults(value: &Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .filter(|(_, v)| !is_default(v))
                .map(|(k, v)| (k.clone(), without_defaults(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_defaults).collect()),
        other => other.clone(),
    }
}

fn is_default(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(items) => items.is_empty(),
        Value::Null => true,
        Value::Object(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdk_gets_every_demo_image() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let app = TestApp::demo().await;
    run_demo_catalog_script(python, SDK_SCRIPT, app.grpc_addr.to_string()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn descriptor_set_matches_official_sdk() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let mut descriptors = tempfile::Builder::new()
        .suffix(".binpb")
        .tempfile()
        .expect("temp file");
    descriptors
        .write_all(image_service::proto::FILE_DESCRIPTOR_SET)
        .expect("write the descriptor set");

    let out = run(python, vec![WIRE_SCRIPT.into(), descriptors.path().into()]).await;

    let text = all_output(&out);
    assert!(out.status.success(), "check_wire_schema.py failed:\n{text}");
    assert!(text.contains(" 0 failed"), "unexpected summary:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_every_service_through_reflection() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;

    // grpcurl 1.8 asks reflection v1alpha only, so this also covers that version.
    let listed = success_text(
        &grpcurl_run(&grpcurl, &app, &[], &["list"]).await,
        "grpcurl list",
    );
    let services: Vec<&str> = listed.lines().map(str::trim).collect();
    for expected in [
        "yandex.cloud.compute.v1.ImageService",
        "yandex.cloud.containerregistry.v1.ImageService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.contains(&expected),
            "{expected} not listed:\n{listed}"
        );
    }

    let health = success_text(
        &grpcurl_run(
            &grpcurl,
            &app,
            &[
                "-d",
                r#"{"service":"yandex.cloud.compute.v1.ImageService"}"#,
            ],
            &["grpc.health.v1.Health/Check"],
        )
        .await,
        "grpcurl health check",
    );
    assert!(health.contains("SERVING"), "health answer:\n{health}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_describes_the_official_image_schema() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;

    let image = success_text(
        &grpcurl_run(
            &grpcurl,
            &app,
            &[],
            &["describe", "yandex.cloud.compute.v1.Image"],
        )
        .await,
        "grpcurl describe Image",
    );
    for line in ["int64 size = 16;", "map<string, string> labels = 6;"] {
        assert!(image.contains(line), "{line:?} not in:\n{image}");
    }

    let os = success_text(
        &grpcurl_run(
            &grpcurl,
            &app,
            &[],
            &["describe", "yandex.cloud.compute.v1.Os"],
        )
        .await,
        "grpcurl describe Os",
    );
    assert!(
        os.contains(".yandex.cloud.compute.v1.Nvidia nvidia = 2;"),
        "no nvidia field in:\n{os}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_gets_every_demo_image_as_in_the_catalog() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;
    let catalog = demo_catalog_json();

    for (list, method) in [
        ("computeImages", COMPUTE_GET),
        ("containerRegistryImages", CONTAINER_GET),
    ] {
        let entries = catalog[list].as_array().expect("a list of images");
        assert!(!entries.is_empty(), "the demo catalog has no {list}");
        for entry in entries {
            let id = entry["id"].as_str().expect("an id");
            let request = serde_json::json!({ "image_id": id }).to_string();
            let out = grpcurl_run(&grpcurl, &app, &["-d", &request], &[method]).await;
            let text = success_text(&out, &format!("grpcurl {method} {id}"));
            let got: Value = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("grpcurl printed no JSON ({err}):\n{text}"));
            // Timestamps and int64 strings compare as text: grpcurl prints them
            // the canonical way, and so does the catalog.
            assert_eq!(
                without_defaults(&got),
                without_defaults(entry),
                "{method} {id}: grpcurl's answer (left) differs from the catalog (right)"
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_get_of_an_unknown_image_is_not_found() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;
    let request = serde_json::json!({ "image_id": UNKNOWN_ID }).to_string();

    for method in [COMPUTE_GET, CONTAINER_GET] {
        let out = grpcurl_run(&grpcurl, &app, &["-d", &request], &[method]).await;
        let text = all_output(&out);
        assert!(!out.status.success(), "{method} succeeded:\n{text}");
        assert!(text.contains("Code: NotFound"), "{method}:\n{text}");
        assert!(
            text.contains(&format!("Message: Image {UNKNOWN_ID} not found")),
            "{method}:\n{text}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_sees_the_incoming_request_id_echoed() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;
    let flags = |request: &'static str| ["-v", "-H", "x-request-id: test-req-1", "-d", request];

    // On success the id comes back in the response headers.
    let found = r#"{"image_id":"fd8e0i00mv2ba2rsl5re"}"#;
    let out = grpcurl_run(&grpcurl, &app, &flags(found), &[COMPUTE_GET]).await;
    let text = success_text(&out, "grpcurl -v Get");
    let headers = section(&text, "Response headers received:");
    assert!(
        headers.contains("x-request-id: test-req-1"),
        "no x-request-id in the response headers:\n{text}"
    );

    // On an error (a trailers-only answer) it comes back in the trailers, and
    // the RequestInfo detail names it too.
    let unknown = r#"{"image_id":"fd8doesnotexist000000"}"#;
    let out = grpcurl_run(&grpcurl, &app, &flags(unknown), &[CONTAINER_GET]).await;
    let text = all_output(&out);
    assert!(
        !out.status.success(),
        "Get of an unknown id succeeded:\n{text}"
    );
    let trailers = section(&text, "Response trailers received:");
    assert!(
        trailers.contains("x-request-id: test-req-1"),
        "no x-request-id in the response trailers:\n{text}"
    );
    assert!(
        text.contains(r#""requestId":"test-req-1""#),
        "no RequestInfo detail with the request id:\n{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn official_nodejs_sdk_error_carries_request_id() {
    let Some(sdk) = node_sdk() else {
        return;
    };
    let app = TestApp::demo().await;
    let out = run(
        sdk.node.clone(),
        vec![
            sdk.script("sdk_error.mjs").into(),
            app.grpc_addr.to_string().into(),
        ],
    )
    .await;
    let text = all_output(&out);
    assert!(out.status.success(), "sdk_error.mjs failed:\n{text}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}\n{text}"))
        })
        .collect();
    let answer = |call: &str, id: &str| {
        lines
            .iter()
            .find(|line| line["call"] == call && line["id"] == id)
            .unwrap_or_else(|| panic!("no {call} {id} line in sdk_error.mjs's output:\n{text}"))
    };

    // The SDK builds its ApiError (requestId, serverTraceId) only from response
    // headers received before the status; after a trailers-only answer it
    // throws nice-grpc's bare ClientError, without either id.
    for (call, id) in [
        ("compute.Get", "fd8doesnotexist000000"),
        ("registry.Get", "crpdoesnotexist00000"),
    ] {
        let error = answer(call, id);
        assert_eq!(
            error["error"], "ApiError",
            "{call} {id}: not the SDK's ApiError (no response headers before the status?): {error}"
        );
        assert_eq!(error["code"], 5, "{call} {id}: not NOT_FOUND: {error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.ends_with(&format!("NOT_FOUND: Image {id} not found"))),
            "{call} {id}: unexpected message: {error}"
        );
        for id_field in ["requestId", "serverTraceId"] {
            assert!(
                error[id_field].as_str().is_some_and(|v| !v.is_empty()),
                "{call} {id}: ApiError.{id_field} is empty: {error}"
            );
        }
    }

    // And the happy path, through the same clients.
    let catalog = demo_catalog_json();
    for (call, list, id) in [
        ("compute.Get", "computeImages", "fd8e0i00mv2ba2rsl5re"),
        (
            "registry.Get",
            "containerRegistryImages",
            "crpphk31u48ts5plqaqo",
        ),
    ] {
        let entry = catalog[list]
            .as_array()
            .and_then(|entries| entries.iter().find(|entry| entry["id"] == id))
            .unwrap_or_else(|| panic!("{id} is not in the demo catalog's {list}"));
        let image = answer(call, id);
        assert_eq!(image["ok"], true, "{call} {id} failed: {image}");
        assert_eq!(image["imageId"], id, "{call} {id}: {image}");
        assert_eq!(image["name"], entry["name"], "{call} {id}: {image}");
    }
    app.stop().await;
}

/// The lines of grpcurl's verbose output after `title`, up to the next blank line.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(title)
        .unwrap_or_else(|| panic!("no {title:?} in grpcurl's output:\n{text}"))
        + title.len();
    let rest = &text[start..];
    rest.find("\n\n").map_or(rest, |end| &rest[..end])
}
