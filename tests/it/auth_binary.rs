//! `--auth-tokens` with the real binary: `hash-token`, bad tokens files
//! refusing the start, and JSON access logs that name the caller and never
//! hold a token.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use image_service::proto::compute::GetImageRequest;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use tempfile::NamedTempFile;

const BIN: &str = env!("CARGO_BIN_EXE_image-service");
const TOKEN: &str = "s3cret-token-value.1";
const TEAM_FOLDER: &str = "b1gdemo7f0lder2qk8vh";

fn hash_token(input: &[u8]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn digest_of(token: &str) -> String {
    let out = hash_token(format!("{token}\n").as_bytes());
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn tokens_file(text: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn hash_token_prints_the_sha256_of_the_line_on_stdin() {
    // sha256("secret"), with or without the line end.
    let expected = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    for input in [&b"secret"[..], b"secret\n", b"secret\r\n"] {
        let out = hash_token(input);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    }
    for bad in [&b""[..], b"\n", b"two words\n"] {
        let out = hash_token(bad);
        assert!(!out.status.success(), "{bad:?} was hashed");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("one line of visible ASCII"),
            "{out:?}"
        );
    }
}

#[test]
fn a_bad_tokens_file_refuses_the_start_naming_the_entry() {
    let digest = digest_of(TOKEN);
    let entry = |subject: &str, sha: &str, folders: &str| {
        format!(r#"{{"subject": "{subject}", "sha256": "{sha}", "folders": {folders}}}"#)
    };
    let ok = entry("ci", &digest, r#"["f1"]"#);
    let cases = [
        (
            format!(
                r#"{{"tokens": [{ok}, {}]}}"#,
                entry("bot", &digest.to_uppercase(), r#"["f2"]"#)
            ),
            r#"tokens[1] ("bot"): sha256 duplicates the one of tokens[0]"#.to_owned(),
        ),
        (
            format!(
                r#"{{"tokens": [{ok}, {}]}}"#,
                entry("bot", "xyz", r#"["f2"]"#)
            ),
            r#"tokens[1] ("bot"): sha256 must be 64 hex digits"#.to_owned(),
        ),
        (
            format!(r#"{{"tokens": [{}]}}"#, entry("bot", &digest, "[]")),
            r#"tokens[0] ("bot"): folders is empty"#.to_owned(),
        ),
        (
            r#"{"tokens": []}"#.to_owned(),
            r#""tokens" is empty"#.to_owned(),
        ),
        ("not json".to_owned(), "not a valid tokens file".to_owned()),
    ];
    for (text, problem) in cases {
        let file = tokens_file(&text);
        let out = Command::new(BIN)
            .args([
                "serve",
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .env("IMAGE_SERVICE_AUTH_TOKENS", file.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {text}");
        let expected = format!("auth tokens file {}: {problem}", file.path().display());
        assert!(stderr.contains(&expected), "{stderr}\nlacks {expected}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--auth-tokens", "/nonexistent/tokens.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("auth tokens file /nonexistent/tokens.json: cannot read"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_access_log_names_the_subject_and_never_the_token() {
    let file = tokens_file(&format!(
        r#"{{"tokens": [{{"subject": "team-ci", "sha256": "{}", "folders": ["{TEAM_FOLDER}"]}}]}}"#,
        digest_of(TOKEN)
    ));
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--access-log",
            "--shutdown-delay",
            "0s",
        ])
        .arg("--auth-tokens")
        .arg(file.path())
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let (grpc, http) = loop {
        let line = lines.recv_timeout(Duration::from_secs(10)).expect("starts");
        seen.push(line.clone());
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if value["message"] == "serving gRPC and REST" {
            break (
                value["grpc"].as_str().unwrap().to_owned(),
                value["http"].as_str().unwrap().to_owned(),
            );
        }
    };

    let mut client = ImageServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    for (image, token, code) in [
        ("fd8o2pjpr9dfpl308ukq", TOKEN, tonic::Code::Ok),
        ("fd8e0i00mv2ba2rsl5re", TOKEN, tonic::Code::PermissionDenied),
        (
            "fd8o2pjpr9dfpl308ukq",
            "unknown-token-value",
            tonic::Code::Unauthenticated,
        ),
    ] {
        let mut request = tonic::Request::new(GetImageRequest {
            image_id: image.into(),
        });
        let header = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", header);
        let got = client.get(request).await.map(|_| ()).map_err(|s| s.code());
        assert_eq!(got.err().unwrap_or(tonic::Code::Ok), code, "{image}");
    }
    let rest = reqwest::Client::new()
        .get(format!(
            "http://{http}/compute/v1/images/fd8o2pjpr9dfpl308ukq"
        ))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);

    let mut finished = Vec::new();
    while finished.len() < 4 {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("4 access log lines, got {finished:?}"));
        seen.push(line.clone());
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if value["message"] == "call finished" {
            finished.push(value);
        }
    }
    let subjects: Vec<_> = finished
        .iter()
        .map(|l| l["span"]["subject"].clone())
        .collect();
    assert_eq!(
        subjects,
        [
            serde_json::json!("team-ci"),
            serde_json::json!("team-ci"),
            serde_json::Value::Null,
            serde_json::json!("team-ci")
        ],
        "{finished:?}"
    );
    let codes: Vec<_> = finished.iter().map(|l| l["code"].clone()).collect();
    assert_eq!(codes, [0, 7, 16, 0].map(serde_json::Value::from));

    stop(&mut child);
    seen.extend(lines.try_iter());
    for line in &seen {
        assert!(
            !line.contains(TOKEN) && !line.contains("unknown-token-value"),
            "a token was logged: {line}"
        );
    }
}

/// Stops the server (SIGKILL is enough: nothing to drain in this test).
fn stop(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}
