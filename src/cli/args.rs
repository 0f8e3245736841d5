//! Command line and environment: every flag also reads an `IMAGE_SERVICE_*`
//! variable. Defaults come from [`Settings::default`]; [`ServeArgs::settings`]
//! turns the flags into the settings the server runs with.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytesize::ByteSize;
use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};
use humantime::Duration;

use crate::app::Settings;
use crate::store::postgres::PoolSettings;
use crate::transport::tls::TlsFiles;

/// The defaults, as the flags show them.
fn defaults() -> Settings {
    Settings::default()
}

fn shown(duration: std::time::Duration) -> Duration {
    Duration::from(duration)
}

#[derive(Debug, Parser)]
#[command(
    name = "image-service",
    version,
    // A flag given twice takes the last value, as wrappers that append flags expect.
    args_override_self = true,
    about = "Yandex Cloud Compute and Container Registry ImageService (gRPC and REST), wire-compatible, from a local catalog"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC and REST APIs (on the built-in demo catalog unless --catalog is given).
    Serve(ServeArgs),
    /// Validate a catalog file, print what it holds and exit (non-zero when invalid).
    CheckCatalog(CheckCatalogArgs),
    /// Bring the PostgreSQL schema up to date and exit.
    Migrate(MigrateArgs),
    /// Load a catalog file into PostgreSQL in one transaction (all or nothing).
    Import(ImportArgs),
    /// Write the catalog held in PostgreSQL as a catalog file.
    Export(ExportArgs),
    /// Read a token on standard input and print its SHA-256 digest (hex), as the
    /// --auth-tokens file lists it.
    HashToken,
    /// Print the OpenAPI 3 document of the REST face (what /openapi.json serves).
    Openapi,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the gRPC listener. Port 0 picks a free port; the bound address is logged.
    #[arg(long, env = "IMAGE_SERVICE_GRPC_LISTEN", default_value_t = defaults().grpc_listen)]
    pub grpc_listen: SocketAddr,

    /// Address of the HTTP listener (HTTP/1.1 and h2c): REST/JSON, gRPC-Web,
    /// /openapi.json, /docs, /healthz and /readyz. Port 0 picks a free port; the
    /// bound address is logged.
    #[arg(long, env = "IMAGE_SERVICE_HTTP_LISTEN", default_value_t = defaults().http_listen)]
    pub http_listen: SocketAddr,

    /// A browser origin (https://HOST[:PORT]) allowed to call the HTTP listener,
    /// REST and gRPC-Web, with CORS preflights answered; repeat it, or "*" for
    /// any origin. Off by default.
    #[arg(
        long = "cors-allow-origin",
        env = "IMAGE_SERVICE_CORS_ALLOW_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,

    /// Catalog file (JSON: {"computeImages": [...], "containerRegistryImages": [...]}).
    /// Without it the built-in demo catalog is served.
    #[arg(
        long,
        env = "IMAGE_SERVICE_CATALOG",
        value_name = "FILE",
        conflicts_with = "database_url"
    )]
    pub catalog: Option<PathBuf>,

    /// Reload the --catalog file when it changes (it is also reloaded on SIGHUP,
    /// with or without this flag). A bad file keeps the catalog being served.
    #[arg(
        long,
        env = "IMAGE_SERVICE_WATCH_CATALOG",
        value_parser = FalseyValueParser::new(),
        requires = "catalog"
    )]
    pub watch_catalog: bool,

    /// Keep what the write API changed (images, operations, idempotency keys)
    /// in this directory, durably: a restart, even after kill -9, keeps every
    /// acknowledged write. Without it writes live in memory until the process ends.
    #[arg(
        long,
        env = "IMAGE_SERVICE_DATA_DIR",
        value_name = "DIR",
        conflicts_with = "database_url"
    )]
    pub data_dir: Option<PathBuf>,

    /// How long every operation takes before it is done (the image CREATING,
    /// then READY). Unset: about 200ms, or until the first OperationService.Get
    /// of it, whichever comes first.
    #[arg(long, env = "IMAGE_SERVICE_OPERATION_TIME", value_parser = parse_duration)]
    pub operation_time: Option<Duration>,

    /// How long an idempotency key keeps naming the operation it started.
    #[arg(long, env = "IMAGE_SERVICE_IDEMPOTENCY_TTL", default_value_t = shown(defaults().writes.idempotency_ttl), value_parser = parse_duration)]
    pub idempotency_ttl: Duration,

    /// Serve from PostgreSQL instead of a catalog file
    /// (postgres://user@host:5432/db?options=-c%20search_path%3Dschema; TLS with
    /// sslmode=require|verify-ca|verify-full and sslrootcert=FILE, as in libpq).
    #[arg(long, env = "IMAGE_SERVICE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// With --database-url: don't bring the schema up to date at start.
    #[arg(long, env = "IMAGE_SERVICE_NO_MIGRATE", value_parser = FalseyValueParser::new())]
    pub no_migrate: bool,

    /// With --database-url: how long start-up waits for the database to answer
    /// before giving up.
    #[arg(long, env = "IMAGE_SERVICE_DATABASE_STARTUP_TIMEOUT", default_value_t = shown(defaults().database_startup_timeout), value_parser = parse_duration)]
    pub database_startup_timeout: Duration,

    /// With --database-url: serve reads from memory. The catalog is loaded from
    /// the database at start and kept in step with it (its change sequence,
    /// LISTEN/NOTIFY and polling); writes still go to the database first.
    #[arg(long, env = "IMAGE_SERVICE_CACHE", value_parser = FalseyValueParser::new(), requires = "database_url")]
    pub cache: bool,

    /// With --cache: how often the change sequence is read even without a
    /// notification (the longest a change missed with a lost connection waits).
    #[arg(long, env = "IMAGE_SERVICE_CACHE_POLL_INTERVAL", default_value_t = shown(crate::store::replica::FollowSettings::default().poll_interval), value_parser = parse_duration)]
    pub cache_poll_interval: Duration,

    /// With --cache: don't LISTEN for notifications, poll only (for engines
    /// that speak PostgreSQL's protocol without LISTEN/NOTIFY).
    #[arg(long, env = "IMAGE_SERVICE_CACHE_NO_LISTEN", value_parser = FalseyValueParser::new())]
    pub cache_no_listen: bool,

    #[command(flatten)]
    pub pool: PoolArgs,

    /// Require `authorization: Bearer <token>` on image calls, with the tokens
    /// (SHA-256 digests), subjects and readable folders listed in this JSON file.
    /// Without it every caller may read everything (emulator use). Reread on SIGHUP.
    #[arg(long, env = "IMAGE_SERVICE_AUTH_TOKENS", value_name = "FILE")]
    pub auth_tokens: Option<PathBuf>,

    /// Log line format. The level comes from RUST_LOG (default: info).
    #[arg(long, env = "IMAGE_SERVICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log one line per call at INFO (method, image id, code, latency, request ids).
    /// Without it those lines are DEBUG, off at the default level.
    #[arg(long, env = "IMAGE_SERVICE_ACCESS_LOG", value_parser = FalseyValueParser::new())]
    pub access_log: bool,

    /// After SIGTERM/SIGINT, how long to keep serving new calls while health
    /// reports NOT_SERVING and /readyz 503, so load balancers stop sending first.
    #[arg(long, env = "IMAGE_SERVICE_SHUTDOWN_DELAY", default_value_t = shown(defaults().shutdown_delay), value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// Then, after the listeners stop accepting, how long calls in flight may take to finish before
    /// the remaining connections are closed (e.g. 20s, 500ms).
    #[arg(long, env = "IMAGE_SERVICE_DRAIN_TIMEOUT", default_value_t = shown(defaults().drain_timeout), value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Calls in flight across both faces; past it a call is refused at once with
    /// RESOURCE_EXHAUSTED (HTTP 429) rather than queued.
    #[arg(long, env = "IMAGE_SERVICE_MAX_IN_FLIGHT", default_value_t = defaults().max_in_flight, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Concurrent HTTP/2 streams per gRPC connection.
    #[arg(long, env = "IMAGE_SERVICE_GRPC_MAX_STREAMS", default_value_t = defaults().grpc_max_streams, value_parser = clap::value_parser!(u32).range(1..))]
    pub grpc_max_streams: u32,

    /// Largest request accepted: a gRPC request message (RESOURCE_EXHAUSTED
    /// beyond) and a REST request body (413 beyond). Bytes, or with KiB / MiB.
    #[arg(long, env = "IMAGE_SERVICE_MAX_REQUEST_SIZE", default_value_t = Size::bytes(defaults().max_request_size), value_parser = parse_size)]
    pub max_request_size: Size,

    /// Close a connection (either listener) on which no call has run for this
    /// long; 0s keeps idle connections open.
    #[arg(long, env = "IMAGE_SERVICE_IDLE_TIMEOUT", default_value_t = shown(defaults().idle_timeout), value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// HTTP/2 keepalive PING interval on gRPC connections (a peer that doesn't
    /// answer within 10 s is dropped).
    #[arg(long, env = "IMAGE_SERVICE_HTTP2_KEEPALIVE", default_value_t = shown(defaults().http2_keepalive), value_parser = parse_duration)]
    pub http2_keepalive: Duration,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// HOST:PORT that endpoint discovery (yandex.cloud.endpoint.ApiEndpointService)
    /// gives clients for compute, container-registry and iam. Default: the bound
    /// gRPC address.
    #[arg(long, env = "IMAGE_SERVICE_ADVERTISE_ADDRESS", value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub advertise_address: Option<String>,

    /// Export each call's span over OTLP/gRPC to this collector (e.g.
    /// http://otel-collector:4317, or https:// for TLS), in batches. Without it
    /// nothing is exported.
    #[arg(long, env = "IMAGE_SERVICE_OTLP_ENDPOINT", value_name = "URL", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<String>,

    /// PEM file of CA certificates to trust for an https:// --otlp-endpoint,
    /// besides the public roots built in (a collector with a private CA).
    #[arg(
        long,
        env = "IMAGE_SERVICE_OTLP_CA",
        value_name = "FILE",
        requires = "otlp_endpoint"
    )]
    pub otlp_ca: Option<PathBuf>,
}

/// An `http://host:port` (plaintext gRPC) or `https://host:port` (TLS) URL.
fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|err| format!("{text:?} is not a URL: {err}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!(
            "{text:?}: expected http://HOST:PORT or https://HOST:PORT of an OTLP/gRPC collector"
        ));
    }
    Ok(text.to_owned())
}

/// TLS on both listeners (plaintext without these). Reread on SIGHUP.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// PEM file of the server certificate chain, leaf first (with --tls-key).
    #[arg(
        long,
        env = "IMAGE_SERVICE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "IMAGE_SERVICE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// PEM file of the CAs whose client certificates are accepted: with it,
    /// every connection must present one (mutual TLS).
    #[arg(
        long,
        env = "IMAGE_SERVICE_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
}

/// `HOST:PORT` with a non-empty host and a port number (IPv6 hosts in brackets).
pub fn parse_host_port(text: &str) -> Result<String, String> {
    let problem = || format!("{text:?} is not HOST:PORT (e.g. images.example.com:443)");
    let (host, port) = text.rsplit_once(':').ok_or_else(problem)?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    if bare_host.is_empty() || host.chars().any(char::is_whitespace) || port.parse::<u16>().is_err()
    {
        return Err(problem());
    }
    Ok(text.to_owned())
}

impl ServeArgs {
    /// The settings the server runs with.
    pub fn settings(&self) -> Settings {
        Settings {
            grpc_listen: self.grpc_listen,
            http_listen: self.http_listen,
            catalog: self.catalog.clone(),
            watch_catalog: self.watch_catalog,
            data_dir: self.data_dir.clone(),
            writes: crate::app::WriteSettings {
                operation_time: self.operation_time.map(Into::into),
                idempotency_ttl: self.idempotency_ttl.into(),
            },
            database_url: self.database_url.clone(),
            no_migrate: self.no_migrate,
            cache: self.cache.then_some(crate::store::replica::FollowSettings {
                poll_interval: self.cache_poll_interval.into(),
                listen: !self.cache_no_listen,
            }),
            database_startup_timeout: self.database_startup_timeout.into(),
            pool: self.pool.settings(),
            auth_tokens: self.auth_tokens.clone(),
            access_log: self.access_log,
            shutdown_delay: self.shutdown_delay.into(),
            drain_timeout: self.drain_timeout.into(),
            max_in_flight: self.max_in_flight,
            grpc_max_streams: self.grpc_max_streams,
            // parse_size has checked that it fits.
            max_request_size: usize::try_from(self.max_request_size.0.as_u64())
                .unwrap_or(usize::MAX),
            idle_timeout: self.idle_timeout.into(),
            http2_keepalive: self.http2_keepalive.into(),
            tls: self.tls.files(),
            advertise_address: self.advertise_address.clone(),
            cors_allow_origins: self.cors_allow_origins.clone(),
        }
    }
}

impl TlsArgs {
    /// The files named, None for plaintext (clap insists on both or neither).
    fn files(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        }
    }
}

/// A size of a flag: parsed by bytesize, shown as the flags are written
/// (`1MiB`, `512KiB`, or bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub ByteSize);

impl Size {
    fn bytes(bytes: usize) -> Self {
        Self(ByteSize::b(bytes as u64))
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.0.as_u64();
        match bytes {
            0 => write!(f, "0"),
            b if b % (1 << 20) == 0 => write!(f, "{}MiB", b >> 20),
            b if b % (1 << 10) == 0 => write!(f, "{}KiB", b >> 10),
            b => write!(f, "{b}"),
        }
    }
}

/// A size such as `4MiB`, `512KiB`, `1 MB` or a bare number of bytes (bytesize), at least 1 byte.
pub fn parse_size(text: &str) -> Result<Size, String> {
    let size: ByteSize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 4MiB, 512KiB or 65536"))?;
    if size.as_u64() == 0 {
        return Err("the size must be at least 1 byte".to_owned());
    }
    if usize::try_from(size.as_u64()).is_err() {
        return Err(format!("{text:?} is too large"));
    }
    Ok(Size(size))
}

/// A duration such as `20s`, `500ms`, `2m`, `1h 30m` (humantime) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = text.parse().map_err(|_| format!("{text:?} is too large"))?;
        return Ok(Duration::from(std::time::Duration::from_secs(seconds)));
    }
    text.parse::<Duration>()
        .map_err(|err| format!("{text:?} is not a duration like 20s, 500ms or 2m: {err}"))
}

#[derive(Debug, Clone, Args)]
pub struct CheckCatalogArgs {
    /// The catalog file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Limits of the PostgreSQL connection pool.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// Most connections the pool opens.
    #[arg(
        long = "database-pool-size",
        env = "IMAGE_SERVICE_DATABASE_POOL_SIZE",
        default_value_t = PoolSettings::default().size
    )]
    pub size: usize,

    /// How long a call waits for a connection (from the pool, or a new one)
    /// before it answers UNAVAILABLE.
    #[arg(long = "database-acquire-timeout", env = "IMAGE_SERVICE_DATABASE_ACQUIRE_TIMEOUT", default_value_t = shown(PoolSettings::default().acquire_timeout), value_parser = parse_duration)]
    pub acquire_timeout: Duration,

    /// How long one statement may run: the server's statement_timeout, and the
    /// client's own deadline for an answer.
    #[arg(long = "database-statement-timeout", env = "IMAGE_SERVICE_DATABASE_STATEMENT_TIMEOUT", default_value_t = shown(PoolSettings::default().statement_timeout), value_parser = parse_duration)]
    pub statement_timeout: Duration,
}

impl PoolArgs {
    pub fn settings(&self) -> PoolSettings {
        PoolSettings {
            size: self.size,
            acquire_timeout: self.acquire_timeout.into(),
            statement_timeout: self.statement_timeout.into(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to migrate.
    #[arg(long, env = "IMAGE_SERVICE_DATABASE_URL", value_name = "URL")]
    pub database_url: String,

    #[command(flatten)]
    pub pool: PoolArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The PostgreSQL database to load into (its schema is migrated first).
    #[arg(long, env = "IMAGE_SERVICE_DATABASE_URL", value_name = "URL")]
    pub database_url: String,

    /// Replace the whole catalog held in the database (atomically) instead of
    /// inserting or updating the file's entries by id.
    #[arg(long)]
    pub replace: bool,

    /// The catalog file to load (validated as `serve --catalog` does).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub pool: PoolArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The PostgreSQL database to read.
    #[arg(long, env = "IMAGE_SERVICE_DATABASE_URL", value_name = "URL")]
    pub database_url: String,

    /// Where to write the catalog; standard output when left out.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub pool: PoolArgs,
}

pub use crate::ops::telemetry::LogFormat;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_command_line_defaults() {
        let cli = Cli::try_parse_from(["image-service", "serve"]).unwrap();
        let Command::Serve(parsed) = cli.command else {
            panic!("expected serve");
        };
        assert_eq!(parsed.settings(), Settings::default());
        assert_eq!(parsed.log_format, LogFormat::Text);
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4MiB"), Ok(Size(ByteSize::mib(4))));
        assert_eq!(parse_size("512KiB"), Ok(Size(ByteSize::kib(512))));
        assert_eq!(parse_size("100"), Ok(Size(ByteSize::b(100))));
        assert_eq!(parse_size("1 MB"), Ok(Size(ByteSize::mb(1))));
        for shown in ["1MiB", "512KiB", "1000000"] {
            assert_eq!(
                parse_size(shown).map(|s| s.to_string()).as_deref(),
                Ok(shown)
            );
        }
        assert!(parse_size("0").is_err());
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("big").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        let seconds = |text: &str| parse_duration(text).map(|d| d.as_secs_f64());
        assert_eq!(seconds("20s"), Ok(20.0));
        assert_eq!(seconds("500ms"), Ok(0.5));
        assert_eq!(seconds("2m"), Ok(120.0));
        assert_eq!(seconds("3"), Ok(3.0));
        assert_eq!(seconds("1h 30m"), Ok(5400.0));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }

    #[test]
    fn tls_cert_and_key_come_together() {
        for flag in ["--tls-cert", "--tls-key"] {
            let err = Cli::try_parse_from(["image-service", "serve", flag, "x.pem"]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
        let err = Cli::try_parse_from(["image-service", "serve", "--tls-client-ca", "ca.pem"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn advertise_address_is_host_and_port() {
        assert_eq!(
            parse_host_port("localhost:443").as_deref(),
            Ok("localhost:443")
        );
        assert_eq!(parse_host_port("[::1]:50051").as_deref(), Ok("[::1]:50051"));
        assert!(parse_host_port("localhost").is_err());
        assert!(parse_host_port(":443").is_err());
        assert!(parse_host_port("host:http").is_err());
        assert!(parse_host_port("host:70000").is_err());
    }

    #[test]
    fn otlp_endpoint_must_be_an_http_or_https_url() {
        let parse = |value: &str| {
            Cli::try_parse_from(["image-service", "serve", "--otlp-endpoint", value])
                .map_err(|err| err.to_string())
        };
        assert!(parse("http://collector:4317").is_ok());
        assert!(parse("https://collector:4317").is_ok());
        for bad in ["collector:4317", "grpc://collector:4317", "http://"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("--otlp-endpoint"), "{bad}: {err}");
        }
    }

    #[test]
    fn catalog_and_database_are_exclusive() {
        let err = Cli::try_parse_from([
            "image-service",
            "serve",
            "--catalog",
            "c.json",
            "--database-url",
            "postgres://localhost/db",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
