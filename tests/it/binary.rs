//! The real binary: port 0 and the logged address, JSON logs, the access log
//! switch, and a clean exit on SIGTERM.

use crate::common;

use std::time::Duration;

use common::process::Server;
use image_service::proto::compute::GetImageRequest;
use image_service::proto::compute::image_service_client::ImageServiceClient;

async fn get_once(addr: &str, id: &str) {
    let mut client = ImageServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let _ = client
        .get(GetImageRequest {
            image_id: id.into(),
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_level_logs_no_line_per_call() {
    let server = Server::start(&[]);
    get_once(&server.addr, "fd8doesnotexist").await;
    let lines = server.drain(Duration::from_millis(300));
    assert!(
        lines.iter().all(|l| l["message"] != "call finished"),
        "{lines:?}"
    );
    assert!(server.terminate().success(), "SIGTERM exits 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_by_the_drain_timeout() {
    let server = Server::start(&["--drain-timeout", "300ms"]);
    // An open HTTP/2 connection whose client never answers the GOAWAY.
    let stuck = std::net::TcpStream::connect(&server.addr).unwrap();
    std::io::Write::write_all(
        &mut &stuck,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    assert!(server.terminate().success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_writes_one_line_per_call_with_its_fields() {
    let mut server = Server::start(&["--access-log"]);
    let mut client = ImageServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let mut request = tonic::Request::new(GetImageRequest {
        image_id: "fd8doesnotexist".into(),
    });
    request
        .metadata_mut()
        .insert("x-client-request-id", "client-42".parse().unwrap());
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let _ = client.get(request).await;
    drop(client);
    let line = server.wait_for(|l| l["message"] == "call finished");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["code"], 5);
    assert!(line["latency_us"].is_u64());
    let span = &line["span"];
    assert_eq!(span["method"], "/yandex.cloud.compute.v1.ImageService/Get");
    assert_eq!(span["image_id"], "fd8doesnotexist");
    assert_eq!(span["client_request_id"], "client-42");
    assert_eq!(span["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // A child of the caller's span, with a span id of its own.
    assert_eq!(span["parent_span_id"], "00f067aa0ba902b7");
    let span_id = span["span_id"].as_str().unwrap();
    assert!(
        is_hex(span_id, 16) && span_id != "00f067aa0ba902b7",
        "{span_id}"
    );
    assert_eq!(span["request_id"].as_str().unwrap().len(), 36);
    assert!(server.terminate().success());
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit()) && text != "0".repeat(len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_traceparent_starts_a_new_trace() {
    let mut server = Server::start(&["--access-log"]);
    let mut client = ImageServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let mut trace_ids = Vec::new();
    for malformed in [None, Some("00-not-a-trace-01")] {
        let mut request = tonic::Request::new(GetImageRequest {
            image_id: "fd8doesnotexist".into(),
        });
        if let Some(value) = malformed {
            request
                .metadata_mut()
                .insert("traceparent", value.parse().unwrap());
        }
        let _ = client.get(request).await;
        let line = server.wait_for(|l| l["message"] == "call finished");
        let span = &line["span"];
        let trace_id = span["trace_id"].as_str().unwrap().to_owned();
        assert!(is_hex(&trace_id, 32), "{trace_id}");
        assert!(is_hex(span["span_id"].as_str().unwrap(), 16), "{span}");
        assert!(span.get("parent_span_id").is_none(), "a root span: {span}");
        trace_ids.push(trace_id);
    }
    assert_ne!(trace_ids[0], trace_ids[1], "each call starts its own trace");
    drop(client);
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_without_cutting_calls() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let mut server = Server::start(&["--shutdown-delay", "1500ms"]);
    let url = format!("http://{}", server.addr);
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let id = "fd824k6uqk9cvi1ise4i";

    // A burst of calls in flight when the signal arrives.
    let mut burst = Vec::new();
    for _ in 0..200 {
        let mut client = ImageServiceClient::new(channel.clone());
        burst.push(tokio::spawn(async move {
            client
                .get(GetImageRequest {
                    image_id: id.into(),
                })
                .await
        }));
    }
    server.signal_term();
    for call in burst {
        assert!(call.await.unwrap().is_ok(), "a call in flight was cut");
    }
    server.wait_for(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("not serving"))
    });

    // During the delay: reported down, still answering on both faces.
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "yandex.cloud.compute.v1.ImageService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 2, "NOT_SERVING");
    let readyz = reqwest::get(format!("http://{}/readyz", server.http_addr))
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    let rest = reqwest::get(format!(
        "http://{}/compute/v1/images/{id}",
        server.http_addr
    ))
    .await
    .unwrap();
    assert_eq!(rest.status(), 200);
    let grpc = ImageServiceClient::new(channel.clone())
        .get(GetImageRequest {
            image_id: id.into(),
        })
        .await;
    assert!(grpc.is_ok(), "new calls are served during the delay");
    drop(channel);

    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exits 0 after draining");
}
