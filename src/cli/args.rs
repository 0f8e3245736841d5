//! Command line and environment: every flag also reads an `IMAGE_SERVICE_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};

pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";

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
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the gRPC listener. Port 0 picks a free port; the bound address is logged.
    #[arg(long, env = "IMAGE_SERVICE_GRPC_LISTEN", default_value = DEFAULT_GRPC_LISTEN)]
    pub grpc_listen: SocketAddr,

    /// Address of the REST/JSON listener (HTTP/1.1 and h2c), also serving /healthz
    /// and /readyz. Port 0 picks a free port; the bound address is logged.
    #[arg(long, env = "IMAGE_SERVICE_HTTP_LISTEN", default_value = DEFAULT_HTTP_LISTEN)]
    pub http_listen: SocketAddr,

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
    #[arg(long, env = "IMAGE_SERVICE_DATABASE_STARTUP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub database_startup_timeout: Duration,

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
    #[arg(long, env = "IMAGE_SERVICE_SHUTDOWN_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// Then, after the listeners stop accepting, how long calls in flight may take to finish before
    /// the remaining connections are closed (e.g. 20s, 500ms).
    #[arg(long, env = "IMAGE_SERVICE_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Calls in flight across both faces; past it a call is refused at once with
    /// RESOURCE_EXHAUSTED (HTTP 429) rather than queued.
    #[arg(long, env = "IMAGE_SERVICE_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Concurrent HTTP/2 streams per gRPC connection.
    #[arg(long, env = "IMAGE_SERVICE_GRPC_MAX_STREAMS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub grpc_max_streams: u32,

    /// Largest request accepted: a gRPC request message (RESOURCE_EXHAUSTED
    /// beyond) and a REST request body (413 beyond). Bytes, or with KiB / MiB.
    #[arg(long, env = "IMAGE_SERVICE_MAX_REQUEST_SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_request_size: usize,

    /// Close a connection (either listener) on which no call has run for this
    /// long; 0s keeps idle connections open.
    #[arg(long, env = "IMAGE_SERVICE_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// HTTP/2 keepalive PING interval on gRPC connections (a peer that doesn't
    /// answer within 10 s is dropped).
    #[arg(long, env = "IMAGE_SERVICE_HTTP2_KEEPALIVE", default_value = "30s", value_parser = parse_duration)]
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

impl Default for ServeArgs {
    /// The same values as the command line without flags.
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            catalog: None,
            watch_catalog: false,
            database_url: None,
            no_migrate: false,
            database_startup_timeout: Duration::from_secs(30),
            pool: PoolArgs::default(),
            auth_tokens: None,
            log_format: LogFormat::Text,
            access_log: false,
            shutdown_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(20),
            max_in_flight: 1024,
            grpc_max_streams: 256,
            http2_keepalive: Duration::from_secs(30),
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            idle_timeout: Duration::from_secs(300),
            tls: TlsArgs::default(),
            advertise_address: None,
            otlp_endpoint: None,
            otlp_ca: None,
        }
    }
}

/// The REST body limit the server always had; for gRPC, stricter than the
/// customary 4 MiB, and still thousands of times the largest request of these APIs.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 1024 * 1024;

/// A size in bytes such as `4MiB`, `512KiB` or a bare number of bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 4MiB, 512KiB or 65536"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        other => return Err(format!("unknown size unit {other:?}: use B, KiB or MiB")),
    };
    match value.checked_mul(scale) {
        Some(0) => Err("the size must be at least 1 byte".to_owned()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?} is too large")),
    }
}

/// A duration such as `20s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 20s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        other => return Err(format!("unknown duration unit {other:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text:?}: {err}"))
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
        default_value_t = 16
    )]
    pub size: usize,

    /// How long a call waits for a connection (from the pool, or a new one)
    /// before it answers UNAVAILABLE.
    #[arg(long = "database-acquire-timeout", env = "IMAGE_SERVICE_DATABASE_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub acquire_timeout: Duration,

    /// How long one statement may run: the server's statement_timeout, and the
    /// client's own deadline for an answer.
    #[arg(long = "database-statement-timeout", env = "IMAGE_SERVICE_DATABASE_STATEMENT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub statement_timeout: Duration,
}

impl Default for PoolArgs {
    fn default() -> Self {
        Self {
            size: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
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
        let default = ServeArgs::default();
        assert_eq!(parsed.grpc_listen, default.grpc_listen);
        assert_eq!(parsed.http_listen, default.http_listen);
        assert_eq!(parsed.catalog, default.catalog);
        assert_eq!(parsed.log_format, default.log_format);
        assert_eq!(parsed.access_log, default.access_log);
        assert_eq!(parsed.shutdown_delay, default.shutdown_delay);
        assert_eq!(parsed.drain_timeout, default.drain_timeout);
        assert_eq!(parsed.max_in_flight, default.max_in_flight);
        assert_eq!(parsed.grpc_max_streams, default.grpc_max_streams);
        assert_eq!(parsed.http2_keepalive, default.http2_keepalive);
        assert_eq!(parsed.max_request_size, default.max_request_size);
        assert_eq!(parsed.watch_catalog, default.watch_catalog);
        assert_eq!(parsed.idle_timeout, default.idle_timeout);
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4MiB"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("4GB").is_err());
        assert!(parse_size("big").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
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
