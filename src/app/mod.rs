//! Builds the server from settings: loads the catalog, binds both listeners,
//! wires the services with health and reflection, and runs until told to stop.
//!
//! One set of tonic routes serves both faces: the gRPC listener directly, the
//! REST gateway through in-process calls (its two Gets, the hot path, call the
//! same Get objects directly, after the same authentication step). The
//! request-context layer wraps each face once.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{oneshot, watch};
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tonic_web::GrpcWebLayer;
use tower::layer::util::{Identity, Stack};
use tower::{Layer, ServiceBuilder};
use tower_http::cors::CorsLayer;

use crate::grpc;
use crate::grpc::endpoint::ApiEndpoints;
use crate::ops::backend_health::BackendHealth;
use crate::ops::metrics::Metrics;
use crate::ops::replica_health::{IN_STEP_SERVICE, ReplicaHealth};
use crate::proto;
use crate::rest::{DirectGet, DirectGets, GatewayError, RestGateway};
use crate::service::{ComputeImages, ContainerImages, Writes};
use crate::store::catalog::{Catalog, CatalogError};
use crate::store::postgres::{self, Database, DatabaseError, PostgresRepository, changes};
use crate::store::replica::{CachedReplica, FollowSettings, Follower};
use crate::store::written::durable::{DataDirError, DurableLog};
use crate::store::{
    BindingRepository, MemoryRepository, Repositories, RepositoryError, SwappableRepository,
    WrittenCatalog,
};
use crate::transport::auth::{AuthLayer, TokenStore, TokensFileError, store as token_store};
use crate::transport::deadline::DeadlineLayer;
use crate::transport::error_headers::{self, HeadersBeforeErrorLayer};
use crate::transport::http_face::{CorsOriginError, HttpFace, cors_layer};
use crate::transport::idle::{IdleIncoming, IdleTrackLayer};
use crate::transport::limits::{InFlight, InFlightLimitLayer, OversizeStatusLayer};
use crate::transport::request_context::{RequestContext, RequestContextLayer};
use crate::transport::tls::{Face, Tls, TlsError};
use reload::{CatalogReloader, ReloadTasks};

pub mod reload;
mod settings;

pub use settings::{Settings, WriteSettings};

/// The gRPC services this server implements, by full name (health reports each).
pub const SERVED_SERVICES: [&str; 3] = [
    proto::COMPUTE_IMAGE_SERVICE,
    proto::CONTAINER_REGISTRY_IMAGE_SERVICE,
    proto::OPERATION_SERVICE,
];

/// Every service of ours on both faces (REST routes, metrics, readiness):
/// the image services plus endpoint discovery, which needs no backend.
pub const PUBLIC_SERVICES: [&str; 4] = [
    proto::COMPUTE_IMAGE_SERVICE,
    proto::CONTAINER_REGISTRY_IMAGE_SERVICE,
    proto::OPERATION_SERVICE,
    proto::API_ENDPOINT_SERVICE,
];

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("database: {0}")]
    Repository(#[from] RepositoryError),
    #[error(transparent)]
    AuthTokens(#[from] TokensFileError),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("built-in descriptors are broken: {0}")]
    Descriptors(String),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    Cors(#[from] CorsOriginError),
}

/// A server whose listeners are bound and whose services are ready; `run_until` serves.
pub struct Application {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    routes: Routes,
    rest: RequestContext<RestGateway>,
    context: RequestContextLayer,
    health: HealthReporter,
    shutdown_delay: Duration,
    drain_timeout: Duration,
    limits: GrpcLimits,
    metrics: Arc<Metrics>,
    /// Watches the database, when served from one; stops with the server.
    backend_health: Option<BackendHealth>,
    /// A cached replica: reports whether it is in step (stops with the
    /// server), and keeps it in step (until the last call is answered).
    replica_health: Option<ReplicaHealth>,
    replica_follower: Option<Follower>,
    /// Prunes the database's old changes; stops with the server.
    pruner: Option<changes::Pruner>,
    /// Catalog reload (SIGHUP, --watch-catalog); stops with the server.
    catalog_reload: Option<ReloadTasks>,
    /// Rereads the --auth-tokens file on SIGHUP; stops with the server.
    tokens_reload: Option<ReloadTasks>,
    tls: Option<TlsReload>,
    /// CORS on the HTTP listener, when origins are allowed.
    cors: Option<CorsLayer>,
}

/// TLS in force on both listeners, and the SIGHUP stream that rereads its
/// files. The stream is registered at build, before anything is served, so a
/// SIGHUP can never take the default action of ending the process.
struct TlsReload {
    tls: Tls,
    hangup: Signal,
}

/// Connection and load limits of the gRPC listener.
struct GrpcLimits {
    in_flight: Arc<InFlight>,
    grpc_max_streams: u32,
    http2_keepalive: Duration,
    max_request_size: usize,
    /// Both listeners: `None` keeps idle connections open.
    idle_timeout: Option<Duration>,
}

/// A keepalive PING unanswered this long drops the connection.
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive on accepted connections, so dead peers are noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

impl Application {
    /// Loads the catalog named in `settings` (or the demo catalog), or connects
    /// to the database named there, and builds the server on it.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        if let Some(url) = &settings.database_url {
            let database = Database::connect(url, &settings.pool)?;
            database
                .wait_until_reachable(settings.database_startup_timeout)
                .await?;
            if settings.no_migrate {
                postgres::check_schema(&database).await?;
                tracing::info!("database schema up to date (--no-migrate: checked only)");
            } else {
                let applied = postgres::migrate(&database).await?;
                tracing::info!(applied, "database schema up to date");
            }
            let mut app = match settings.cache {
                Some(follow) => Self::build_cached(settings, database, follow).await?,
                None => {
                    Self::build_on_database(settings, PostgresRepository::probed(database).await?)
                        .await?
                }
            };
            // --- catalog reload: not applicable to a database ---
            tracing::info!("serving from the database: SIGHUP does not reload anything");
            app.catalog_reload = Some(
                reload::ignore_hangup("the catalog is served from the database")
                    .map_err(StartupError::Signals)?,
            );
            return Ok(app);
        }
        let catalog = match &settings.catalog {
            Some(path) => Catalog::from_file(path)?,
            None => Catalog::demo()?,
        };
        let source = settings.catalog.as_ref().map_or_else(
            || "built-in demo catalog".to_owned(),
            |p| p.display().to_string(),
        );
        tracing::info!(catalog = %source, "catalog loaded: {}", catalog.summary());
        let sizes = (catalog.compute_images.len(), catalog.container_images.len());
        let memory = Arc::new(SwappableRepository::new(MemoryRepository::new(catalog)));
        let repositories = match &settings.data_dir {
            Some(dir) => {
                let written = WrittenCatalog::durable(memory.clone(), DurableLog::open(dir)?)?;
                tracing::info!(data_dir = %dir.display(), written_images = written.written_images(), "writes kept in the data directory");
                Repositories::written(Arc::new(written))
            }
            None => Repositories::swappable(memory.clone()),
        };
        let mut app = Self::build_with_repositories(settings, repositories).await?;
        app.metrics.set_catalog_size(sizes.0, sizes.1);
        // --- catalog reload: handlers registered before anything is served ---
        let tasks = match &settings.catalog {
            Some(path) => {
                app.metrics.set_catalog_loaded_now();
                let reloader = CatalogReloader::new(path.clone(), memory, app.metrics.clone());
                reload::spawn(Arc::new(reloader), settings.watch_catalog)
            }
            None => reload::ignore_hangup("the built-in demo catalog is served"),
        };
        app.catalog_reload = Some(tasks.map_err(StartupError::Signals)?);
        Ok(app)
    }

    /// Builds the server on a database (reachable or not: no waiting, no
    /// migrating), and starts reporting its health.
    pub async fn build_with_database(
        settings: &Settings,
        database: Database,
    ) -> Result<Self, StartupError> {
        Self::build_on_database(settings, PostgresRepository::new(database)).await
    }

    async fn build_on_database(
        settings: &Settings,
        repository: PostgresRepository,
    ) -> Result<Self, StartupError> {
        let database = repository.database().clone();
        let mut app =
            Self::build_with_repositories(settings, Repositories::postgres(repository)).await?;
        app.metrics.watch_database(database.clone());
        app.pruner = Some(changes::Pruner::spawn(database.clone()));
        app.backend_health = Some(BackendHealth::spawn(
            database,
            app.health.clone(),
            &SERVED_SERVICES,
        ));
        Ok(app)
    }

    /// Builds the server on memory kept in step with a database (which must
    /// be reachable: the catalog is read from it first), and starts following it.
    pub async fn build_cached(
        settings: &Settings,
        database: Database,
        follow: FollowSettings,
    ) -> Result<Self, StartupError> {
        let writes = PostgresRepository::probed(database.clone()).await?;
        let notify = writes.notifies();
        let replica = CachedReplica::load(writes).await?;
        let mut app =
            Self::build_with_repositories(settings, Repositories::cached(replica.clone())).await?;
        app.pruner = Some(changes::Pruner::spawn(database.clone()));
        app.metrics.watch_database(database);
        app.metrics.watch_replica(replica.status().clone());
        app.replica_health = Some(ReplicaHealth::spawn(
            replica.status().clone(),
            app.health.clone(),
        ));
        let follow = FollowSettings {
            listen: follow.listen && notify,
            ..follow
        };
        app.replica_follower = Some(Follower::spawn(replica, follow));
        Ok(app)
    }

    /// Builds the server on backends the caller made (an embedding program, a test).
    pub async fn build_with_repositories(
        settings: &Settings,
        repositories: Repositories,
    ) -> Result<Self, StartupError> {
        let auth = load_auth_tokens(settings)?;
        let tokens_reload = auth
            .as_ref()
            .map(|store| token_store::reload_on_hangup(store.clone()).map(ReloadTasks::from))
            .transpose()
            .map_err(StartupError::Signals)?;
        let tls = match settings.tls.clone() {
            Some(files) => Some(TlsReload {
                tls: Tls::load(files)?,
                hangup: signal(SignalKind::hangup()).map_err(StartupError::Signals)?,
            }),
            None => None,
        };
        let cors = cors_layer(&settings.cors_allow_origins)?;
        let (grpc_listener, grpc_addr) = bind(settings.grpc_listen).await?;
        let (http_listener, http_addr) = bind(settings.http_listen).await?;
        let advertised = settings.advertise_address.clone().unwrap_or_else(|| {
            if grpc_addr.ip().is_unspecified() {
                tracing::warn!(
                    address = %grpc_addr,
                    "endpoint discovery advertises an address clients cannot dial: set --advertise-address"
                );
            }
            grpc_addr.to_string()
        });

        let (health, health_service) = tonic_health::server::health_reporter();
        for service in PUBLIC_SERVICES {
            health
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }

        let routes = Routes::new(health_service)
            .add_service(reflection_builder().build_v1()?)
            .add_service(reflection_builder().build_v1alpha()?)
            .add_service(ApiEndpoints::server(&advertised));
        let (routes, direct_gets) = add_image_services(routes, repositories, auth, settings);
        let routes = routes.prepare();

        let pool =
            proto::descriptor_pool().map_err(|err| StartupError::Descriptors(err.to_string()))?;
        let context = RequestContextLayer::new(settings.access_log);
        let in_flight = InFlight::new(settings.max_in_flight as usize);
        let metrics = Arc::new(Metrics::new(pool, &PUBLIC_SERVICES, in_flight.clone()));
        let rest = context.clone().layer(RestGateway::new(
            pool,
            &PUBLIC_SERVICES,
            routes.clone(),
            direct_gets,
            in_flight.clone(),
            metrics.clone(),
            settings.max_request_size,
        )?);
        let context = context.with_metrics(metrics.clone());

        Ok(Self {
            grpc_addr,
            http_addr,
            grpc_listener,
            http_listener,
            routes,
            rest,
            context,
            health,
            shutdown_delay: settings.shutdown_delay,
            drain_timeout: settings.drain_timeout,
            metrics,
            limits: GrpcLimits {
                in_flight,
                grpc_max_streams: settings.grpc_max_streams,
                http2_keepalive: settings.http2_keepalive,
                max_request_size: settings.max_request_size,
                idle_timeout: Some(settings.idle_timeout).filter(|t| !t.is_zero()),
            },
            backend_health: None,
            replica_health: None,
            replica_follower: None,
            pruner: None,
            catalog_reload: None,
            tokens_reload,
            tls,
            cors,
        })
    }

    /// The address the gRPC listener is bound to (the real port when 0 was asked for).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address the REST listener is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The health reporter, to mark services up or down.
    pub fn health(&self) -> &HealthReporter {
        &self.health
    }

    /// Serves both listeners until `shutdown` completes. Then, as a mesh expects
    /// of a pod being drained: health turns NOT_SERVING (and /readyz 503) at once,
    /// new calls are still served for the shutdown delay, the listeners stop
    /// accepting (HTTP/2 connections get GOAWAY) and calls in flight finish for at
    /// most the drain timeout: a client that never acknowledges the GOAWAY must
    /// not keep the process alive.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), StartupError> {
        tracing::info!(
            grpc = %self.grpc_addr,
            http = %self.http_addr,
            tls = self.tls.is_some(),
            "serving gRPC and REST"
        );
        let _catalog_reload = self.catalog_reload;
        let _tokens_reload = self.tokens_reload;
        let _replica_follower = self.replica_follower;
        let _pruner = self.pruner;
        let (stop, stopped) = watch::channel(false);
        let http_incoming = tcp_incoming(self.http_listener);
        let grpc_incoming = tcp_incoming(self.grpc_listener);
        let idle_timeout = self.limits.idle_timeout;
        // The HTTP listener: REST, or gRPC-Web through the call layers of gRPC.
        let grpc_web = ServiceBuilder::new()
            .layer(GrpcWebLayer::new())
            .layer(call_layers(self.context.clone(), &self.limits))
            .service(self.routes.clone());
        let http_face = ServiceBuilder::new()
            .option_layer(self.cors)
            .service(HttpFace::new(DeadlineLayer.layer(self.rest), grpc_web));
        let (draining, drain_started) = oneshot::channel::<()>();
        let grpc_shutdown = {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
                let _ = draining.send(());
            }
        };
        let grpc_server = Server::builder()
            .max_concurrent_streams(self.limits.grpc_max_streams)
            .http2_keepalive_interval(Some(self.limits.http2_keepalive))
            .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
            // gRPC-Web here too (HTTP/1.1 included); gRPC passes through untouched.
            .accept_http1(true)
            .layer(IdleTrackLayer::default())
            .layer(GrpcWebLayer::new())
            .layer(call_layers(self.context, &self.limits))
            .add_routes(self.routes);
        // One type for both arms: the plaintext and TLS streams differ.
        type Serving = Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;
        let (http, serve): (_, Serving) = match self.tls {
            None => (
                tokio::spawn(crate::transport::http_server::serve(
                    http_incoming,
                    http_face,
                    stopped.clone(),
                    self.drain_timeout,
                    idle_timeout,
                )),
                Box::pin(grpc_server.serve_with_incoming_shutdown(
                    IdleIncoming::new(grpc_incoming, idle_timeout),
                    grpc_shutdown,
                )),
            ),
            Some(TlsReload { tls, hangup }) => {
                tokio::spawn(reload_on_hangup(tls.clone(), hangup, stopped.clone()));
                (
                    tokio::spawn(crate::transport::http_server::serve(
                        tls.accept(Face::Rest, http_incoming),
                        http_face,
                        stopped.clone(),
                        self.drain_timeout,
                        idle_timeout,
                    )),
                    Box::pin(grpc_server.serve_with_incoming_shutdown(
                        IdleIncoming::new(tls.accept(Face::Grpc, grpc_incoming), idle_timeout),
                        grpc_shutdown,
                    )),
                )
            }
        };
        let drain_deadline = async {
            match drain_started.await {
                Ok(()) => tokio::time::sleep(self.drain_timeout).await,
                Err(_) => std::future::pending().await,
            }
        };
        let grpc = async {
            tokio::select! {
                served = serve => served,
                () = drain_deadline => {
                    tracing::warn!(
                        timeout = ?self.drain_timeout,
                        "gRPC drain timeout reached, closing the remaining connections"
                    );
                    Ok(())
                }
            }
        };
        let health = self.health.clone();
        let shutdown_delay = self.shutdown_delay;
        let backend_health = self.backend_health;
        let replica_health = self.replica_health;
        let signal = async move {
            shutdown.await;
            // The database watcher must not report SERVING again while draining.
            drop(backend_health);
            let in_step = replica_health.is_some().then_some(IN_STEP_SERVICE);
            drop(replica_health);
            for service in PUBLIC_SERVICES.into_iter().chain([""]).chain(in_step) {
                health
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            tracing::info!(delay = ?shutdown_delay, "not serving: still answering calls until the shutdown delay ends");
            tokio::time::sleep(shutdown_delay).await;
            tracing::info!("shutdown delay over: stopping the listeners and draining");
            let _ = stop.send(true);
        };
        let (served, (), _) = tokio::join!(grpc, signal, http);
        served?;
        Ok(())
    }
}

/// The layers every gRPC call passes, on the gRPC listener and as gRPC-Web.
type CallLayers = ServiceBuilder<
    Stack<
        OversizeStatusLayer,
        Stack<
            InFlightLimitLayer,
            Stack<
                DeadlineLayer,
                Stack<RequestContextLayer, Stack<HeadersBeforeErrorLayer, Identity>>,
            >,
        >,
    >,
>;

fn call_layers(context: RequestContextLayer, limits: &GrpcLimits) -> CallLayers {
    ServiceBuilder::new()
        // Outside the request context, which stamps the ids this moves.
        .layer(error_headers::layer())
        .layer(context)
        // Inside the request context: a deadline answer is logged, counted
        // and carries the request id like any other.
        .layer(DeadlineLayer)
        .layer(InFlightLimitLayer::new(limits.in_flight.clone()))
        .layer(OversizeStatusLayer::new(limits.max_request_size))
}

/// The OpenAPI document `/openapi.json` serves, as pretty JSON.
pub fn openapi_document() -> Result<String, StartupError> {
    let pool =
        proto::descriptor_pool().map_err(|err| StartupError::Descriptors(err.to_string()))?;
    Ok(crate::rest::openapi_json(pool, &PUBLIC_SERVICES)?)
}

/// Accepted TCP connections with the socket options both listeners want.
fn tcp_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE))
}

/// Rereads the TLS files on every SIGHUP until the server stops.
async fn reload_on_hangup(tls: Tls, mut hangup: Signal, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            received = hangup.recv() => match received {
                Some(()) => tls.reload_and_log(),
                None => break,
            },
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
}

/// The tokens file of `--auth-tokens`, when given: authentication is on.
fn load_auth_tokens(settings: &Settings) -> Result<Option<Arc<TokenStore>>, StartupError> {
    let Some(path) = &settings.auth_tokens else {
        tracing::info!("authentication off: every caller may read every folder");
        return Ok(None);
    };
    let tokens = TokenStore::load(path)?;
    tracing::info!(file = %path.display(), tokens = tokens.current().len(), "authentication on: image calls need a bearer token");
    Ok(Some(Arc::new(tokens)))
}

/// Both ImageServices and the Operation service, behind the authentication
/// layer when it is on (only they: health, reflection and endpoint discovery
/// stay open). Also hands back both Gets as direct calls for the REST gateway,
/// with the same authentication step.
fn add_image_services(
    routes: Routes,
    repositories: Repositories,
    auth: Option<Arc<TokenStore>>,
    settings: &Settings,
) -> (Routes, DirectGets) {
    let max_request_size = settings.max_request_size;
    let bindings = repositories
        .writes
        .clone()
        .map(|writes| writes as Arc<dyn BindingRepository>);
    let writes = match repositories.writes {
        Some(store) => {
            let writes = Writes::new(store, repositories.container.clone(), settings.writes);
            spawn_resume_pending(&writes);
            spawn_key_expiry(&writes);
            Some(writes)
        }
        None => None,
    };
    let compute = Arc::new(ComputeImages::new(repositories.compute, bindings));
    let container = Arc::new(ContainerImages::new(repositories.container, None));
    let auth = auth.map(AuthLayer::new);
    let direct = DirectGets {
        auth: auth.clone(),
        gets: vec![
            DirectGet::of(grpc::compute::GET, compute.clone()),
            DirectGet::of(grpc::container_registry::GET, container.clone()),
        ],
    };
    let compute = grpc::compute::server(compute, writes.clone(), max_request_size);
    let container = grpc::container_registry::server(container, writes.clone(), max_request_size);
    let routes = match &auth {
        Some(auth) => routes
            .add_service(auth.layer(compute))
            .add_service(auth.layer(container)),
        None => routes.add_service(compute).add_service(container),
    };
    let routes = match (writes, &auth) {
        (Some(writes), Some(auth)) => {
            routes.add_service(auth.layer(grpc::operation::server(writes, max_request_size)))
        }
        (Some(writes), None) => {
            routes.add_service(grpc::operation::server(writes, max_request_size))
        }
        (None, _) => routes,
    };
    (routes, direct)
}

/// How long to wait before asking an unreachable backend for pending operations again.
const RESUME_RETRY: Duration = Duration::from_secs(2);

/// Finishes the operations the last run left running, in the background: a
/// database that is down at start must not keep the server from serving.
fn spawn_resume_pending(writes: &Arc<Writes>) {
    let writes = Arc::downgrade(writes);
    tokio::spawn(async move {
        loop {
            let Some(live) = writes.upgrade() else {
                return;
            };
            match live.resume_pending().await {
                Ok(0) => return,
                Ok(resumed) => {
                    tracing::info!(
                        operations = resumed,
                        "finishing the operations the last run left running"
                    );
                    return;
                }
                Err(err) => tracing::debug!(error = %err, "pending operations not readable yet"),
            }
            drop(live);
            tokio::time::sleep(RESUME_RETRY).await;
        }
    });
}

/// How often expired idempotency keys are forgotten.
const KEY_EXPIRY_INTERVAL: Duration = Duration::from_secs(600);

/// Forgets expired idempotency keys now and then (a lookup ignores them anyway).
fn spawn_key_expiry(writes: &Arc<Writes>) {
    let writes = Arc::downgrade(writes);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(KEY_EXPIRY_INTERVAL);
        loop {
            every.tick().await;
            let Some(writes) = writes.upgrade() else {
                return;
            };
            match writes.expire_keys().await {
                Ok(0) => {}
                Ok(expired) => tracing::debug!(expired, "idempotency keys expired"),
                Err(err) => tracing::warn!(error = %err, "expiring idempotency keys failed"),
            }
        }
    });
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// Reflection over our descriptors plus health's and both reflection versions',
/// so that either reflection version lists every service this server has.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    proto::STANDARD_DESCRIPTOR_SETS.into_iter().fold(
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET),
        |builder, set| builder.register_encoded_file_descriptor_set(set),
    )
}
