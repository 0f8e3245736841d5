//! Log output: text or JSON lines on stdout, level from RUST_LOG (default info).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// tokio-postgres logs the server's NOTICEs at INFO ("relation already exists, skipping").
const DEFAULT_FILTER: &str = "info,tokio_postgres=warn";

/// Installs the global subscriber. A second call (tests) leaves the first in place.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Text lines on stderr, for the commands whose stdout is their output (export).
pub fn init_stderr() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
