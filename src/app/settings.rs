//! What `serve` runs with, as plain values: built from the command line in
//! one place (`cli`), or in code by a test or an embedding program. Every
//! default is stated here once; the command line shows these as its defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::service::WriteSettings;
use crate::store::postgres::PoolSettings;
use crate::store::replica::FollowSettings;
use crate::transport::tls::TlsFiles;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The gRPC listener (port 0: any free port).
    pub grpc_listen: SocketAddr,
    /// The REST listener, also serving the probes and metrics.
    pub http_listen: SocketAddr,
    /// The catalog file; the built-in demo catalog when neither this nor a database is given.
    pub catalog: Option<PathBuf>,
    /// Reload the catalog file when it changes.
    pub watch_catalog: bool,
    /// Keep the writes (created, updated and deleted images, operations,
    /// idempotency keys) in this directory, so a restart keeps them; in memory
    /// only without it. Not with a database, which keeps them itself.
    pub data_dir: Option<PathBuf>,
    /// How operations are timed and idempotency keys kept.
    pub writes: WriteSettings,
    /// Serve from PostgreSQL instead of a catalog.
    pub database_url: Option<String>,
    /// Check the database schema rather than migrate it.
    pub no_migrate: bool,
    /// With a database: serve reads from memory kept in step with it, so.
    pub cache: Option<FollowSettings>,
    /// How long start-up waits for the database.
    pub database_startup_timeout: Duration,
    pub pool: PoolSettings,
    /// The tokens file: authentication is on with it.
    pub auth_tokens: Option<PathBuf>,
    /// One INFO line per call.
    pub access_log: bool,
    /// After a stop signal: how long calls are still served while health says NOT_SERVING.
    pub shutdown_delay: Duration,
    /// Then how long calls in flight may take to finish.
    pub drain_timeout: Duration,
    /// Calls in flight across both faces; more are refused at once.
    pub max_in_flight: u32,
    /// Concurrent HTTP/2 streams per gRPC connection.
    pub grpc_max_streams: u32,
    /// Largest request message (gRPC) and body (REST), in bytes.
    pub max_request_size: usize,
    /// Idle connections are closed after this long; zero keeps them.
    pub idle_timeout: Duration,
    /// HTTP/2 keepalive PING interval on gRPC connections.
    pub http2_keepalive: Duration,
    /// TLS on both listeners; plaintext without.
    pub tls: Option<TlsFiles>,
    /// The HOST:PORT endpoint discovery hands out; the bound gRPC address without it.
    pub advertise_address: Option<String>,
    /// Browser origins allowed to call the HTTP listener (REST and gRPC-Web);
    /// `*`: any. None: no CORS (preflights are not answered).
    pub cors_allow_origins: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            catalog: None,
            watch_catalog: false,
            data_dir: None,
            writes: WriteSettings::default(),
            database_url: None,
            no_migrate: false,
            cache: None,
            database_startup_timeout: Duration::from_secs(30),
            pool: PoolSettings::default(),
            auth_tokens: None,
            access_log: false,
            shutdown_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(20),
            max_in_flight: 1024,
            grpc_max_streams: 256,
            // Stricter than gRPC's customary 4 MiB, and still thousands of
            // times the largest request of these APIs.
            max_request_size: 1024 * 1024,
            idle_timeout: Duration::from_secs(300),
            http2_keepalive: Duration::from_secs(30),
            tls: None,
            advertise_address: None,
            cors_allow_origins: Vec::new(),
        }
    }
}
