//! PostgreSQL for the tests: each test gets a schema of its own in the test
//! database (`IMAGE_SERVICE_TEST_DATABASE_URL`, default the local server),
//! reached through `search_path` in the URL's `options`, and drops it at the end.
//! Without a reachable database the tests say `skipped`, unless CI is set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use image_service::store::postgres::PoolSettings;
use image_service::store::postgres::{self, Database};
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
    admin: Option<tokio_postgres::Client>,
    connection: Option<JoinHandle<()>>,
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
            admin: Some(admin),
            connection: Some(connection),
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
            .as_ref()
            .expect("open until dropped")
            .query_one(&sql, &[])
            .await
            .expect("count query")
            .get(0)
    }

    /// Drops the schema and everything in it.
    pub async fn drop(mut self) {
        if let Some(admin) = self.admin.take() {
            end_sessions_in(&admin, &self.name).await;
            admin
                .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
                .await
                .expect("drop the test schema");
        }
        if let Some(connection) = self.connection.take() {
            let _ = connection.await;
        }
    }
}

/// Ends the other sessions that hold locks in `schema` (a server's pool whose
/// transaction was left open, as when the test's runtime stopped under it):
/// the DROP would wait for them forever, and this drop runs while the runtime
/// that would end them is blocked on it.
async fn end_sessions_in(client: &tokio_postgres::Client, schema: &str) {
    let _ = client
        .execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
             JOIN pg_class c ON c.oid = l.relation \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
            &[&schema],
        )
        .await;
}

/// A test that failed before [`TestSchema::drop`] still drops its schema:
/// from a thread of its own, since this may run inside the test's runtime.
impl Drop for TestSchema {
    fn drop(&mut self) {
        if self.admin.take().is_none() {
            return;
        }
        let (base, name) = (base_url(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    end_sessions_in(&client, &name).await;
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Pool limits for tests: failures show within a second or two.
pub fn quick_pool() -> PoolSettings {
    PoolSettings {
        size: 4,
        acquire_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(2),
    }
}

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Up,
    /// Closes every open connection and refuses new ones (accepts and closes them).
    Down,
    /// Keeps connections open and accepts new ones, but forwards nothing: a
    /// database (or network) that stopped answering.
    Stalled,
}

/// A TCP proxy in front of the database that the test can cut, stall and
/// restore: a real network failure, seen from the server.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, watch_mode) = watch::channel(Mode::Up);
        let watch_mode = Arc::new(watch_mode);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut mode = (*watch_mode).clone();
                tokio::spawn(async move {
                    // Held, unanswered, until the mode changes.
                    let _ = mode.wait_for(|m| *m != Mode::Stalled).await;
                    if *mode.borrow() == Mode::Down {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = mode.wait_for(|m| *m != Mode::Up) => {}
                    }
                    // Stalled: keep both sockets open, silent, until cut or restored.
                    let _ = mode.wait_for(|m| *m != Mode::Stalled).await;
                });
            }
        });
        Self { addr, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        let _ = self.mode.send(mode);
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
