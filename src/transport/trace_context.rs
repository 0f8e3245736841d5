//! W3C trace context on every call: the call's span joins the caller's trace
//! (`traceparent`, `tracestate`) or starts one, and its ids are recorded so
//! every log line of the call carries them. Exporting the spans is
//! `ops::telemetry`'s; this only needs to know whether it is on.

use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once spans are exported: call spans must then exist at the default level.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether call spans are exported (set when the exporter is installed).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Marks call spans as exported, from now on.
pub fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
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
