//! Catalog files through the real binary: a bad one stops `serve` and fails
//! `check-catalog` with a message naming the file, the entry and the problem.

use crate::common;

use std::process::{Command, Output};
use std::time::Duration;

use common::write_temp;

const BIN: &str = env!("CARGO_BIN_EXE_image-service");

fn run(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    // A bad catalog must stop the start; a server that keeps running is a failure.
    for _ in 0..200 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("{args:?} did not exit within 10 s");
}

fn serve_fails_with(catalog: &str, expected: &[&str]) {
    let file = write_temp(catalog);
    let path = file.path().to_str().unwrap();
    for args in [
        vec![
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--catalog",
            path,
        ],
        vec!["check-catalog", path],
    ] {
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(stderr.contains(path), "names the file: {stderr}");
        for part in expected {
            assert!(stderr.contains(part), "expected {part:?} in: {stderr}");
        }
    }
}

#[test]
fn not_json() {
    serve_fails_with("{\"computeImages\": [", &["invalid JSON", "line 1"]);
}

#[test]
fn unknown_top_level_key() {
    serve_fails_with(r#"{"images": []}"#, &["unknown field `images`"]);
}

#[test]
fn unknown_field_in_an_entry() {
    serve_fails_with(
        r#"{"computeImages": [{"id": "fd8a", "name": "a", "colour": "blue"}]}"#,
        &[r#"computeImages[0] (id "fd8a")"#, "colour"],
    );
}

#[test]
fn wrong_type() {
    serve_fails_with(
        r#"{"containerRegistryImages": [{"id": "crp1"}, {"id": "crp2", "compressedSize": "many"}]}"#,
        &[r#"containerRegistryImages[1] (id "crp2"): compressedSize: "#],
    );
    serve_fails_with(
        r#"{"computeImages": [{"id": "fd8a", "name": "a", "status": "SHINY"}]}"#,
        &[r#"computeImages[0] (id "fd8a")"#, "SHINY"],
    );
}

#[test]
fn a_type_error_names_the_field() {
    serve_fails_with(
        r#"{"computeImages": [{"id": "fd8a", "name": "a", "storageSize": {"a": 1}}]}"#,
        &[r#"computeImages[0] (id "fd8a"): storageSize: invalid type: map"#],
    );
    serve_fails_with(
        r#"{"computeImages": [{"id": "fd8a", "name": "a", "os": {"type": 1.5}}]}"#,
        &[r#"computeImages[0] (id "fd8a"): os.type: invalid type: floating point"#],
    );
    serve_fails_with(
        r#"{"containerRegistryImages": [{"id": "crp1", "layers": [{"size": "1"}, {"size": []}]}]}"#,
        &[r#"containerRegistryImages[0] (id "crp1"): layers[1].size: invalid type: sequence"#],
    );
}

#[test]
fn duplicate_id() {
    serve_fails_with(
        r#"{"computeImages": [{"id": "fd8a", "name": "a"}, {"id": "fd8b", "name": "b"}, {"id": "fd8a", "name": "c"}]}"#,
        &[
            r#"computeImages[2] (id "fd8a")"#,
            "duplicate id, first used by computeImages[0]",
        ],
    );
}

#[test]
fn empty_or_missing_id() {
    serve_fails_with(
        r#"{"computeImages": [{"name": "a"}]}"#,
        &["computeImages[0]", "id is empty"],
    );
    serve_fails_with(
        r#"{"containerRegistryImages": [{"id": ""}]}"#,
        &["containerRegistryImages[0]", "id is empty"],
    );
}

#[test]
fn id_over_fifty_characters() {
    let id = "x".repeat(51);
    serve_fails_with(
        &format!(r#"{{"computeImages": [{{"id": "{id}", "name": "a"}}]}}"#),
        &[
            "computeImages[0]",
            "id is 51 characters long, at most 50 allowed",
        ],
    );
}

#[test]
fn compute_resource_limits() {
    serve_fails_with(
        r#"{"computeImages": [{"id": "fd8a", "name": ""}]}"#,
        &["name must be 1-63 characters long, got 0"],
    );
    let description = "d".repeat(257);
    serve_fails_with(
        &format!(
            r#"{{"computeImages": [{{"id": "fd8a", "name": "a", "description": "{description}"}}]}}"#
        ),
        &["description must be at most 256 characters long, got 257"],
    );
}

#[test]
fn missing_file() {
    let output = run(&["check-catalog", "/nonexistent/catalog.json"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/catalog.json"));
    assert!(stderr.contains("cannot read the file"));
}

#[test]
fn check_catalog_prints_what_a_valid_catalog_holds() {
    let file = write_temp(
        r#"{
            "computeImages": [
                {"id": "fd8a", "folder_id": "f1", "name": "a", "family": "ubuntu", "storage_size": 10, "status": 2},
                {"id": "fd8b", "folderId": "f1", "name": "b", "family": "ubuntu", "storageSize": "10", "status": "READY"}
            ],
            "container_registry_images": [{"id": "crp1", "name": "crpreg/app"}],
            "containerRegistries": [{"id": "crpreg", "folderId": "f1"}, {"id": "crpempty", "folderId": "f2"}]
        }"#,
    );
    let output = run(&["check-catalog", file.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "valid, 2 compute images, 1 container registry images, 2 container registries"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("ubuntu: 2 images"), "{stdout}");
    assert!(stdout.contains("crpreg/app: 1 images"), "{stdout}");
    assert!(
        stdout.contains("container registry crpreg in folder f1: 1 images"),
        "{stdout}"
    );
    assert!(
        stdout.contains("container registry crpempty in folder f2: 0 images"),
        "{stdout}"
    );
}

#[test]
fn help_explains_every_flag() {
    let output = run(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--grpc-listen",
        "--http-listen",
        "--catalog",
        "--log-format",
        "--access-log",
        "--drain-timeout",
    ] {
        assert!(help.contains(flag), "{flag} in help: {help}");
    }
    for env in [
        "IMAGE_SERVICE_GRPC_LISTEN",
        "IMAGE_SERVICE_HTTP_LISTEN",
        "IMAGE_SERVICE_DRAIN_TIMEOUT",
        "IMAGE_SERVICE_CATALOG",
        "IMAGE_SERVICE_LOG_FORMAT",
        "IMAGE_SERVICE_ACCESS_LOG",
    ] {
        assert!(help.contains(env), "{env} in help");
    }
}

#[test]
fn container_registries_are_checked_like_images() {
    serve_fails_with(
        r#"{"containerRegistries": [{"id": "crp1", "folderId": "f"}, {"id": "crp1", "folderId": "g"}]}"#,
        &[
            r#"containerRegistries[1] (id "crp1")"#,
            "duplicate id, first used by containerRegistries[0]",
        ],
    );
    serve_fails_with(
        r#"{"container_registries": [{"id": "crp1"}]}"#,
        &[r#"containerRegistries[0] (id "crp1")"#, "folderId is empty"],
    );
    serve_fails_with(
        r#"{"containerRegistries": [{"id": "crp1", "folderId": "f", "colour": "blue"}]}"#,
        &[r#"containerRegistries[0] (id "crp1")"#, "colour"],
    );
}

#[test]
fn ids_must_be_printable_ascii() {
    serve_fails_with(
        r#"{"computeImages": [{"id": "fd8 with space", "name": "a"}]}"#,
        &[
            r#"computeImages[0] (id "fd8 with space")"#,
            "printable ASCII",
        ],
    );
    serve_fails_with(
        r#"{"containerRegistryImages": [{"id": "crpé"}]}"#,
        &["containerRegistryImages[0]", "printable ASCII"],
    );
}
