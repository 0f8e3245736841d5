//! The PostgreSQL backend in `GET /metrics`: the pool's state read at scrape
//! time, and failed operations counted by kind (query, unavailable, timeout),
//! against the real local database.

use crate::common;
use crate::pg_support;

use common::TestApp;
use image_service::proto::compute;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::store::postgres::Database;
use pg_support::{Mode, Proxy, TestSchema, closed_port, database_addr, quick_pool, url_via};
use std::time::Duration;

use tonic::Code;

const ID: &str = "fd824k6uqk9cvi1ise4i";

async fn scrape(app: &TestApp) -> String {
    reqwest::get(app.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample named exactly `series` (name plus labels).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

async fn get(app: &TestApp) -> Result<compute::Image, tonic::Status> {
    let mut client = ImageServiceClient::new(app.channel().await);
    client
        .get(compute::GetImageRequest {
            image_id: ID.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_state_and_query_errors_are_exported() {
    let Some(schema) = TestSchema::create("pool_state_and_query_errors_are_exported").await else {
        return;
    };
    let app = TestApp::with_database(schema.migrated().await).await;
    assert_eq!(get(&app).await.unwrap_err().code(), Code::NotFound);

    // The health watcher pings the database every second through the pool, so a
    // scrape may catch its connection busy: look again until it is back.
    let mut text = scrape(&app).await;
    for _ in 0..40 {
        let open = value(&text, "image_service_database_pool_connections");
        if value(&text, "image_service_database_pool_idle_connections") == open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = scrape(&app).await;
    }
    assert_eq!(
        value(&text, "image_service_database_pool_max_connections"),
        4.0
    );
    let open = value(&text, "image_service_database_pool_connections");
    assert!(open >= 1.0, "a connection was opened: {open}");
    assert_eq!(
        value(&text, "image_service_database_pool_idle_connections"),
        open,
        "no call is running, so every open connection is idle"
    );
    assert_eq!(value(&text, "image_service_database_pool_waiting"), 0.0);
    let query_errors = r#"image_service_database_errors_total{kind="query"}"#;
    assert_eq!(value(&text, query_errors), 0.0);

    // A schema that no longer matches: the server refuses the statement.
    let (admin, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "DROP TABLE {}.compute_images CASCADE",
            schema.name
        ))
        .await
        .unwrap();
    assert_eq!(get(&app).await.unwrap_err().code(), Code::Internal);
    let text = scrape(&app).await;
    assert_eq!(value(&text, query_errors), 1.0);
    assert_eq!(
        value(
            &text,
            r#"image_service_database_errors_total{kind="timeout"}"#
        ),
        0.0
    );
    drop(admin);
    connection.abort();
    app.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_count_as_unavailable() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port().await);
    let app = TestApp::with_database(Database::connect(&url, &quick_pool()).unwrap()).await;
    assert_eq!(get(&app).await.unwrap_err().code(), Code::Unavailable);
    let text = scrape(&app).await;
    let unavailable = value(
        &text,
        r#"image_service_database_errors_total{kind="unavailable"}"#,
    );
    assert!(unavailable >= 1.0, "{text}");
    assert_eq!(value(&text, "image_service_database_pool_connections"), 0.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_counts_as_timeout() {
    let Some(schema) =
        TestSchema::create("a_database_that_stops_answering_counts_as_timeout").await
    else {
        return;
    };
    schema.migrated().await;
    let proxy = Proxy::start(database_addr(&schema.url)).await;
    let database = Database::connect(&url_via(&schema.url, proxy.addr), &quick_pool()).unwrap();
    let app = TestApp::with_database(database).await;
    assert_eq!(get(&app).await.unwrap_err().code(), Code::NotFound);
    proxy.set(Mode::Stalled);
    assert_eq!(get(&app).await.unwrap_err().code(), Code::Unavailable);
    let text = scrape(&app).await;
    let timeouts = value(
        &text,
        r#"image_service_database_errors_total{kind="timeout"}"#,
    );
    assert!(timeouts >= 1.0, "{text}");
    proxy.set(Mode::Up);
    app.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_deadline_bounds_the_database_work() {
    let Some(schema) = TestSchema::create("the_callers_deadline_bounds_the_database_work").await
    else {
        return;
    };
    schema.migrated().await;
    let proxy = Proxy::start(database_addr(&schema.url)).await;
    // The statement timeout (2 s) is far beyond the callers' deadlines.
    let database = Database::connect(&url_via(&schema.url, proxy.addr), &quick_pool()).unwrap();
    let app = TestApp::with_database(database).await;
    assert_eq!(get(&app).await.unwrap_err().code(), Code::NotFound);
    proxy.set(Mode::Stalled);

    // REST passes grpc-timeout on; the pooled connection's query is cut at it.
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .get(app.http_url(&format!("/compute/v1/images/{ID}")))
        .header("grpc-timeout", "300m")
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    // DEADLINE_EXCEEDED (504), as gRPC answers it: the deadline passed, the database is fine.
    assert_eq!(response.status(), 504);
    let body = response.text().await.unwrap();
    assert!(body.contains("grpc-timeout"), "{body}");
    assert!(took < Duration::from_millis(1500), "{took:?}");

    // gRPC: the call's deadline bounds the wait, and the connection it used
    // is not handed back with a reply still due.
    let mut client = ImageServiceClient::new(app.channel().await);
    let mut request = tonic::Request::new(compute::GetImageRequest {
        image_id: ID.into(),
    });
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_eq!(
        client.get(request).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    assert!(started.elapsed() < Duration::from_millis(1500));

    proxy.set(Mode::Up);
    assert_eq!(get(&app).await.unwrap_err().code(), Code::NotFound);
    let text = scrape(&app).await;
    let timeouts = value(
        &text,
        r#"image_service_database_errors_total{kind="timeout"}"#,
    );
    assert!(timeouts >= 1.0, "{text}");
    app.stop().await;
    schema.drop().await;
}
