//! Test harness: starts the real server on port 0 in this process and hands back
//! its address, the way a client would find it.

pub mod clients;
pub mod process;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use image_service::app::Application;
use image_service::app::Settings;
use image_service::store::Repositories;
use image_service::store::postgres::Database;
use tempfile::NamedTempFile;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    health: HealthReporter,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    // Kept alive as long as the server may reread it.
    _catalog_file: Option<NamedTempFile>,
}

impl TestApp {
    /// The server on the built-in demo catalog.
    pub async fn demo() -> Self {
        Self::start(test_settings(None), None, None).await
    }

    /// The server on a catalog file holding `json`.
    pub async fn with_catalog(json: &str) -> Self {
        let file = write_temp(json);
        Self::start(test_settings(Some(file.path().into())), Some(file), None).await
    }

    /// The server on backends the test made.
    pub async fn with_repositories(repositories: Repositories) -> Self {
        Self::start(test_settings(None), None, Some(repositories)).await
    }

    /// The server on a PostgreSQL database, with its health watcher, as
    /// `serve --database-url` builds it (minus the wait and the migration).
    pub async fn with_database(database: Database) -> Self {
        let app = Application::build_with_database(&test_settings(None), database)
            .await
            .expect("the server starts");
        Self::run(app, None)
    }

    pub async fn start(
        settings: Settings,
        catalog_file: Option<NamedTempFile>,
        repositories: Option<Repositories>,
    ) -> Self {
        let app = match repositories {
            Some(repositories) => {
                Application::build_with_repositories(&settings, repositories).await
            }
            None => Application::build(&settings).await,
        }
        .expect("the server starts");
        Self::run(app, catalog_file)
    }

    /// Runs a server the test built itself.
    pub fn from_application(app: Application) -> Self {
        Self::run(app, None)
    }

    fn run(app: Application, catalog_file: Option<NamedTempFile>) -> Self {
        let grpc_addr = app.grpc_addr();
        let http_addr = app.http_addr();
        let health = app.health().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("the server runs");
        });
        Self {
            grpc_addr,
            http_addr,
            health,
            stop: Some(stop),
            server: Some(server),
            _catalog_file: catalog_file,
        }
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `http://ADDR` of the REST listener, for an HTTP client.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc_url())
            .expect("valid url")
            .connect()
            .await
            .expect("connects to the server")
    }

    /// The server's health reporter, to change what health reports.
    pub fn health(&self) -> &HealthReporter {
        &self.health
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends cleanly");
        }
    }
}

pub fn test_settings(catalog: Option<PathBuf>) -> Settings {
    Settings {
        grpc_listen: "127.0.0.1:0".parse().expect("valid address"),
        http_listen: "127.0.0.1:0".parse().expect("valid address"),
        shutdown_delay: std::time::Duration::ZERO,
        catalog,
        ..Settings::default()
    }
}

pub fn write_temp(contents: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file");
    file.write_all(contents.as_bytes())
        .expect("write temp file");
    file
}

/// A temporary file holding `contents`.
pub fn write_temp_bytes(contents: &[u8]) -> NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(contents).expect("write temp file");
    file
}

/// The demo catalog as parsed JSON, to compare answers with.
pub fn demo_catalog_json() -> serde_json::Value {
    serde_json::from_str(image_service::store::catalog::DEMO_CATALOG_JSON)
        .expect("demo catalog is JSON")
}

/// An access binding of `role` to the subject `id` of type `kind`.
pub fn binding(
    role: &str,
    id: &str,
    kind: &str,
) -> image_service::proto::yandex::cloud::access::AccessBinding {
    use image_service::proto::yandex::cloud::access::{AccessBinding, Subject};
    AccessBinding {
        role_id: role.into(),
        subject: Some(Subject {
            id: id.into(),
            r#type: kind.into(),
        }),
    }
}
