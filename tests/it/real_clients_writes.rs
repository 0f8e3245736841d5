//! The writes through real clients: grpcurl (reflection, metadata keys) and
//! curl on the REST face (the official paths, JSON names, the
//! `Idempotency-Key` header, HTTP statuses).

use std::time::{Duration, Instant};

use crate::common::clients::{all_output, curl, grpcurl, grpcurl_run, run, success_text};
use crate::common::{TestApp, test_settings, write_temp};
use image_service::transport::auth::TokenDigest;
use serde_json::{Value, json};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

#[tokio::test]
async fn grpcurl_creates_an_image_and_waits_on_its_operation() {
    let Some(tool) = grpcurl() else {
        return;
    };
    let app = TestApp::demo().await;
    let create = r#"{"folder_id": "b1ggrpcurl", "name": "by-grpcurl", "disk_id": "fhmdisk"}"#;
    let call = |flags: Vec<&'static str>, body: String, method: &'static str| {
        let tool = tool.clone();
        let app = &app;
        async move {
            let mut args: Vec<&str> = flags;
            args.extend(["-d", body.as_str()]);
            let out = grpcurl_run(&tool, app, &args, &[method]).await;
            json_of(&success_text(&out, method))
        }
    };
    let started = call(
        vec!["-H", "idempotency-key: grpcurl-key-1"],
        create.to_owned(),
        "yandex.cloud.compute.v1.ImageService/Create",
    )
    .await;
    let operation_id = started["id"].as_str().expect("an operation id").to_owned();
    assert_eq!(
        started["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.compute.v1.CreateImageMetadata"
    );
    let image_id = started["metadata"]["imageId"]
        .as_str()
        .expect("the image id")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let now = call(
            vec![],
            json!({ "operation_id": operation_id }).to_string(),
            "yandex.cloud.operation.OperationService/Get",
        )
        .await;
        if now["done"] == true {
            break now;
        }
        assert!(Instant::now() < deadline, "never done: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        done["response"]["@type"],
        "type.googleapis.com/yandex.cloud.compute.v1.Image"
    );
    assert_eq!(done["response"]["status"], "READY");
    assert_eq!(done["response"]["id"], image_id.as_str());
    // The same key again: the same operation, nothing new.
    let again = call(
        vec!["-H", "idempotency-key: grpcurl-key-1"],
        create.to_owned(),
        "yandex.cloud.compute.v1.ImageService/Create",
    )
    .await;
    assert_eq!(again["id"], operation_id.as_str());
    assert_eq!(again["done"], true);
    // A bad field: INVALID_ARGUMENT naming it.
    let out = grpcurl_run(
        &tool,
        &app,
        &[
            "-d",
            r#"{"folder_id": "b1ggrpcurl", "name": "Bad Name", "disk_id": "d"}"#,
        ],
        &["yandex.cloud.compute.v1.ImageService/Create"],
    )
    .await;
    let text = all_output(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("InvalidArgument") && text.contains("name"),
        "{text}"
    );
    app.stop().await;
}

/// `curl -s -w` with the status code on the last line.
async fn curl_call(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> (u16, Value) {
    let tool = curl().expect("curl");
    let mut args: Vec<std::ffi::OsString> = vec![
        "-s".into(),
        "-X".into(),
        method.into(),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    for header in headers {
        args.extend(["-H".into(), (*header).into()]);
    }
    if let Some(body) = body {
        args.extend([
            "-H".into(),
            "content-type: application/json".into(),
            "-d".into(),
            body.into(),
        ]);
    }
    args.push(app.http_url(path).into());
    let out = run(tool, args).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no status: {text}"));
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        json_of(body)
    };
    (code, body)
}

#[tokio::test]
async fn curl_writes_on_the_official_rest_paths() {
    if curl().is_none() {
        return;
    }
    let app = TestApp::demo().await;
    let create = r#"{"folderId": "b1gcurl", "name": "by-curl", "diskId": "fhmdisk", "labels": {"env": "ci"}}"#;
    let (code, started) = curl_call(
        &app,
        "POST",
        "/compute/v1/images",
        &["Idempotency-Key: curl-1"],
        Some(create),
    )
    .await;
    assert_eq!(code, 200, "{started}");
    let operation_id = started["id"].as_str().expect("an operation id").to_owned();
    let image_id = started["metadata"]["imageId"]
        .as_str()
        .expect("an image id")
        .to_owned();
    let (_, repeated) = curl_call(
        &app,
        "POST",
        "/compute/v1/images",
        &["Idempotency-Key: curl-1"],
        Some(create),
    )
    .await;
    assert_eq!(
        repeated["id"],
        operation_id.as_str(),
        "one operation per key"
    );
    let (code, done) = curl_call(
        &app,
        "GET",
        &format!("/operations/{operation_id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(done["response"]["status"], "READY");
    assert_eq!(done["response"]["labels"]["env"], "ci");

    let (code, update) = curl_call(
        &app,
        "PATCH",
        &format!("/compute/v1/images/{image_id}"),
        &[],
        Some(r#"{"updateMask": "labels,minDiskSize", "labels": {"a": "b"}, "minDiskSize": "8589934592"}"#),
    )
    .await;
    assert_eq!(code, 200, "{update}");
    assert_eq!(
        update["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.compute.v1.UpdateImageMetadata"
    );
    let (_, updated) = curl_call(
        &app,
        "GET",
        &format!("/operations/{}", update["id"].as_str().unwrap_or_default()),
        &[],
        None,
    )
    .await;
    assert_eq!(updated["response"]["labels"], json!({"a": "b"}));
    assert_eq!(updated["response"]["minDiskSize"], "8589934592");

    let (code, delete) = curl_call(
        &app,
        "DELETE",
        &format!("/compute/v1/images/{image_id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200, "{delete}");
    let delete_id = delete["id"].as_str().expect("an operation").to_owned();
    // Cancel by POST answers the operation as it stands (a Delete is not stopped).
    let (code, cancel) = curl_call(
        &app,
        "POST",
        &format!("/operations/{delete_id}:cancel"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200, "{cancel}");
    assert_eq!(cancel["id"], delete_id.as_str());
    let (_, deleted) = curl_call(&app, "GET", &format!("/operations/{delete_id}"), &[], None).await;
    assert_eq!(
        deleted["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    let (code, _) = curl_call(
        &app,
        "GET",
        &format!("/compute/v1/images/{image_id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 404);

    let (code, listed) = curl_call(
        &app,
        "GET",
        &format!("/compute/v1/images/{image_id}/operations"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200, "{listed}");
    let ids: Vec<&str> = listed["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    let update_id = update["id"].as_str().unwrap_or_default();
    assert_eq!(
        ids,
        [delete_id.as_str(), update_id, operation_id.as_str()],
        "newest first"
    );

    let (code, bad) = curl_call(
        &app,
        "POST",
        "/compute/v1/images",
        &[],
        Some(r#"{"folderId": "b1gcurl", "name": "Bad Name", "diskId": "d"}"#),
    )
    .await;
    assert_eq!(code, 400, "{bad}");
    assert!(
        bad["message"].as_str().unwrap_or_default().contains("name"),
        "{bad}"
    );
    let (code, absent) = curl_call(
        &app,
        "DELETE",
        "/compute/v1/images/fd8nosuchimage",
        &[],
        None,
    )
    .await;
    assert_eq!(code, 404, "{absent}");
    let (code, taken) = curl_call(
        &app,
        "POST",
        "/compute/v1/images",
        &[],
        Some(r#"{"folderId": "b1gcurl", "name": "taken", "diskId": "d"}"#),
    )
    .await;
    assert_eq!(code, 200, "{taken}");
    let (code, twice) = curl_call(
        &app,
        "POST",
        "/compute/v1/images",
        &[],
        Some(r#"{"folderId": "b1gcurl", "name": "taken", "diskId": "d"}"#),
    )
    .await;
    assert_eq!(code, 409, "ALREADY_EXISTS is 409: {twice}");
    app.stop().await;
}

/// Terraform's iam_binding sequence with grpcurl, under the tokens file's
/// roles: the folder's admin lists (page_size 1000), sets and updates the
/// bindings, waiting on each operation; the binding lets a caller without
/// roles read the image, and curl without a token reads it once it is public.
#[tokio::test]
async fn grpcurl_runs_the_iam_binding_sequence_under_roles() {
    let Some(tool) = grpcurl() else {
        return;
    };
    let digest = |token: &str| TokenDigest::of(token.as_bytes()).to_hex();
    let tokens = write_temp(&format!(
        r#"{{"tokens": [
            {{"subject": "ajeowner", "sha256": "{}", "roles": {{"b1ggrpcurliam": ["admin"]}}}},
            {{"subject": "ajefriend", "sha256": "{}"}}
        ]}}"#,
        digest("owner-token"),
        digest("friend-token"),
    ));
    let mut settings = test_settings(None);
    settings.auth_tokens = Some(tokens.path().to_owned());
    let app = TestApp::start(settings, None, None).await;
    let call = |token: &'static str, body: String, method: &'static str| {
        let tool = tool.clone();
        let app = &app;
        async move {
            let header = format!("authorization: Bearer {token}");
            let out = grpcurl_run(&tool, app, &["-H", &header, "-d", &body], &[method]).await;
            (out.status.success(), all_output(&out))
        }
    };
    let wait = |operation: Value| {
        let call = &call;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut now = operation;
            while now["done"] != true {
                assert!(Instant::now() < deadline, "never done: {now}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                let (ok, text) = call(
                    "owner-token",
                    json!({ "operation_id": now["id"] }).to_string(),
                    "yandex.cloud.operation.OperationService/Get",
                )
                .await;
                assert!(ok, "{text}");
                now = json_of(&text);
            }
            now
        }
    };
    let (ok, text) = call(
        "owner-token",
        r#"{"folder_id": "b1ggrpcurliam", "name": "shared", "disk_id": "fhmdisk"}"#.into(),
        "yandex.cloud.compute.v1.ImageService/Create",
    )
    .await;
    assert!(ok, "{text}");
    let created = wait(json_of(&text)).await;
    let image = created["response"]["id"]
        .as_str()
        .expect("an image")
        .to_owned();
    let get = json!({ "image_id": image }).to_string();
    let (ok, text) = call(
        "friend-token",
        get.clone(),
        "yandex.cloud.compute.v1.ImageService/Get",
    )
    .await;
    assert!(!ok && text.contains("PermissionDenied"), "{text}");
    let list = json!({ "resource_id": image, "page_size": 1000 }).to_string();
    let (ok, text) = call(
        "owner-token",
        list.clone(),
        "yandex.cloud.compute.v1.ImageService/ListAccessBindings",
    )
    .await;
    assert!(ok && json_of(&text) == json!({}), "no bindings yet: {text}");
    let (ok, text) = call(
        "owner-token",
        json!({ "resource_id": image, "access_bindings": [
            {"role_id": "compute.images.user", "subject": {"id": "ajefriend", "type": "userAccount"}}
        ]})
        .to_string(),
        "yandex.cloud.compute.v1.ImageService/SetAccessBindings",
    )
    .await;
    assert!(ok, "{text}");
    let set = wait(json_of(&text)).await;
    assert_eq!(
        set["response"]["@type"],
        "type.googleapis.com/yandex.cloud.access.AccessBindingsOperationResult"
    );
    let (ok, text) = call(
        "owner-token",
        json!({ "resource_id": image, "access_binding_deltas": [
            {"action": "ADD", "access_binding": {"role_id": "compute.images.user", "subject": {"id": "ajefriend", "type": "userAccount"}}},
            {"action": "ADD", "access_binding": {"role_id": "compute.images.user", "subject": {"id": "allUsers", "type": "system"}}}
        ]})
        .to_string(),
        "yandex.cloud.compute.v1.ImageService/UpdateAccessBindings",
    )
    .await;
    assert!(ok, "{text}");
    let updated = wait(json_of(&text)).await;
    let effective = &updated["response"]["effectiveDeltas"];
    assert_eq!(
        effective.as_array().map(Vec::len),
        Some(1),
        "only allUsers was new: {updated}"
    );
    let (ok, text) = call(
        "owner-token",
        list,
        "yandex.cloud.compute.v1.ImageService/ListAccessBindings",
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(
        json_of(&text)["accessBindings"].as_array().map(Vec::len),
        Some(2)
    );
    let (ok, text) = call(
        "friend-token",
        get,
        "yandex.cloud.compute.v1.ImageService/Get",
    )
    .await;
    assert!(ok && json_of(&text)["id"] == image.as_str(), "{text}");
    // Public now: curl without any token reads it on the REST face.
    let (code, body) = curl_call(
        &app,
        "GET",
        &format!("/compute/v1/images/{image}"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (code, body["name"].as_str()),
        (200, Some("shared")),
        "{body}"
    );
    app.stop().await;
}
