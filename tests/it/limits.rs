//! The calls-in-flight cap: past it both faces refuse at once (gRPC
//! RESOURCE_EXHAUSTED, REST 429) while probes keep answering, and admitted
//! calls finish normally.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{TestApp, test_settings};
use image_service::domain::compute::{ComputeImageQuery, Family};
use image_service::domain::page::PageRequest;
use image_service::domain::{FolderId, ImageId};
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{self, GetImageRequest};
use image_service::store::catalog::Catalog;
use image_service::store::{
    ComputeImageRepository, EncodedPage, ListError, MemoryRepository, Repositories, RepositoryError,
};
use tokio::sync::Semaphore;
use tonic::Code;

const ID: &str = "fd824k6uqk9cvi1ise4i";

/// The demo catalog, except that a compute Get waits until the test opens the
/// gate: a slow backend holding calls in flight.
struct GatedBackend {
    gate: Arc<Semaphore>,
    inner: Arc<MemoryRepository>,
}

#[async_trait]
impl ComputeImageRepository for GatedBackend {
    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        let _pass = self.gate.acquire().await;
        self.inner.get_compute_image_encoded(id).await
    }

    async fn list_compute_images_encoded(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        self.inner.list_compute_images_encoded(query, page).await
    }

    async fn latest_compute_image_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        self.inner
            .latest_compute_image_by_family(folder, family)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_limit_calls_are_refused_at_once_on_both_faces() {
    let memory = Arc::new(MemoryRepository::new(Catalog::demo().unwrap()));
    let gate = Arc::new(Semaphore::new(0));
    let backend = Arc::new(GatedBackend {
        gate: gate.clone(),
        inner: memory.clone(),
    });
    let mut settings = test_settings(None);
    settings.max_in_flight = 2;
    let app = TestApp::start(
        settings,
        None,
        Some(Repositories {
            compute: backend,
            container: memory,
            writes: None,
        }),
    )
    .await;
    let channel = app.channel().await;

    // Two calls fill the budget and wait in the backend.
    let held: Vec<_> = (0..2)
        .map(|_| {
            let mut client = ImageServiceClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .get(GetImageRequest {
                        image_id: ID.into(),
                    })
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    let refused = ImageServiceClient::new(channel.clone())
        .get(GetImageRequest {
            image_id: ID.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("limit of 2 calls in flight"),
        "{}",
        refused.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not queued"
    );

    let rest = reqwest::get(app.http_url(&format!("/compute/v1/images/{ID}")))
        .await
        .unwrap();
    assert_eq!(rest.status(), 429);
    assert!(rest.headers().contains_key("x-request-id"));
    let body: serde_json::Value = rest.json().await.unwrap();
    assert_eq!(body["code"], 8);

    // Probes don't count against the budget.
    let healthz = reqwest::get(app.http_url("/healthz")).await.unwrap();
    assert_eq!(healthz.status(), 200);

    // The admitted calls finish normally, and their slots come back.
    gate.add_permits(100);
    for call in held {
        assert_eq!(call.await.unwrap().unwrap().into_inner().id, ID);
    }
    let again = ImageServiceClient::new(channel)
        .get(GetImageRequest {
            image_id: ID.into(),
        })
        .await
        .unwrap();
    assert_eq!(again.into_inner().id, ID);
    let rest = reqwest::get(app.http_url(&format!("/compute/v1/images/{ID}")))
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
}

#[tokio::test]
async fn requests_over_the_size_limit_are_refused_on_both_faces() {
    let settings = image_service::app::Settings {
        max_request_size: 1024,
        ..test_settings(None)
    };
    let app = TestApp::start(settings, None, None).await;
    let mut client = ImageServiceClient::new(app.channel().await);

    let refused = client
        .get(GetImageRequest {
            image_id: "x".repeat(2000),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("limit of 1024 bytes"),
        "{refused:?}"
    );
    // Under the limit, the same call is answered.
    let found = client
        .get(GetImageRequest {
            image_id: ID.into(),
        })
        .await
        .unwrap();
    assert_eq!(found.into_inner().id, ID);

    let http = reqwest::Client::new();
    let big = http
        .post(app.http_url("/compute/v1/images"))
        .body(format!(r#"{{"folderId":"{}"}}"#, "f".repeat(2000)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let small = http
        .post(app.http_url("/compute/v1/images"))
        .body(r#"{"folderId":"f"}"#)
        .send()
        .await
        .unwrap();
    assert_ne!(small.status(), 413, "a small body passes the limit");
    app.stop().await;
}

/// Reads until the server closes the connection; how long that took.
async fn time_until_closed(stream: &mut tokio::net::TcpStream) -> (Duration, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the idle connection is closed within 5 s");
        match read {
            Ok(0) | Err(_) => return (started.elapsed(), received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_on_both_listeners_busy_ones_are_not() {
    use tokio::io::AsyncWriteExt;
    let settings = image_service::app::Settings {
        idle_timeout: Duration::from_millis(400),
        ..test_settings(None)
    };
    let app = TestApp::start(settings, None, None).await;

    // REST: one request on a keep-alive connection, then silence.
    let mut rest = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
    rest.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let (after, received) = time_until_closed(&mut rest).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        after >= Duration::from_millis(300),
        "closed too early: {after:?}"
    );

    // gRPC: an HTTP/2 connection that never makes a call.
    let mut grpc = tokio::net::TcpStream::connect(app.grpc_addr).await.unwrap();
    grpc.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let (after, _) = time_until_closed(&mut grpc).await;
    assert!(
        after >= Duration::from_millis(300),
        "closed too early: {after:?}"
    );

    // A connection with calls more often than the timeout stays usable.
    let mut client = ImageServiceClient::new(app.channel().await);
    for _ in 0..8 {
        client
            .get(GetImageRequest {
                image_id: ID.into(),
            })
            .await
            .expect("a busy connection is kept");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    app.stop().await;
}
