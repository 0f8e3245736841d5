//! PostgreSQL for the tests: each test gets a schema of its own in the test
//! database (`IMAGE_SERVICE_TEST_DATABASE_URL`, default the local server),
//! reached through `search_path` in the URL's `options`, and drops it at the end.
//! Without a reachable database the tests say `skipped`, unless CI is set.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use image_service::config::PoolArgs;
use image_service::repository::postgres::{self, Database};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn base_url() -> String {
    std::env::var("IMAGE_SERVICE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with `options=-c search_path=<schema>` added.
pub fn url_with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// A schema of its own in the test database.
pub struct TestSchema {
    pub name: String,
    /// The database URL with `search_path` set to the schema.
    pub url: String,
    admin: tokio_postgres::Client,
    connection: JoinHandle<()>,
}

impl TestSchema {
    /// A new empty schema, or None (after saying so) when there is no database
    /// to test against and CI is not set.
    pub async fn create(test: &str) -> Option<Self> {
        let base = base_url();
        let connect = tokio_postgres::connect(&base, tokio_postgres::NoTls);
        let (admin, connection) = match tokio::time::timeout(Duration::from_secs(5), connect).await
        {
            Ok(Ok(pair)) => pair,
            other => {
                let why = match other {
                    Ok(Err(err)) => err.to_string(),
                    _ => "timed out".to_owned(),
                };
                if std::env::var_os("CI").is_some() {
                    panic!("{test}: the test database {base} is unreachable: {why}");
                }
                eprintln!(
                    "{test}: skipped, the test database {base} is unreachable ({why}); \
                         set IMAGE_SERVICE_TEST_DATABASE_URL"
                );
                return None;
            }
        };
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let name = format!("imgsvc_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create the test schema");
        let url = url_with_schema(&base, &name);
        Some(Self {
            name,
            url,
            admin,
            connection,
        })
    }

    /// A pool on the schema, with short waits; not migrated.
    pub fn database(&self) -> Database {
        Database::connect(&self.url, &quick_pool()).expect("valid URL")
    }

    /// A pool on the schema, migrated.
    pub async fn migrated(&self) -> Database {
        let database = self.database();
        postgres::migrate(&database).await.expect("migrates");
        database
    }

    /// One value from SQL run in the schema.
    pub async fn count(&self, sql: &str) -> i64 {
        let sql = sql.replace("{schema}", &self.name);
        self.admin
            .query_one(&sql, &[])
            .await
            .expect("count query")
            .get(0)
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) {
        self.admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .expect("drop the test schema");
        drop(self.admin);
        let _ = self.connection.await;
    }
}

/// Pool limits for tests: failures show within a second or two.
pub fn quick_pool() -> PoolArgs {
    PoolArgs {
        size: 4,
        acquire_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(2),
    }
}

/// A TCP proxy in front of the database that the test can cut and restore:
/// while down, it closes every open connection and refuses new ones (accepts
/// and closes them at once). A real network failure, seen from the server.
pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (up, watch_up) = watch::channel(true);
        let watch_up = Arc::new(watch_up);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !*watch_up.borrow() {
                    drop(client);
                    continue;
                }
                let mut down = (*watch_up).clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up, task }
    }

    pub fn cut(&self) {
        let _ = self.up.send(false);
    }

    pub fn restore(&self) {
        let _ = self.up.send(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// host:port of a `postgres://user@host:port/db...` URL.
pub fn database_addr(url: &str) -> SocketAddr {
    let config: tokio_postgres::Config = url.parse().expect("valid URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = if host == "localhost" {
        "127.0.0.1".to_owned()
    } else {
        host
    };
    format!("{host}:{port}")
        .parse()
        .expect("an IP address and port")
}

/// The URL with its host and port replaced by `addr`.
pub fn url_via(url: &str, addr: SocketAddr) -> String {
    let original = database_addr(url);
    url.replacen(
        &format!("{}:{}", original.ip(), original.port()),
        &addr.to_string(),
        1,
    )
}

/// A port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}
