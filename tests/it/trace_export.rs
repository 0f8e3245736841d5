//! OTLP export: the real binary sends each call's span to a real OTLP/gRPC
//! receiver (the collector's TraceService, served here by tonic), as a child of
//! the caller's W3C trace, for the gRPC and the REST face; flushed at exit;
//! probes left out.

use crate::common;

use common::process::Server;
use image_service::proto::compute::GetImageRequest;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;

const IMAGE_ID: &str = "fd824k6uqk9cvi1ise4i";
const GET: &str = "/yandex.cloud.compute.v1.ImageService/Get";

/// Hands every export request it receives to the test.
struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn start_receiver() -> (String, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
    start_receiver_with(None).await
}

/// The receiver, over TLS with `identity` (then its URL is
/// `https://localhost:PORT`).
async fn start_receiver_with(
    identity: Option<tonic::transport::Identity>,
) -> (String, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, received) = mpsc::unbounded_channel();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let mut builder = tonic::transport::Server::builder();
    let url = match identity {
        Some(identity) => {
            let tls = tonic::transport::ServerTlsConfig::new().identity(identity);
            builder = builder.tls_config(tls).unwrap();
            format!("https://localhost:{port}")
        }
        None => format!("http://127.0.0.1:{port}"),
    };
    tokio::spawn(
        builder
            .add_service(TraceServiceServer::new(Receiver(sender)))
            .serve_with_incoming(incoming),
    );
    (url, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value_of<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|AnyValue { value }| value.as_ref())
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match value_of(attributes, key) {
        Some(any_value::Value::StringValue(text)) => Some(text),
        _ => None,
    }
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match value_of(attributes, key) {
        Some(any_value::Value::IntValue(value)) => Some(*value),
        _ => None,
    }
}

fn traceparent(trace_id: &str, parent: &str, flags: &str) -> String {
    format!("00-{trace_id}-{parent}-{flags}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_spans_are_exported_as_children_of_the_callers_trace() {
    let (url, mut received) = start_receiver().await;
    let mut server = Server::start(&["--access-log", "--otlp-endpoint", &url]);
    let grpc_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let rest_trace = "0af7651916cd43dd8448eb211c80319c";
    let unsampled_trace = "11111111111111111111111111111111";

    let mut client = ImageServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let call = |trace: Option<String>| {
        let mut request = tonic::Request::new(GetImageRequest {
            image_id: IMAGE_ID.into(),
        });
        if let Some(value) = trace {
            request
                .metadata_mut()
                .insert("traceparent", value.parse().unwrap());
        }
        request
    };
    let request = call(Some(traceparent(grpc_trace, "00f067aa0ba902b7", "01")));
    client.get(request).await.expect("the gRPC Get succeeds");
    let grpc_line = server.wait_for(|l| l["message"] == "call finished");

    let rest = reqwest::Client::new()
        .get(format!(
            "http://{}/compute/v1/images/{IMAGE_ID}",
            server.http_addr
        ))
        .header(
            "traceparent",
            traceparent(rest_trace, "b7ad6b7169203331", "01"),
        )
        .header("tracestate", "vendor=value")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
    let rest_line = server.wait_for(|l| l["message"] == "call finished");

    client.get(call(None)).await.expect("the gRPC Get succeeds");
    let root_line = server.wait_for(|l| l["message"] == "call finished");

    // The caller decided not to sample this trace: nothing is exported for it.
    let request = call(Some(traceparent(unsampled_trace, "00f067aa0ba902b7", "00")));
    client.get(request).await.expect("the gRPC Get succeeds");
    let unsampled_line = server.wait_for(|l| l["message"] == "call finished");
    assert_eq!(unsampled_line["span"]["trace_id"], unsampled_trace);
    drop(client);

    // Probes are not traced, whatever the caller asks.
    let probe_trace = "22222222222222222222222222222222";
    for path in ["/healthz", "/readyz", "/metrics"] {
        let probe = reqwest::Client::new()
            .get(format!("http://{}{path}", server.http_addr))
            .header(
                "traceparent",
                traceparent(probe_trace, "b7ad6b7169203331", "01"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(probe.status(), 200, "{path}");
    }

    // The batch is sent at exit at the latest.
    assert!(server.terminate().success());
    let mut spans: Vec<Span> = Vec::new();
    // The server has exited, so every export it made has been received.
    let mut requests = Vec::new();
    while let Ok(request) = received.try_recv() {
        requests.push(request);
    }
    assert!(!requests.is_empty(), "the spans were sent before the exit");
    for request in requests {
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.expect("a resource");
            assert_eq!(
                string_attribute(&resource.attributes, "service.name"),
                Some("image-service")
            );
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    let find = |trace: &str| {
        let found: Vec<&Span> = spans.iter().filter(|s| hex(&s.trace_id) == trace).collect();
        assert_eq!(found.len(), 1, "one span of trace {trace}: {spans:?}");
        found[0]
    };
    // A server span of the call: SPAN_KIND_SERVER is 2.
    let check = |span: &Span, line: &serde_json::Value, parent: &str| {
        assert_eq!(span.kind, 2);
        assert_eq!(hex(&span.parent_span_id), parent);
        assert_eq!(
            hex(&span.span_id),
            line["span"]["span_id"].as_str().unwrap()
        );
        assert_eq!(span.name, GET);
        assert_eq!(int_attribute(&span.attributes, "code"), Some(0));
        assert_eq!(
            string_attribute(&span.attributes, "image_id"),
            Some(IMAGE_ID)
        );
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    };

    let grpc = find(grpc_trace);
    check(grpc, &grpc_line, "00f067aa0ba902b7");
    assert_eq!(string_attribute(&grpc.attributes, "method"), Some(GET));

    let rest = find(rest_trace);
    check(rest, &rest_line, "b7ad6b7169203331");
    assert_eq!(
        string_attribute(&rest.attributes, "method"),
        Some(format!("/compute/v1/images/{IMAGE_ID}").as_str())
    );
    assert_eq!(string_attribute(&rest.attributes, "rpc_method"), Some(GET));
    assert_eq!(rest.trace_state, "vendor=value");

    // No traceparent: a new trace, the one the log lines name.
    let root_trace = root_line["span"]["trace_id"].as_str().unwrap();
    let root = find(root_trace);
    check(root, &root_line, "");

    assert!(
        spans.iter().all(|s| hex(&s.trace_id) != unsampled_trace),
        "an unsampled trace is not exported"
    );
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) != probe_trace),
        "probes are not exported"
    );
}

#[test]
fn a_bad_endpoint_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_image-service"))
        .args(["serve", "--otlp-endpoint", "collector:4317"])
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--otlp-endpoint"), "{stderr}");
}

/// Starts the binary exporting to `url` (with `extra` flags), makes one Get
/// and stops it; the names of the spans `received` got.
async fn export_one_get(
    url: &str,
    extra: &[&str],
    received: &mut mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) -> Vec<String> {
    let mut args = vec!["--otlp-endpoint", url];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let mut client = ImageServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    client
        .get(GetImageRequest {
            image_id: IMAGE_ID.into(),
        })
        .await
        .expect("the gRPC Get succeeds");
    drop(client);
    assert!(server.terminate().success());
    let mut names = Vec::new();
    while let Ok(request) = received.try_recv() {
        for resource_spans in request.resource_spans {
            for scope in resource_spans.scope_spans {
                names.extend(scope.spans.into_iter().map(|span| span.name));
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_collector_over_tls_with_a_private_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let identity = || {
        tonic::transport::Identity::from_pem(
            certified.cert.pem(),
            certified.signing_key.serialize_pem(),
        )
    };
    let ca = common::write_temp(&certified.cert.pem());
    let (url, mut received) = start_receiver_with(Some(identity())).await;
    assert!(url.starts_with("https://localhost:"), "{url}");
    let names = export_one_get(
        &url,
        &["--otlp-ca", ca.path().to_str().unwrap()],
        &mut received,
    )
    .await;
    assert_eq!(names, [GET], "the Get's span arrived over TLS");

    // Without the private CA the collector's certificate is not trusted:
    // nothing is sent (and the server still serves and exits cleanly).
    let (url, mut received) = start_receiver_with(Some(identity())).await;
    let names = export_one_get(&url, &[], &mut received).await;
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_bad_otlp_ca_is_refused_at_start() {
    let refused = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_image-service"))
            .arg("serve")
            .args(args)
            .output()
            .expect("binary runs");
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused(&[
        "--otlp-endpoint",
        "https://collector:4317",
        "--otlp-ca",
        "/nonexistent/ca.pem",
    ]);
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
    let not_pem = common::write_temp("not a certificate");
    let stderr = refused(&[
        "--otlp-endpoint",
        "https://collector:4317",
        "--otlp-ca",
        not_pem.path().to_str().unwrap(),
    ]);
    assert!(stderr.contains("no CERTIFICATE"), "{stderr}");
    let stderr = refused(&[
        "--otlp-endpoint",
        "http://collector:4317",
        "--otlp-ca",
        not_pem.path().to_str().unwrap(),
    ]);
    assert!(stderr.contains("https://"), "{stderr}");
}
