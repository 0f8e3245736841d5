//! Log output (text or JSON lines on stdout, level from RUST_LOG, default info)
//! and traces: each call's span joins the caller's W3C trace, and with an OTLP
//! endpoint the spans are exported to a collector in batches.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Link, SpanId, SpanKind, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SamplingResult, SdkTracerProvider,
    ShouldSample,
};
use tonic::transport::{Certificate, ClientTlsConfig};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// tokio-postgres logs the server's NOTICEs at INFO ("relation already exists, skipping").
const DEFAULT_FILTER: &str = "info,tokio_postgres=warn";

/// The `service.name` of the exported spans.
pub const SERVICE_NAME: &str = "image-service";

/// Set once spans are exported: call spans must then exist at the default level.
static EXPORTING: AtomicBool = AtomicBool::new(false);

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

/// Whether call spans are exported (set by [`init`] with an OTLP endpoint).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
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
        EXPORTING.store(true, Ordering::Relaxed);
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
    let pem = crate::tls::read(path).map_err(|err| format!("--otlp-ca: {err}"))?;
    crate::tls::parse_certs(path, &pem).map_err(|err| format!("--otlp-ca: {err}"))?;
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

/// Reads W3C trace context from request headers (or gRPC metadata, the same map).
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.get(key).and_then(|v| v.to_str().ok())?;
        (key != "traceparent" || has_traceparent_layout(value)).then_some(value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Fields of the W3C lengths (2-32-16-2 hex digits): the SDK's parser takes
/// shorter ids as numbers, which would log a trace id the caller never sent.
fn has_traceparent_layout(value: &str) -> bool {
    let lengths = value.trim().split('-').map(str::len).take(4);
    lengths.eq([2, 32, 16, 2])
}

/// The caller's span from `traceparent` (and its `tracestate`); invalid when
/// the header is missing or malformed.
fn caller_context(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes `span` (a call's span, with empty `trace_id`, `span_id`,
/// `parent_span_id`, `otel.name` and `otel.kind` fields) a child of the
/// caller's trace from `traceparent`/`tracestate`, or the root of a new trace,
/// and records the ids so every log line of the call carries them. A disabled
/// span costs nothing here. Returns the call's trace id (none for a disabled span).
pub fn join_caller_trace(span: &Span, headers: &HeaderMap, name: &str) -> Option<TraceId> {
    if span.is_disabled() {
        return None;
    }
    let caller = caller_context(headers);
    let parent = caller.span().span_context().clone();
    let (trace_id, span_id) = if span.set_parent(caller).is_ok() {
        // Exported: the SDK makes the ids (and samples as the caller asked).
        span.record("otel.name", name);
        span.record("otel.kind", "server");
        let context = span.context();
        let ids = context.span().span_context().clone();
        (ids.trace_id(), ids.span_id())
    } else {
        // Logs only: the same ids an exported span would get.
        let ids = RandomIdGenerator::default();
        let trace_id = if parent.is_valid() {
            parent.trace_id()
        } else {
            ids.new_trace_id()
        };
        (trace_id, ids.new_span_id())
    };
    record_ids(
        span,
        trace_id,
        span_id,
        parent.is_valid().then(|| parent.span_id()),
    );
    Some(trace_id)
}

/// The trace id a failed call reports in `x-server-trace-id`: the one its span
/// got, else the caller's from `traceparent`, else a new one. Worked out only
/// when a call fails, so that a call whose span is off pays nothing for it.
pub fn trace_id_of_failed_call(
    known: Option<TraceId>,
    traceparent: Option<&http::HeaderValue>,
) -> TraceId {
    if let Some(trace_id) = known {
        return trace_id;
    }
    if let Some(value) = traceparent {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", value.clone());
        let caller = caller_context(&headers);
        let ids = caller.span().span_context().clone();
        if ids.is_valid() {
            return ids.trace_id();
        }
    }
    RandomIdGenerator::default().new_trace_id()
}

/// Renames the exported span of `span` (already started, so `otel.name` no longer applies).
pub fn rename_exported(span: &Span, name: &str) {
    span.context().span().update_name(name.to_owned());
}

fn record_ids(span: &Span, trace_id: TraceId, span_id: SpanId, parent: Option<SpanId>) {
    span.record("trace_id", tracing::field::display(trace_id));
    span.record("span_id", tracing::field::display(span_id));
    if let Some(parent) = parent {
        span.record("parent_span_id", tracing::field::display(parent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(traceparent: &'static str) -> opentelemetry::trace::SpanContext {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static(traceparent));
        headers.insert("tracestate", http::HeaderValue::from_static("vendor=v1"));
        caller_context(&headers).span().span_context().clone()
    }

    #[test]
    fn reads_a_valid_traceparent_only() {
        let valid = caller("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert!(valid.is_valid() && valid.is_remote() && valid.is_sampled());
        assert_eq!(
            valid.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(valid.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(valid.trace_state().header(), "vendor=v1");
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(!caller(bad).is_valid(), "{bad}");
        }
    }
}
