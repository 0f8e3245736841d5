//! Command line and environment: every flag also reads an `IMAGE_SERVICE_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";

#[derive(Debug, Parser)]
#[command(
    name = "image-service",
    version,
    about = "Yandex Cloud Compute and Container Registry ImageService, wire-compatible, from a local catalog"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API (on the built-in demo catalog unless --catalog is given).
    Serve(ServeArgs),
    /// Validate a catalog file, print what it holds and exit (non-zero when invalid).
    CheckCatalog(CheckCatalogArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the gRPC listener. Port 0 picks a free port; the bound address is logged.
    #[arg(long, env = "IMAGE_SERVICE_GRPC_LISTEN", default_value = DEFAULT_GRPC_LISTEN)]
    pub grpc_listen: SocketAddr,

    /// Catalog file (JSON: {"computeImages": [...], "containerRegistryImages": [...]}).
    /// Without it the built-in demo catalog is served.
    #[arg(long, env = "IMAGE_SERVICE_CATALOG", value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// Log line format. The level comes from RUST_LOG (default: info).
    #[arg(long, env = "IMAGE_SERVICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log one line per call at INFO (method, image id, code, latency, request ids).
    /// Without it those lines are DEBUG, off at the default level.
    #[arg(long, env = "IMAGE_SERVICE_ACCESS_LOG", value_parser = FalseyValueParser::new())]
    pub access_log: bool,
}

impl Default for ServeArgs {
    /// The same values as the command line without flags.
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            catalog: None,
            log_format: LogFormat::Text,
            access_log: false,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CheckCatalogArgs {
    /// The catalog file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

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
        assert_eq!(parsed.catalog, default.catalog);
        assert_eq!(parsed.log_format, default.log_format);
        assert_eq!(parsed.access_log, default.access_log);
    }
}
