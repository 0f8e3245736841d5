//! Catalog reload without a restart, through the real binary: SIGHUP and
//! --watch-catalog swap in an edited catalog, a broken edit keeps the old one
//! (logged and counted), and calls running during reloads never fail.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::process::Server;
use image_service::proto::compute::GetImageRequest;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use tonic::Code;

/// In every version of the catalog these tests write.
const KEPT: &str = "fd8e0i00mv2ba2rsl5re";
/// Removed by the edit.
const REMOVED: &str = "fd824k6uqk9cvi1ise4i";
/// Added by the edit (a copy of KEPT under a new id).
const ADDED: &str = "fd8reloadedimage0001";

/// The demo catalog without REMOVED and with ADDED.
fn edited_catalog() -> serde_json::Value {
    let mut catalog = common::demo_catalog_json();
    let images = catalog["computeImages"].as_array_mut().unwrap();
    images.retain(|image| image["id"] != REMOVED);
    let mut added = images[0].clone();
    added["id"] = ADDED.into();
    added["name"] = "reloaded-image".into();
    images.push(added);
    catalog
}

/// Replaces `path` the way editors and ConfigMap updates do: a new file
/// renamed over the old one.
fn replace_file(path: &Path, catalog: &serde_json::Value) {
    let next = path.with_extension("next");
    std::fs::write(&next, serde_json::to_vec_pretty(catalog).unwrap()).unwrap();
    std::fs::rename(&next, path).unwrap();
}

struct Catalog {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

fn demo_catalog_file() -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    std::fs::write(&path, image_service::store::catalog::DEMO_CATALOG_JSON).unwrap();
    Catalog { _dir: dir, path }
}

async fn grpc_code(server: &Server, id: &str) -> Code {
    let mut client = ImageServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    match client
        .get(GetImageRequest {
            image_id: id.into(),
        })
        .await
    {
        Ok(response) => {
            assert_eq!(response.into_inner().id, id);
            Code::Ok
        }
        Err(status) => status.code(),
    }
}

async fn rest_status(server: &Server, id: &str) -> u16 {
    reqwest::get(format!(
        "http://{}/compute/v1/images/{id}",
        server.http_addr
    ))
    .await
    .unwrap()
    .status()
    .as_u16()
}

async fn metrics(server: &Server) -> String {
    reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn is_reloaded(line: &serde_json::Value) -> bool {
    line["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("catalog reloaded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_the_edited_catalog_on_both_faces() {
    let file = demo_catalog_file();
    let mut server = Server::start(&["--catalog", file.path.to_str().unwrap()]);
    assert_eq!(grpc_code(&server, ADDED).await, Code::NotFound);

    replace_file(&file.path, &edited_catalog());
    server.signal("HUP");
    let line = server.wait_for(is_reloaded);
    assert_eq!(line["trigger"], "SIGHUP", "{line}");

    assert_eq!(grpc_code(&server, ADDED).await, Code::Ok);
    assert_eq!(grpc_code(&server, REMOVED).await, Code::NotFound);
    assert_eq!(grpc_code(&server, KEPT).await, Code::Ok);
    assert_eq!(rest_status(&server, ADDED).await, 200);
    assert_eq!(rest_status(&server, REMOVED).await, 404);

    let text = metrics(&server).await;
    assert!(
        text.contains(r#"image_service_catalog_reloads_total{result="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"image_service_catalog_reloads_total{result="failed"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"image_service_catalog_images{api="compute"} 14"#),
        "{text}"
    );
    assert!(
        text.contains("image_service_catalog_loaded_timestamp_seconds"),
        "{text}"
    );
    assert!(
        server.terminate().success(),
        "SIGHUP did not end the process"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_keeps_the_old_catalog_and_is_logged_and_counted() {
    let file = demo_catalog_file();
    let mut server = Server::start(&["--catalog", file.path.to_str().unwrap()]);

    let mut broken = edited_catalog();
    broken["computeImages"][1]["status"] = "SHINY".into();
    replace_file(&file.path, &broken);
    server.signal("HUP");
    let line = server.wait_for(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("catalog reload failed"))
    });
    let message = line["message"].as_str().unwrap();
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(
        message.contains(&format!("catalog {}: ", file.path.display())),
        "names the file: {message}"
    );
    let second = broken["computeImages"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!(r#"computeImages[1] (id "{second}")"#)),
        "names the entry: {message}"
    );
    assert!(
        message.contains("unrecognized enum value 'SHINY'"),
        "names the problem: {message}"
    );

    // The start-up check refuses the same file with the same words.
    let check = std::process::Command::new(common::process::BIN)
        .args(["check-catalog", file.path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!check.status.success());
    let refusal = String::from_utf8_lossy(&check.stderr);
    let reason = refusal.trim().trim_start_matches("image-service: error: ");
    assert!(message.ends_with(reason), "{message} vs {reason}");

    assert_eq!(
        grpc_code(&server, REMOVED).await,
        Code::Ok,
        "old catalog kept"
    );
    assert_eq!(grpc_code(&server, ADDED).await, Code::NotFound);
    assert_eq!(rest_status(&server, REMOVED).await, 200);
    let text = metrics(&server).await;
    assert!(
        text.contains(r#"image_service_catalog_reloads_total{result="failed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"image_service_catalog_reloads_total{result="ok"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"image_service_catalog_images{api="compute"} 14"#),
        "{text}"
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_catalog_picks_up_edits_without_a_signal() {
    let file = demo_catalog_file();
    let mut server = Server::start(&["--catalog", file.path.to_str().unwrap(), "--watch-catalog"]);

    // Written in place.
    std::fs::write(&file.path, serde_json::to_vec(&edited_catalog()).unwrap()).unwrap();
    let line = server.wait_for(is_reloaded);
    assert_eq!(line["trigger"], "file change", "{line}");
    assert_eq!(grpc_code(&server, ADDED).await, Code::Ok);
    assert_eq!(grpc_code(&server, REMOVED).await, Code::NotFound);

    // Replaced by rename, as editors do: back to the demo catalog.
    replace_file(&file.path, &common::demo_catalog_json());
    server.wait_for(is_reloaded);
    assert_eq!(grpc_code(&server, ADDED).await, Code::NotFound);
    assert_eq!(grpc_code(&server, REMOVED).await, Code::Ok);
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_running_during_reloads_all_succeed() {
    let file = demo_catalog_file();
    let mut server = Server::start(&["--catalog", file.path.to_str().unwrap()]);
    let url = format!("http://{}", server.addr);
    let rest_url = format!("http://{}/compute/v1/images/{KEPT}", server.http_addr);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let (url, rest_url, stop, done) =
            (url.clone(), rest_url.clone(), stop.clone(), done.clone());
        loops.push(tokio::spawn(async move {
            let mut client = ImageServiceClient::connect(url).await.unwrap();
            let http = reqwest::Client::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Err(status) = client
                    .get(GetImageRequest {
                        image_id: KEPT.into(),
                    })
                    .await
                {
                    failures.push(format!("gRPC: {status:?}"));
                }
                match http.get(&rest_url).send().await {
                    Ok(response) if response.status() == 200 => {}
                    other => failures.push(format!("REST: {other:?}")),
                }
                done.fetch_add(2, Ordering::Relaxed);
            }
            failures
        }));
    }
    let versions = [edited_catalog(), common::demo_catalog_json()];
    for round in 0..6 {
        replace_file(&file.path, &versions[round % 2]);
        server.signal("HUP");
        server.wait_for(is_reloaded);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for handle in loops {
        failures.extend(handle.await.unwrap());
    }
    assert!(failures.is_empty(), "{failures:?}");
    assert!(done.load(Ordering::Relaxed) > 50, "the loops made calls");
    let text = metrics(&server).await;
    assert!(
        text.contains(r#"image_service_catalog_reloads_total{result="ok"} 6"#),
        "{text}"
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_catalog_file_changes_nothing_and_keeps_serving() {
    let mut server = Server::start(&[]);
    server.signal("HUP");
    let line = server.wait_for(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("SIGHUP received: no catalog reload"))
    });
    assert!(
        line["message"].as_str().unwrap().contains("demo catalog"),
        "{line}"
    );
    assert_eq!(grpc_code(&server, KEPT).await, Code::Ok);
    assert!(server.terminate().success());
}

/// A tokens file of one token that reads every folder.
fn tokens_file_text(subject: &str, token: &str) -> String {
    let digest = image_service::transport::auth::TokenDigest::of(token.as_bytes()).to_hex();
    format!(r#"{{"tokens": [{{"subject": "{subject}", "sha256": "{digest}", "folders": ["*"]}}]}}"#)
}

fn replace_text(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

async fn grpc_code_with_token(server: &Server, token: &str) -> Code {
    let mut client = ImageServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let mut request = tonic::Request::new(GetImageRequest {
        image_id: KEPT.into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match client.get(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn rest_status_with_token(server: &Server, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!(
            "http://{}/compute/v1/images/{KEPT}",
            server.http_addr
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_auth_tokens_file_and_a_broken_one_keeps_the_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    std::fs::write(&path, tokens_file_text("old", "old-token")).unwrap();
    let mut server = Server::start(&["--auth-tokens", path.to_str().unwrap()]);
    assert_eq!(grpc_code_with_token(&server, "old-token").await, Code::Ok);
    assert_eq!(
        grpc_code_with_token(&server, "new-token").await,
        Code::Unauthenticated
    );

    // A token added and one revoked, without a restart.
    replace_text(&path, &tokens_file_text("new", "new-token"));
    server.signal("HUP");
    let line = server.wait_for(|line| line["message"] == "auth tokens reloaded");
    assert_eq!(line["tokens"], 1, "{line}");
    assert_eq!(
        grpc_code_with_token(&server, "old-token").await,
        Code::Unauthenticated
    );
    assert_eq!(rest_status_with_token(&server, "old-token").await, 401);
    assert_eq!(grpc_code_with_token(&server, "new-token").await, Code::Ok);
    assert_eq!(rest_status_with_token(&server, "new-token").await, 200);

    // A broken file is logged with the start-up error and changes nothing.
    replace_text(&path, r#"{"tokens": [{"subject": "no digest"}]}"#);
    server.signal("HUP");
    let line = server.wait_for(|line| {
        line["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("auth tokens reload failed"))
    });
    let message = line["message"].as_str().unwrap();
    assert!(message.contains(path.to_str().unwrap()), "{line}");
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(grpc_code_with_token(&server, "new-token").await, Code::Ok);
    assert_eq!(
        grpc_code_with_token(&server, "old-token").await,
        Code::Unauthenticated
    );
    assert!(
        server.terminate().success(),
        "SIGHUP did not end the process"
    );
}
