//! TLS on both listeners and API endpoint discovery, against real clients:
//! the official Python SDK with no endpoint override, grpcurl, curl (HTTP/1.1
//! and h2), a rustls client, and the binary reloading its certificates on
//! SIGHUP. Certificates come from a test CA made here with rcgen.

use crate::common;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::clients::{all_output, curl, grpcurl, python_with_sdk, run};
use common::process::Server;
use common::{TestApp, demo_catalog_json, test_settings, write_temp};
use image_service::app::Settings;
use image_service::app::{Application, StartupError};
use image_service::proto::endpoint::api_endpoint_service_client::ApiEndpointServiceClient;
use image_service::proto::endpoint::{GetApiEndpointRequest, ListApiEndpointsRequest};
use image_service::transport::auth::TokenDigest;
use image_service::transport::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const SDK_TLS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_tls.py");

type Ca = CertifiedIssuer<'static, KeyPair>;

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate signed by `ca` for `names` (DNS names or IP addresses), and its key, as PEM.
fn issue(ca: &Ca, common_name: &str, names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

/// A server CA with a certificate for 127.0.0.1 and localhost, and a client
/// CA with one client certificate, all written to a temp dir.
struct Pki {
    dir: TempDir,
    server_ca: Ca,
    ca_pem: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server_ca = new_ca("image-service test server CA");
        let client_ca = new_ca("image-service test client CA");
        let (cert, key) = issue(&server_ca, "server one", &["127.0.0.1", "localhost"]);
        let (client_cert, client_key) = issue(&client_ca, "client", &["client.test"]);
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        Self {
            ca_pem: write("ca.pem", &server_ca.pem()),
            cert: write("server.pem", &cert),
            key: write("server.key", &key),
            client_ca: write("client-ca.pem", &client_ca.pem()),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            server_ca,
            dir,
        }
    }

    fn tls_files(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: mutual.then(|| self.client_ca.clone()),
        }
    }

    fn settings(&self, mutual: bool) -> Settings {
        Settings {
            tls: Some(self.tls_files(mutual)),
            ..test_settings(None)
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

async fn tls_app(pki: &Pki, mutual: bool) -> TestApp {
    TestApp::start(pki.settings(mutual), None, None).await
}

fn first_compute_id() -> String {
    demo_catalog_json()["computeImages"][0]["id"]
        .as_str()
        .expect("demo compute image id")
        .to_owned()
}

/// A rustls client trusting `ca_pem` only; the connection after its handshake.
async fn tls_connect(addr: std::net::SocketAddr, ca_pem: &Path) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_pem).expect("read CA");
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("handshake within 5 s")
    .expect("TLS handshake")
}

fn served_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .expect("the server presents a certificate")
        .clone()
        .into_owned()
}

/// One HTTP/1.1 request on an open connection, keeping it open; the status line.
async fn http1_get(stream: &mut TlsStream<TcpStream>, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answer within 5 s")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn official_sdk_with_tls_discovers_us_and_gets_images_of_both_apis() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let pki = Pki::new();
    let app = tls_app(&pki, false).await;
    let catalog = write_temp(image_service::store::catalog::DEMO_CATALOG_JSON);
    let out = run(
        python,
        vec![
            SDK_TLS_SCRIPT.into(),
            app.grpc_addr.to_string().into(),
            pki.ca_pem.clone().into(),
            catalog.path().into(),
        ],
    )
    .await;
    let text = all_output(&out);
    assert!(out.status.success(), "sdk_tls.py failed:\n{text}");
    assert!(text.contains("sdk tls: 5 passed, 0 failed"), "{text}");
    app.stop().await;
}

/// Runs `sdk_tls.py` against `app` with `token`, expecting `code` from each Get.
async fn run_sdk_tls(app: &TestApp, pki: &Pki, token: &str, code: &str) -> String {
    let Some(python) = python_with_sdk() else {
        return String::new();
    };
    let catalog = write_temp(image_service::store::catalog::DEMO_CATALOG_JSON);
    let out = run(
        python,
        vec![
            SDK_TLS_SCRIPT.into(),
            app.grpc_addr.to_string().into(),
            pki.ca_pem.clone().into(),
            catalog.path().into(),
            token.into(),
            code.into(),
        ],
    )
    .await;
    let text = all_output(&out);
    assert!(
        out.status.success(),
        "sdk_tls.py ({token}, {code}) failed:\n{text}"
    );
    text
}

/// The issue's whole story: TLS, the SDK's IAM token, discovery, and
/// `--auth-tokens` deciding who gets what.
#[tokio::test(flavor = "multi_thread")]
async fn official_sdk_with_tls_and_an_iam_token_is_authorized_by_the_tokens_file() {
    if python_with_sdk().is_none() {
        return;
    }
    let pki = Pki::new();
    let digest = |token: &str| TokenDigest::of(token.as_bytes()).to_hex();
    let tokens = write_temp(&format!(
        r#"{{"tokens": [
            {{"subject": "sdk", "sha256": "{}", "folders": ["*"]}},
            {{"subject": "elsewhere", "sha256": "{}", "folders": ["some-other-folder"]}}
        ]}}"#,
        digest("sdk-iam-token"),
        digest("elsewhere-iam-token"),
    ));
    let mut settings = pki.settings(false);
    settings.auth_tokens = Some(tokens.path().to_owned());
    let app = TestApp::start(settings, None, None).await;

    for (token, code) in [
        ("sdk-iam-token", "OK"),
        ("elsewhere-iam-token", "PERMISSION_DENIED"),
        ("never-issued", "UNAUTHENTICATED"),
    ] {
        let text = run_sdk_tls(&app, &pki, token, code).await;
        // Two Gets as expected, and discovery (open to all) pointing at us.
        assert!(
            text.contains("sdk tls: 5 passed, 0 failed"),
            "{token}: {text}"
        );
    }
    app.stop().await;
}

fn grpcurl_tls_args(pki: &Pki, addr: &str, extra: &[&str], rest: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "-max-time".into(),
        "10".into(),
        "-cacert".into(),
        pki.ca_pem.clone().into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args.push(addr.into());
    args.extend(rest.iter().map(OsString::from));
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_with_the_ca_gets_an_image_and_the_endpoints_over_tls() {
    let Some(grpcurl) = grpcurl() else {
        return;
    };
    let pki = Pki::new();
    let app = tls_app(&pki, false).await;
    let addr = app.grpc_addr.to_string();
    let id = first_compute_id();
    let body = format!(r#"{{"imageId":"{id}"}}"#);
    let out = run(
        grpcurl.clone(),
        grpcurl_tls_args(
            &pki,
            &addr,
            &["-d", &body],
            &["yandex.cloud.compute.v1.ImageService/Get"],
        ),
    )
    .await;
    assert!(out.status.success(), "{}", all_output(&out));
    let image: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(image["id"], id.as_str());

    let out = run(
        grpcurl.clone(),
        grpcurl_tls_args(
            &pki,
            &addr,
            &[],
            &["yandex.cloud.endpoint.ApiEndpointService/List"],
        ),
    )
    .await;
    assert!(out.status.success(), "{}", all_output(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let endpoints = listed["endpoints"].as_array().expect("endpoints");
    for id in ["compute", "container-registry", "iam"] {
        let entry = endpoints.iter().find(|e| e["id"] == id);
        assert_eq!(
            entry.map(|e| e["address"].clone()),
            Some(addr.clone().into()),
            "{listed}"
        );
    }

    // A client that doesn't trust our CA gets nowhere.
    let out = run(
        grpcurl,
        vec!["-max-time".into(), "10".into(), addr.into(), "list".into()],
    )
    .await;
    assert!(!out.status.success(), "{}", all_output(&out));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_with_the_ca_gets_an_image_over_rest_with_http1_and_h2() {
    let Some(curl) = curl() else {
        return;
    };
    let pki = Pki::new();
    let app = tls_app(&pki, false).await;
    let id = first_compute_id();
    let url = format!("https://{}/compute/v1/images/{id}", app.http_addr);
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = run(
            curl.clone(),
            vec![
                "-sS".into(),
                "--max-time".into(),
                "10".into(),
                flag.into(),
                "--cacert".into(),
                pki.ca_pem.clone().into(),
                "-w".into(),
                "\n%{http_code} %{http_version}".into(),
                url.clone().into(),
            ],
        )
        .await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{}", all_output(&out));
        let (body, status) = text.rsplit_once('\n').expect("status line");
        assert_eq!(status, format!("200 {version}"), "{flag}: {text}");
        let image: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(image["id"], id.as_str());
    }

    // Plain HTTP on the TLS port is refused.
    let out = run(
        curl,
        vec![
            "-sS".into(),
            "--max-time".into(),
            "10".into(),
            format!("http://{}/healthz", app.http_addr).into(),
        ],
    )
    .await;
    assert!(!out.status.success(), "{}", all_output(&out));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_refuses_clients_without_a_certificate_and_accepts_ours() {
    let (Some(curl), Some(grpcurl)) = (curl(), grpcurl()) else {
        return;
    };
    let pki = Pki::new();
    let app = tls_app(&pki, true).await;
    let grpc_addr = app.grpc_addr.to_string();
    let url = format!("https://{}/healthz", app.http_addr);
    let client = [
        "-cert",
        pki.client_cert.to_str().expect("utf-8 path"),
        "-key",
        pki.client_key.to_str().expect("utf-8 path"),
    ];

    let without = run(
        grpcurl.clone(),
        grpcurl_tls_args(&pki, &grpc_addr, &[], &["list"]),
    )
    .await;
    assert!(!without.status.success(), "{}", all_output(&without));
    let with = run(
        grpcurl,
        grpcurl_tls_args(&pki, &grpc_addr, &client, &["list"]),
    )
    .await;
    assert!(with.status.success(), "{}", all_output(&with));
    assert!(
        String::from_utf8_lossy(&with.stdout).contains("yandex.cloud.compute.v1.ImageService"),
        "{}",
        all_output(&with)
    );

    let curl_args = |extra: &[&str]| {
        let mut args: Vec<OsString> = vec![
            "-sS".into(),
            "--max-time".into(),
            "10".into(),
            "--cacert".into(),
            pki.ca_pem.clone().into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        args.push(url.clone().into());
        args
    };
    let without = run(curl.clone(), curl_args(&[])).await;
    assert!(!without.status.success(), "{}", all_output(&without));
    let with = run(
        curl,
        curl_args(&[
            "--cert",
            pki.client_cert.to_str().expect("utf-8 path"),
            "--key",
            pki.client_key.to_str().expect("utf-8 path"),
        ]),
    )
    .await;
    assert!(with.status.success(), "{}", all_output(&with));
    assert!(
        String::from_utf8_lossy(&with.stdout).contains("SERVING"),
        "{}",
        all_output(&with)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_handshake_does_not_hold_up_other_clients() {
    let pki = Pki::new();
    let app = tls_app(&pki, false).await;
    // Connected, but never says a word.
    let _silent_grpc = TcpStream::connect(app.grpc_addr).await.expect("connect");
    let _silent_http = TcpStream::connect(app.http_addr).await.expect("connect");
    let mut stream = tls_connect(app.http_addr, &pki.ca_pem).await;
    assert_eq!(http1_get(&mut stream, "/healthz").await, "HTTP/1.1 200 OK");
    tls_connect(app.grpc_addr, &pki.ca_pem).await;
    app.stop().await;
}

async fn start_error(settings: &Settings) -> String {
    match Application::build(settings).await {
        Ok(_) => panic!("the server started with bad TLS settings"),
        Err(err @ StartupError::Tls(_)) => err.to_string(),
        Err(other) => panic!("expected a TLS error, got: {other}"),
    }
}

#[tokio::test]
async fn bad_tls_files_refuse_the_start_naming_the_file_and_the_problem() {
    let pki = Pki::new();

    let mut settings = pki.settings(false);
    tls_mut(&mut settings).cert = pki.path("missing.pem");
    let err = start_error(&settings).await;
    assert!(
        err.contains("missing.pem") && err.contains("cannot read"),
        "{err}"
    );

    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let mut settings = pki.settings(false);
    tls_mut(&mut settings).cert = garbage.clone();
    let err = start_error(&settings).await;
    assert!(
        err.contains("garbage.pem") && err.contains("no CERTIFICATE"),
        "{err}"
    );

    let mut settings = pki.settings(false);
    tls_mut(&mut settings).key = garbage;
    let err = start_error(&settings).await;
    assert!(
        err.contains("garbage.pem") && err.contains("no PRIVATE KEY"),
        "{err}"
    );

    // A key that is not the certificate's.
    let mut settings = pki.settings(false);
    tls_mut(&mut settings).key = pki.client_key.clone();
    let err = start_error(&settings).await;
    assert!(
        err.contains("server.pem") && err.contains("client.key"),
        "{err}"
    );

    let mut settings = pki.settings(false);
    tls_mut(&mut settings).client_ca = Some(pki.path("no-ca.pem"));
    let err = start_error(&settings).await;
    assert!(err.contains("no-ca.pem"), "{err}");
}

/// The TLS files of settings made with TLS on.
fn tls_mut(settings: &mut Settings) -> &mut TlsFiles {
    settings.tls.as_mut().expect("TLS settings")
}

#[tokio::test]
async fn endpoint_discovery_answers_the_advertised_address() {
    let settings = Settings {
        advertise_address: Some("images.example.com:443".to_owned()),
        ..test_settings(None)
    };
    let app = TestApp::start(settings, None, None).await;
    let mut client = ApiEndpointServiceClient::new(app.channel().await);

    let listed = client
        .list(ListApiEndpointsRequest::default())
        .await
        .expect("List")
        .into_inner();
    let mut ids: Vec<&str> = listed.endpoints.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "compute",
            "container-registry",
            "endpoint",
            "iam",
            "operation"
        ]
    );
    assert!(
        listed
            .endpoints
            .iter()
            .all(|e| e.address == "images.example.com:443")
    );
    assert!(listed.next_page_token.is_empty());

    let got = client
        .get(GetApiEndpointRequest {
            api_endpoint_id: "container-registry".to_owned(),
        })
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got.address, "images.example.com:443");
    let err = client
        .get(GetApiEndpointRequest {
            api_endpoint_id: "vpc".to_owned(),
        })
        .await
        .expect_err("unknown id");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = client
        .get(GetApiEndpointRequest::default())
        .await
        .expect_err("empty id");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // The same over REST, and health reports the service.
    let body: serde_json::Value = reqwest::get(app.http_url("/endpoints/compute"))
        .await
        .expect("REST get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"id": "compute", "address": "images.example.com:443"})
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "yandex.cloud.endpoint.ApiEndpointService".to_owned(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    app.stop().await;
}

#[tokio::test]
async fn endpoint_discovery_defaults_to_the_bound_grpc_address() {
    let app = TestApp::demo().await;
    let mut client = ApiEndpointServiceClient::new(app.channel().await);
    let got = client
        .get(GetApiEndpointRequest {
            api_endpoint_id: "compute".to_owned(),
        })
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got.address, app.grpc_addr.to_string());
    app.stop().await;
}

/// The binary with TLS and JSON logs, and its two bound addresses.
fn start_binary(pki: &Pki) -> (Server, SocketAddr, SocketAddr) {
    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
    let (cert, key) = (path(&pki.cert), path(&pki.key));
    let server = Server::start(&["--tls-cert", &cert, "--tls-key", &key]);
    let grpc = server.addr.parse().expect("logged gRPC address");
    let http = server.http_addr.parse().expect("logged HTTP address");
    (server, grpc, http)
}

/// The next log line whose message is `message`.
fn wait_for_message(server: &mut Server, message: &str) -> serde_json::Value {
    server.wait_for(|line| line["message"] == message)
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_serves_a_new_certificate_and_keeps_the_last_good_one_on_a_broken_file() {
    let pki = Pki::new();
    let (mut binary, grpc_addr, http_addr) = start_binary(&pki);

    let mut before = tls_connect(http_addr, &pki.ca_pem).await;
    let first = served_leaf(&before);
    assert_eq!(http1_get(&mut before, "/healthz").await, "HTTP/1.1 200 OK");

    let (cert, key) = issue(&pki.server_ca, "server two", &["127.0.0.1", "localhost"]);
    std::fs::write(&pki.cert, cert).expect("write cert");
    std::fs::write(&pki.key, key).expect("write key");
    binary.signal("HUP");
    wait_for_message(&mut binary, "TLS certificates reloaded");

    let second = served_leaf(&tls_connect(http_addr, &pki.ca_pem).await);
    assert_ne!(second, first, "new connections get the new certificate");
    assert_eq!(
        served_leaf(&tls_connect(grpc_addr, &pki.ca_pem).await),
        second,
        "the gRPC listener too"
    );
    // The connection opened before the reload still works.
    assert_eq!(http1_get(&mut before, "/healthz").await, "HTTP/1.1 200 OK");

    std::fs::write(&pki.cert, "broken\n").expect("write cert");
    binary.signal("HUP");
    let failed = wait_for_message(
        &mut binary,
        "TLS reload failed, still serving the previous certificates",
    );
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("server.pem")),
        "{failed}"
    );
    assert_eq!(
        served_leaf(&tls_connect(http_addr, &pki.ca_pem).await),
        second
    );
    let status = binary.terminate();
    assert!(status.success(), "{status}");
}

const SDK_WRITES_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_writes.py");

/// The official Python SDK creates, updates and deletes an image and waits on
/// each operation with its own waiter (which insists on TLS and discovery).
#[tokio::test(flavor = "multi_thread")]
async fn official_sdk_waits_on_its_writes_over_tls_with_discovery() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let pki = Pki::new();
    let app = tls_app(&pki, false).await;
    let out = run(
        python,
        vec![
            SDK_WRITES_SCRIPT.into(),
            app.grpc_addr.to_string().into(),
            pki.ca_pem.clone().into(),
            "b1gsdkwrites".into(),
        ],
    )
    .await;
    let text = all_output(&out);
    assert!(out.status.success(), "sdk_writes.py failed:\n{text}");
    let seen: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|err| panic!("not JSON ({err}):\n{text}"));
    let created = &seen["created"];
    assert_eq!(created["status"], "READY", "{seen}");
    assert_eq!(created["name"], "sdk-image");
    assert_eq!(created["labels"]["env"], "ci");
    assert_eq!(
        seen["created_meta"], created["id"],
        "metadata names the image"
    );
    assert_eq!(seen["read"], *created, "Get answers what the operation did");
    assert_eq!(seen["updated_labels"]["env"], "prod");
    assert_eq!(seen["updated_labels"]["owner"], "sdk");
    assert_eq!(seen["deleted_meta"], created["id"]);
    assert_eq!(seen["after_delete"], "NOT_FOUND");
    let failure = seen["failed_create"].as_str().unwrap_or_default();
    assert!(failure.contains("ftp://example/disk.img"), "{seen}");
    assert_eq!(
        seen["left"],
        serde_json::json!([]),
        "the failed Create left nothing"
    );
    app.stop().await;
}

const SDK_IAM_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_iam.py");

/// Terraform's iam_binding sequence through the official Python SDK (its
/// waiter needs TLS), with the tokens file's roles: only the folder's admin
/// manages bindings, and a binding is what lets a caller without roles read.
#[tokio::test(flavor = "multi_thread")]
async fn official_sdk_runs_the_iam_binding_sequence_under_roles() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let pki = Pki::new();
    let digest = |token: &str| TokenDigest::of(token.as_bytes()).to_hex();
    let tokens = write_temp(&format!(
        r#"{{"tokens": [
            {{"subject": "ajeowner", "subject_type": "serviceAccount", "sha256": "{}", "roles": {{"b1gsdkiam": ["admin"]}}}},
            {{"subject": "ajeeditor", "sha256": "{}", "roles": {{"b1gsdkiam": ["editor"]}}}},
            {{"subject": "ajefriend", "sha256": "{}"}}
        ]}}"#,
        digest("owner-iam-token"),
        digest("editor-iam-token"),
        digest("friend-iam-token"),
    ));
    let mut settings = pki.settings(false);
    settings.auth_tokens = Some(tokens.path().to_owned());
    let app = TestApp::start(settings, None, None).await;
    let out = run(
        python,
        vec![
            SDK_IAM_SCRIPT.into(),
            app.grpc_addr.to_string().into(),
            pki.ca_pem.clone().into(),
            "b1gsdkiam".into(),
            "owner-iam-token".into(),
            "editor-iam-token".into(),
            "friend-iam-token".into(),
        ],
    )
    .await;
    let text = all_output(&out);
    assert!(out.status.success(), "sdk_iam.py failed:\n{text}");
    let seen: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|err| panic!("not JSON ({err}):\n{text}"));
    assert_eq!(seen["friend_before"], "PERMISSION_DENIED", "{seen}");
    assert_eq!(seen["bindings_before"], serde_json::json!([]));
    assert_eq!(
        seen["editor_sets"], "PERMISSION_DENIED",
        "editors don't share"
    );
    assert_eq!(seen["set_effective"], 2);
    assert!(
        seen["set_meta"]
            .as_str()
            .is_some_and(|id| id.starts_with("fd8"))
    );
    assert_eq!(
        seen["update_effective"],
        serde_json::json!([
            {"action": "ADD", "accessBinding": {"roleId": "editor", "subject": {"id": "ajefriend", "type": "userAccount"}}},
            {"action": "REMOVE", "accessBinding": {"roleId": "viewer", "subject": {"id": "ajeteam", "type": "serviceAccount"}}}
        ]),
        "what already was is no effective delta"
    );
    assert_eq!(
        seen["bindings_after"],
        serde_json::json!([
            {"roleId": "compute.images.user", "subject": {"id": "ajefriend", "type": "userAccount"}},
            {"roleId": "editor", "subject": {"id": "ajefriend", "type": "userAccount"}}
        ])
    );
    assert_eq!(seen["friend_after"], "OK", "{seen}");
    assert_eq!(seen["friend_lists_bindings"], "OK");
    app.stop().await;
}
