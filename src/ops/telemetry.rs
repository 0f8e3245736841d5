//! Log output (text or JSON lines on stdout, level from RUST_LOG, default info)
//! and traces: each call's span joins the caller's W3C trace, and with an OTLP
//! endpoint the spans are exported to a collector in batches.

use std::path::Path;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
};
use tonic::transport::{Certificate, ClientTlsConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::transport::trace_context;

/// How log lines are written.
// No doc comments on the variants: clap would print them in --help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// tokio-postgres logs the server's NOTICEs at INFO ("relation already exists, skipping").
const DEFAULT_FILTER: &str = "info,tokio_postgres=warn";

/// The `service.name` of the exported spans.
pub const SERVICE_NAME: &str = "image-service";

#[derive(Debug, thiserror::Error)]
#[error("--otlp-endpoint {endpoint}: {message}")]
pub struct TelemetryError {
    endpoint: String,
    message: String,
}

/// Owns the span exporter, if any; [`Telemetry::shutdown`] sends what is still buffered.
#[must_use = "call shutdown() at exit, or buffered spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still in the batch (waiting for the collector at most
    /// the exporter's timeout) and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "could not export the last spans");
        }
    }
}

/// Installs the global subscriber: the log lines, and with `otlp_endpoint` the
/// span export. Must run inside a Tokio runtime when exporting (the gRPC client
/// lives there). A second call (tests) leaves the first subscriber in place.
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    otlp_ca: Option<&Path>,
) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let provider = otlp_endpoint
        .map(|endpoint| tracer_provider(endpoint, otlp_ca))
        .transpose()?;
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match format {
        // Colours only on a terminal: escape codes in a log file or collector are noise.
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init(),
    };
    if installed.is_ok() && provider.is_some() {
        trace_context::set_exporting();
    }
    Ok(Telemetry { provider })
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

/// A batch exporter over OTLP/gRPC: spans are queued and sent from a
/// background thread, so a call never waits for the collector.
fn tracer_provider(endpoint: &str, ca: Option<&Path>) -> Result<SdkTracerProvider, TelemetryError> {
    let fail = |message: String| TelemetryError {
        endpoint: endpoint.to_owned(),
        message,
    };
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint);
    if endpoint.starts_with("https://") {
        exporter = exporter.with_tls_config(collector_tls(ca).map_err(fail)?);
    } else if let Some(ca) = ca {
        return Err(fail(format!(
            "--otlp-ca {} is for an https:// endpoint",
            ca.display()
        )));
    }
    let exporter = exporter.build().map_err(|err| fail(err.to_string()))?;
    let resource = Resource::builder_empty()
        .with_service_name(SERVICE_NAME)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(SkipProbes(Sampler::ParentBased(Box::new(
            Sampler::AlwaysOn,
        ))))
        .with_batch_exporter(exporter)
        .build())
}

/// TLS to the collector: the public roots built in, plus the CA certificates
/// of `ca` (PEM) when given. The host name is checked.
fn collector_tls(ca: Option<&Path>) -> Result<ClientTlsConfig, String> {
    let config = ClientTlsConfig::new().with_webpki_roots();
    let Some(path) = ca else {
        return Ok(config);
    };
    // Checked here, since tonic only parses it when connecting.
    let pem = crate::transport::tls::read(path).map_err(|err| format!("--otlp-ca: {err}"))?;
    crate::transport::tls::parse_certs(path, &pem).map_err(|err| format!("--otlp-ca: {err}"))?;
    Ok(config.ca_certificate(Certificate::from_pem(pem)))
}

/// Probes and scrapes, which come every few seconds from every kubelet and
/// Prometheus and would bury the traces of real calls.
const UNTRACED_METHODS: [&str; 5] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

/// Drops the spans of probes (by their `method` attribute); the others follow
/// the caller's sampling decision, and new traces are all sampled.
#[derive(Debug, Clone)]
struct SkipProbes(Sampler);

impl ShouldSample for SkipProbes {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let probe = attributes.iter().any(|kv| {
            kv.key.as_str() == "method" && UNTRACED_METHODS.contains(&kv.value.as_str().as_ref())
        });
        if !probe {
            return self.0.should_sample(
                parent_context,
                trace_id,
                name,
                span_kind,
                attributes,
                links,
            );
        }
        SamplingResult {
            decision: SamplingDecision::Drop,
            attributes: Vec::new(),
            trace_state: parent_context
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}
