//! Behind a real proxy: Debian's nginx in front of the real binary (grpc_pass
//! over HTTP/2 to the gRPC port, proxy_pass to the HTTP port), setting
//! `x-request-id` and a W3C `traceparent` as a mesh's edge proxy does. Called
//! through it with grpcurl and curl, the proxy's request id must come back in
//! our answers and, with its trace id and span id (as our span's parent), in
//! our JSON log lines.

use crate::common;

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{self, all_output};
use common::process::Server;

const IMAGE_ID: &str = "fd824k6uqk9cvi1ise4i";

/// The proxy's configuration: its trace id is nginx's `$request_id` (32 hex
/// digits, like a W3C trace id) and its own span id the first 16 of them.
fn nginx_config(dir: &Path, grpc_in: u16, http_in: u16, server: &Server) -> String {
    let dir = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $request_id $proxy_span_id {{
        "~^(?<head>[0-9a-f]{{16}})" $head;
    }}
    server {{
        listen 127.0.0.1:{grpc_in} http2;
        location / {{
            grpc_pass grpc://{grpc};
            grpc_set_header x-request-id $request_id;
            grpc_set_header traceparent 00-$request_id-$proxy_span_id-01;
        }}
    }}
    server {{
        listen 127.0.0.1:{http_in};
        location / {{
            proxy_pass http://{http};
            proxy_http_version 1.1;
            proxy_set_header x-request-id $request_id;
            proxy_set_header traceparent 00-$request_id-$proxy_span_id-01;
        }}
    }}
}}
"#,
        grpc = server.addr,
        http = server.http_addr,
    )
}

/// nginx in the foreground, stopped (by its pid) when dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(program: &Path, grpc_in: u16, http_in: u16, server: &Server) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("nginx.conf");
        std::fs::write(&config, nginx_config(dir.path(), grpc_in, http_in, server))
            .expect("write nginx.conf");
        let child = Command::new(program)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            // Before reading the config nginx logs here, not to /var/log/nginx.
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let nginx = Self { child, dir };
        for port in [grpc_in, http_in] {
            nginx.wait_listening(port);
        }
        nginx
    }

    fn wait_listening(&self, port: u16) {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx does not listen on {port}: {}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The value of header `name` in `text` (HTTP/1 or grpcurl -v lines).
fn header_in(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// The id the proxy made must be ours too: in the answer, and in the log line
/// of the call with the proxy's trace id and span id (our span's parent).
fn check_call_logged(server: &mut Server, answer: &str, method: &str) {
    let request_id = header_in(answer, "x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id in the answer:\n{answer}"));
    assert!(
        request_id.len() == 32 && request_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "the proxy's $request_id comes back: {request_id}"
    );
    let line = server.wait_for(|l| {
        l["message"] == "call finished" && l["span"]["request_id"] == request_id.as_str()
    });
    let span = &line["span"];
    assert_eq!(span["method"], method);
    assert_eq!(line["code"], 0);
    assert_eq!(span["trace_id"], request_id.as_str(), "the proxy's trace");
    assert_eq!(
        span["parent_span_id"],
        &request_id[..16],
        "a child of the proxy's span"
    );
    assert_ne!(span["span_id"], &request_id[..16]);
}

async fn run(program: PathBuf, args: Vec<OsString>) -> String {
    let out = clients::run(program, args).await;
    let text = all_output(&out);
    assert!(out.status.success(), "failed ({}):\n{text}", out.status);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_and_trace_of_nginx_reach_our_logs_and_answers() {
    let (Some(nginx), Some(grpcurl), Some(curl)) =
        (clients::nginx(), clients::grpcurl(), clients::curl())
    else {
        return;
    };
    let mut server = Server::start(&["--access-log"]);
    let (grpc_in, http_in) = (free_port(), free_port());
    let proxy = Nginx::start(&nginx, grpc_in, http_in, &server);

    // gRPC through grpc_pass, reflection included (grpcurl has no .proto files).
    let args: Vec<OsString> = [
        "-plaintext",
        "-v",
        "-max-time",
        "10",
        "-d",
        &format!(r#"{{"image_id":"{IMAGE_ID}"}}"#),
        &format!("127.0.0.1:{grpc_in}"),
        "yandex.cloud.compute.v1.ImageService/Get",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let answer = run(grpcurl, args).await;
    assert!(answer.contains(IMAGE_ID), "{answer}");
    check_call_logged(
        &mut server,
        &answer,
        "/yandex.cloud.compute.v1.ImageService/Get",
    );

    // REST through proxy_pass.
    let path = format!("/compute/v1/images/{IMAGE_ID}");
    let args: Vec<OsString> = [
        "-sS",
        "-i",
        "--max-time",
        "10",
        &format!("http://127.0.0.1:{http_in}{path}"),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let answer = run(curl, args).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    check_call_logged(&mut server, &answer, &path);

    drop(proxy);
    assert!(server.terminate().success());
}
