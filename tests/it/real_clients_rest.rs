//! The REST face against clients we didn't write: protobuf's reference JSON
//! implementation (Python json_format, with the official SDK's message classes)
//! and curl.

use crate::common;

use std::ffi::OsString;

use common::TestApp;
use common::clients::{all_output, curl, python_with_sdk, run, run_demo_catalog_script};
use serde_json::Value;

const REST_JSON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/rest_json.py");

#[tokio::test(flavor = "multi_thread")]
async fn json_is_byte_for_byte_what_the_reference_implementation_prints() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let app = TestApp::demo().await;
    run_demo_catalog_script(
        python,
        REST_JSON_SCRIPT,
        format!("http://{}", app.http_addr),
    )
    .await;
}

async fn curl_json(app: &TestApp, extra: &[&str], path: &str) -> (String, Value) {
    let Some(tool) = curl() else {
        return (String::new(), Value::Null);
    };
    // -i keeps the status line and headers in front of the body.
    let mut args: Vec<OsString> = vec!["-s".into(), "-i".into(), "--max-time".into(), "10".into()];
    args.extend(extra.iter().map(OsString::from));
    args.push(app.http_url(path).into());
    let out = run(tool, args).await;
    assert!(out.status.success(), "{}", all_output(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("headers then body");
    (
        head.to_owned(),
        serde_json::from_str(body).expect("JSON body"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_gets_both_apis_and_sees_errors_as_status_bodies() {
    if curl().is_none() {
        return;
    }
    let app = TestApp::demo().await;
    let (head, body) = curl_json(&app, &[], "/compute/v1/images/fd824k6uqk9cvi1ise4i").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    assert_eq!(body["family"], "ubuntu-2204-lts");

    let (head, body) = curl_json(
        &app,
        &["--http2-prior-knowledge"],
        "/container-registry/v1/images/crpnanhnu5ea83js93tf",
    )
    .await;
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert_eq!(body["name"], "crpd2nrqffpp3e93946m/team/app");

    let (head, body) = curl_json(
        &app,
        &["-H", "x-request-id: curl-1"],
        "/compute/v1/images/fd8unknown",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-request-id: curl-1"),
        "{head}"
    );
    assert_eq!(body["code"], 5);
    assert_eq!(body["message"], "Image fd8unknown not found");
    assert_eq!(body["details"][0]["requestId"], "curl-1");

    let (head, body) = curl_json(
        &app,
        &[],
        "/compute/v1/images:latestByFamily?folderId=standard-images&family=debian-12",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The newer debian-12 image is still CREATING: the latest READY one wins.
    assert_eq!(body["id"], "fd8r3cfeol2tp166r4tp");
}
