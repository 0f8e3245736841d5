//! gRPC-Web on both listeners: a real client from npm (Connect's gRPC-Web
//! transport over HTTP/1.1, `tests/clients/node/grpc_web.mjs`) against both
//! APIs, errors included; the base64 text form by hand; CORS off and on.

use crate::common::clients::{all_output, node_sdk, run};
use crate::common::{TestApp, test_settings, write_temp_bytes};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_web_client_calls_both_apis_on_both_listeners() {
    let Some(node) = node_sdk() else {
        return;
    };
    let app = TestApp::demo().await;
    let descriptors = write_temp_bytes(image_service::proto::FILE_DESCRIPTOR_SET);
    let http = app.http_url("");
    let grpc = app.grpc_url();
    let out = run(
        node.node.clone(),
        vec![
            node.script("grpc_web.mjs").into(),
            descriptors.path().into(),
            http.clone().into(),
            grpc.clone().into(),
        ],
    )
    .await;
    let text = all_output(&out);
    assert!(out.status.success(), "grpc_web.mjs failed:\n{text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert_eq!(lines.len(), 10, "{text}");
    for url in [&http, &grpc] {
        let answer = |call: &str| {
            lines
                .iter()
                .find(|line| line["url"] == url.as_str() && line["call"] == call)
                .unwrap_or_else(|| panic!("no {call} on {url}:\n{text}"))
                .clone()
        };
        let get = answer("compute.Get");
        assert_eq!(get["code"], "OK", "{get}");
        assert_eq!(get["id"], "fd8o2pjpr9dfpl308ukq");
        assert_eq!(get["folderId"], "b1gdemo7f0lder2qk8vh");
        let list = answer("compute.List");
        assert_eq!(
            (list["code"].as_str(), list["count"].as_u64()),
            (Some("OK"), Some(2)),
            "{list}"
        );
        assert!(
            !list["nextPageToken"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
        let container = answer("container.Get");
        assert_eq!(container["id"], "crpphk31u48ts5plqaqo", "{container}");
        let missing = answer("compute.Get missing");
        assert_eq!(missing["code"], "NotFound", "{missing}");
        assert!(
            missing["message"]
                .as_str()
                .unwrap_or_default()
                .contains("fd8nosuchimage")
        );
        let bad = answer("compute.Get bad id");
        assert_eq!(bad["code"], "InvalidArgument", "{bad}");
        assert!(
            bad["message"]
                .as_str()
                .unwrap_or_default()
                .contains("image_id"),
            "{bad}"
        );
    }
    app.stop().await;
}

/// A GetImageRequest framed for gRPC(-Web): flag, length, message.
fn get_frame(id: &str) -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 0, (id.len() + 2) as u8, 0x0a, id.len() as u8];
    frame.extend_from_slice(id.as_bytes());
    frame
}

#[tokio::test]
async fn grpc_web_text_is_answered_in_base64_on_both_listeners() {
    let app = TestApp::demo().await;
    let client = reqwest::Client::new();
    for base in [app.http_url(""), app.grpc_url()] {
        let answer = client
            .post(format!("{base}/yandex.cloud.compute.v1.ImageService/Get"))
            .header("content-type", "application/grpc-web-text")
            .header("accept", "application/grpc-web-text")
            .body(STANDARD.encode(get_frame("fd8o2pjpr9dfpl308ukq")))
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.headers()["content-type"],
            "application/grpc-web-text+proto"
        );
        let body = answer.text().await.expect("text");
        // The message frame, then the trailers frame, each base64 on its own.
        let decoded: Vec<u8> = body
            .split_inclusive('=')
            .flat_map(|chunk| STANDARD.decode(chunk.trim()).unwrap_or_default())
            .collect();
        let text = String::from_utf8_lossy(&decoded);
        assert!(text.contains("fd8o2pjpr9dfpl308ukq"), "{text}");
        assert!(text.contains("grpc-status:0"), "{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_preflights_when_on() {
    let preflight = |app: &TestApp| {
        reqwest::Client::new()
            .request(
                reqwest::Method::OPTIONS,
                app.http_url("/yandex.cloud.compute.v1.ImageService/Get"),
            )
            .header("origin", "http://localhost:3000")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,authorization",
            )
            .send()
    };
    let off = TestApp::demo().await;
    let answer = preflight(&off).await.expect("answers");
    assert_ne!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    off.stop().await;

    let mut settings = test_settings(None);
    settings.cors_allow_origins = vec!["http://localhost:3000".into()];
    let on = TestApp::start(settings, None, None).await;
    let answer = preflight(&on).await.expect("answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let allowed = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap_or_default();
    assert!(
        allowed.contains("x-grpc-web") && allowed.contains("authorization"),
        "{allowed}"
    );
    // A REST call from that origin may read its answer; another origin may not.
    let rest = |origin: &'static str| {
        reqwest::Client::new()
            .get(on.http_url("/compute/v1/images/fd8o2pjpr9dfpl308ukq"))
            .header("origin", origin)
            .send()
    };
    let allowed = rest("http://localhost:3000").await.expect("answers");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let other = rest("http://evil.example").await.expect("answers");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    on.stop().await;
}
