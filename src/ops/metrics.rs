//! Prometheus metrics, exposed at `GET /metrics` on the HTTP listener, under the
//! conventional gRPC server names so existing dashboards work:
//! `grpc_server_started_total`, `grpc_server_handled_total` (by code) and
//! `grpc_server_handling_seconds`, by service and method, for calls of both
//! faces (a REST call counts as the gRPC call it runs). Plus calls in flight,
//! the catalog's size and its reloads.
//!
//! The series of every method of the served services are created at start and
//! kept in an immutable map, so counting a call is a map lookup and a few
//! atomic increments: no lock on the hot path. Other paths (health,
//! reflection) go through the registry's families.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prost_reflect::DescriptorPool;

use crate::store::postgres::{Database, ErrorKind};
use crate::store::replica::ReplicaStatus;
use crate::transport::limits::InFlight;
use crate::transport::request_context::CallMeter;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

/// The grpc_code label values, spelled as grpc-go's `codes.Code.String()`
/// spells them (go-grpc-prometheus labels by it, and so do the dashboards and
/// alerts written for it): `NotFound`, not `NOT_FOUND`; `Canceled`, one l.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

fn new_histogram() -> Histogram {
    // 50 µs to about 3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.5, 13))
}

/// The series of one method, resolved once.
struct MethodSeries {
    started: Counter,
    handled: [Counter; 17],
    seconds: Histogram,
}

pub struct Metrics {
    registry: Registry,
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    seconds: HistogramFamily,
    /// Looked up twice per call: foldhash, not SipHash (keys are our own paths).
    known: HashMap<String, MethodSeries, foldhash::fast::RandomState>,
    /// The `grpc_type` of the streaming methods of the other services we
    /// serve (health's Watch, reflection), by path; any other path is unary.
    streaming: HashMap<String, &'static str, foldhash::fast::RandomState>,
    in_flight_gauge: Gauge,
    in_flight: Arc<InFlight>,
    catalog_images: Family<ApiLabels, Gauge>,
    catalog_reloads: Family<ReloadLabels, Counter>,
    catalog_loaded: Gauge<f64, AtomicU64>,
    database: Arc<OnceLock<Database>>,
    replica: Arc<OnceLock<Arc<ReplicaStatus>>>,
}

impl Metrics {
    /// Metrics for the methods of `services` (found in `pool`) and any other path.
    pub fn new(pool: &DescriptorPool, services: &[&str], in_flight: Arc<InFlight>) -> Self {
        let mut registry = Registry::default();
        let started = Family::<MethodLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let seconds = HistogramFamily::new_with_constructor(new_histogram);
        let in_flight_gauge = Gauge::default();
        let catalog_images = Family::<ApiLabels, Gauge>::default();
        let catalog_reloads = Family::<ReloadLabels, Counter>::default();
        let catalog_loaded = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "grpc_server_started",
            "Calls started on the server, by service and method",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "Calls finished on the server, by service, method and code",
            handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time to answer a call, by service and method",
            seconds.clone(),
        );
        registry.register(
            "image_service_calls_in_flight",
            "Calls being answered now, both faces",
            in_flight_gauge.clone(),
        );
        registry.register(
            "image_service_catalog_images",
            "Images in the served in-memory catalog, by API",
            catalog_images.clone(),
        );
        registry.register(
            "image_service_catalog_reloads",
            "Catalog reloads (SIGHUP or file change), by result (ok, failed)",
            catalog_reloads.clone(),
        );
        registry.register(
            "image_service_catalog_loaded_timestamp_seconds",
            "When the served catalog file was last loaded successfully (Unix time)",
            catalog_loaded.clone(),
        );
        let database = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(DatabaseCollector(database.clone())));
        let replica = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(ReplicaCollector(replica.clone())));
        for result in ["ok", "failed"] {
            drop(catalog_reloads.get_or_create(&ReloadLabels { result }));
        }

        let mut metrics = Self {
            registry,
            started,
            handled,
            seconds,
            known: HashMap::default(),
            streaming: streaming_methods(),
            in_flight_gauge,
            in_flight,
            catalog_images,
            catalog_reloads,
            catalog_loaded,
            database,
            replica,
        };
        for service in services.iter().filter_map(|s| pool.get_service_by_name(s)) {
            for method in service.methods() {
                let path = format!("/{}/{}", service.full_name(), method.name());
                let series = metrics.series(service.full_name(), method.name(), grpc_type(&method));
                metrics.known.insert(path, series);
            }
        }
        metrics
    }

    fn series(&self, service: &str, method: &str, grpc_type: &'static str) -> MethodSeries {
        let labels = MethodLabels {
            grpc_type,
            grpc_service: service.to_owned(),
            grpc_method: method.to_owned(),
        };
        let handled = std::array::from_fn(|code| {
            self.handled
                .get_or_create(&HandledLabels {
                    grpc_type,
                    grpc_service: service.to_owned(),
                    grpc_method: method.to_owned(),
                    grpc_code: CODE_NAMES[code],
                })
                .clone()
        });
        MethodSeries {
            started: self.started.get_or_create(&labels).clone(),
            handled,
            seconds: self.seconds.get_or_create(&labels).clone(),
        }
    }

    /// The series of a path outside our own services (health, reflection, unknown).
    fn other(&self, path: &str) -> MethodSeries {
        let (service, method) = split_path(path);
        let grpc_type = self.streaming.get(path).copied().unwrap_or("unary");
        self.series(service, method, grpc_type)
    }

    /// A call to the gRPC `path` (`/package.Service/Method`) began.
    pub fn call_started(&self, path: &str) {
        match self.known.get(path) {
            Some(series) => {
                series.started.inc();
            }
            None => {
                self.other(path).started.inc();
            }
        }
    }

    /// A call to `path` ended with `code` after `elapsed`.
    pub fn call_finished(&self, path: &str, code: i32, elapsed: Duration) {
        let index = usize::try_from(code).ok().filter(|i| *i < 17).unwrap_or(2);
        let observe = |series: &MethodSeries| {
            series.handled[index].inc();
            series.seconds.observe(elapsed.as_secs_f64());
        };
        match self.known.get(path) {
            Some(series) => observe(series),
            None => observe(&self.other(path)),
        }
    }

    /// Records how many images the in-memory catalog serves.
    pub fn set_catalog_size(&self, compute: usize, container: usize) {
        for (api, count) in [("compute", compute), ("container_registry", container)] {
            self.catalog_images
                .get_or_create(&ApiLabels { api })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Reports `database`'s pool state and errors from now on (read at each scrape).
    pub fn watch_database(&self, database: Database) {
        let _ = self.database.set(database);
    }

    /// Reports a cached replica's standing from now on (read at each scrape).
    pub fn watch_replica(&self, status: Arc<ReplicaStatus>) {
        let _ = self.replica.set(status);
    }

    /// Counts a catalog reload that succeeded (`ok`) or kept the old catalog.
    pub fn catalog_reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.catalog_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }

    /// Records that the catalog file was loaded successfully just now.
    pub fn set_catalog_loaded_now(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.catalog_loaded.set(now.as_secs_f64());
    }

    /// The exposition text (OpenMetrics).
    pub fn render(&self) -> String {
        self.in_flight_gauge
            .set(i64::try_from(self.in_flight.in_flight()).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("known_methods", &self.known.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The PostgreSQL backend's pool state and error counts, read at scrape time
/// (nothing is written on the query path but one atomic add per error).
#[derive(Debug)]
struct DatabaseCollector(Arc<OnceLock<Database>>);

impl Collector for DatabaseCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(database) = self.0.get() else {
            return Ok(());
        };
        let state = database.pool_state();
        let gauge = |value: usize| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        for (name, help, value) in [
            (
                "image_service_database_pool_max_connections",
                "Most connections the PostgreSQL pool may open",
                state.max,
            ),
            (
                "image_service_database_pool_connections",
                "Connections to PostgreSQL open now, in use or idle",
                state.open,
            ),
            (
                "image_service_database_pool_idle_connections",
                "Open connections to PostgreSQL not in use",
                state.idle,
            ),
            (
                "image_service_database_pool_waiting",
                "Calls waiting for a PostgreSQL connection",
                state.waiting,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            gauge(value).encode(metric)?;
        }
        let mut family = encoder.encode_descriptor(
            "image_service_database_errors",
            "Failed PostgreSQL operations, by kind (timeout, unavailable, query)",
            None,
            MetricType::Counter,
        )?;
        for kind in ErrorKind::ALL {
            let labels = KindLabels {
                kind: kind.as_str(),
            };
            let metric = family.encode_family(&labels)?;
            ConstCounter::new(database.errors(kind)).encode(metric)?;
        }
        Ok(())
    }
}

/// A cached replica's standing against the database, read at scrape time.
struct ReplicaCollector(Arc<OnceLock<Arc<ReplicaStatus>>>);

impl std::fmt::Debug for ReplicaCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplicaCollector")
    }
}

impl Collector for ReplicaCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(status) = self.0.get() else {
            return Ok(());
        };
        let report = status.report();
        for (name, help, value) in [
            (
                "image_service_replica_in_step",
                "1 while this cached replica is in step with the database (reachable, caught up, notifications flowing when followed)",
                i64::from(report.in_step),
            ),
            (
                "image_service_replica_database_reachable",
                "1 while the last catch-up with the database succeeded",
                i64::from(report.reachable),
            ),
            (
                "image_service_replica_listening",
                "1 while the notification connection is up and caught up",
                i64::from(report.listening),
            ),
            (
                "image_service_replica_sequence",
                "The change numbers the served data holds, added up over the sequence's shards (grows with every change taken in)",
                report.sequence,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "image_service_replica_data_age_seconds",
            "How old the served data may be: 0 while in step with notifications flowing, else the time since the last successful catch-up",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(report.data_age.as_secs_f64()).encode(metric)?;
        for (name, help, value) in [
            (
                "image_service_replica_changes_applied",
                "Changes (images, bindings) taken in from the database",
                report.changes_applied,
            ),
            (
                "image_service_replica_reloads",
                "Times the whole catalog was loaded again (changes pruned, a catalog import)",
                report.reloads,
            ),
            (
                "image_service_replica_listener_connects",
                "Times the notification connection was (re)established and caught up",
                report.listener_connects,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}

/// A method's `grpc_type`, as go-grpc-prometheus names the four kinds.
fn grpc_type(method: &prost_reflect::MethodDescriptor) -> &'static str {
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => "unary",
        (true, false) => "client_stream",
        (false, true) => "server_stream",
        (true, true) => "bidi_stream",
    }
}

/// The streaming methods of health and both reflection versions, by path.
fn streaming_methods() -> HashMap<String, &'static str, foldhash::fast::RandomState> {
    let mut streaming = HashMap::default();
    for pool in crate::proto::STANDARD_DESCRIPTOR_SETS
        .iter()
        .filter_map(|set| DescriptorPool::decode(*set).ok())
    {
        for service in pool.services() {
            for method in service.methods() {
                let kind = grpc_type(&method);
                if kind != "unary" {
                    let path = format!("/{}/{}", service.full_name(), method.name());
                    streaming.insert(path, kind);
                }
            }
        }
    }
    streaming
}

/// `/package.Service/Method` as (service, method); anything else as ("unknown", path).
fn split_path(path: &str) -> (&str, &str) {
    path.strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .unwrap_or(("unknown", path))
}

impl CallMeter for Metrics {
    fn call_started(&self, path: &str) {
        Metrics::call_started(self, path);
    }

    fn call_finished(&self, path: &str, code: i32, elapsed: Duration) {
        Metrics::call_finished(self, path, code, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_labels_are_spelled_as_grpc_go_spells_them() {
        // tonic's Debug names are grpc-go's, except that Go writes "OK" and "Canceled".
        for (number, name) in CODE_NAMES.iter().enumerate() {
            let go_name = match format!("{:?}", tonic::Code::from(number as i32)).as_str() {
                "Ok" => "OK".to_owned(),
                "Cancelled" => "Canceled".to_owned(),
                other => other.to_owned(),
            };
            assert_eq!(*name, go_name, "code {number}");
        }
    }

    #[test]
    fn streaming_methods_are_typed_as_go_grpc_prometheus_types_them() {
        let pool = crate::proto::descriptor_pool().unwrap();
        let metrics = Metrics::new(pool, &[], InFlight::new(4));
        for (path, kind) in [
            ("/grpc.health.v1.Health/Watch", "server_stream"),
            ("/grpc.health.v1.Health/Check", "unary"),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "bidi_stream",
            ),
            (
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                "bidi_stream",
            ),
        ] {
            metrics.call_started(path);
            let (service, method) = split_path(path);
            let line = format!(
                r#"grpc_server_started_total{{grpc_type="{kind}",grpc_service="{service}",grpc_method="{method}"}} 1"#
            );
            let text = metrics.render();
            assert!(text.contains(&line), "{line}\n{text}");
        }
    }

    #[test]
    fn counts_known_and_other_methods_by_code() {
        let pool = crate::proto::descriptor_pool().unwrap();
        let metrics = Metrics::new(
            pool,
            &["yandex.cloud.compute.v1.ImageService"],
            InFlight::new(4),
        );
        let get = "/yandex.cloud.compute.v1.ImageService/Get";
        metrics.call_started(get);
        metrics.call_finished(get, 5, Duration::from_micros(120));
        metrics.call_started("/grpc.health.v1.Health/Check");
        metrics.call_finished("/grpc.health.v1.Health/Check", 0, Duration::from_micros(50));
        let text = metrics.render();
        assert!(text.contains(r#"grpc_server_started_total{grpc_type="unary",grpc_service="yandex.cloud.compute.v1.ImageService",grpc_method="Get"} 1"#), "{text}");
        assert!(text.contains(r#"grpc_server_handled_total{grpc_type="unary",grpc_service="yandex.cloud.compute.v1.ImageService",grpc_method="Get",grpc_code="NotFound"} 1"#), "{text}");
        assert!(
            text.contains(r#"grpc_method="Check",grpc_code="OK"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("grpc_server_handling_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains("image_service_calls_in_flight 0"), "{text}");
    }
}
