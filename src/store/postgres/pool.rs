//! Connections to PostgreSQL: a pool with bounded waits, prepared statements
//! cached per connection, and errors mapped to [`RepositoryError`].
//!
//! Every wait is bounded, so a database that is down or slow makes calls fail
//! fast with UNAVAILABLE instead of hanging: taking a connection (from the
//! pool or by connecting) waits at most the acquire timeout; a statement runs
//! at most the statement timeout, enforced by the server (`statement_timeout`)
//! and by the client (a network that no longer answers; that connection is
//! then closed, not pooled).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement};

use super::tls::TlsSettings;

use crate::store::RepositoryError;
use crate::transport::deadline;

/// Prepared statements kept per connection before the cache starts over: List
/// queries vary with the filter's shape, so their number has no fixed bound.
const MAX_CACHED_STATEMENTS: usize = 256;

/// Why the database could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Limits of the connection pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections the pool opens.
    pub size: usize,
    /// How long a call waits for a connection before it answers UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// How long one statement may run (the server's `statement_timeout` and
    /// the client's own deadline for an answer).
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// A pool of connections to one database. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    statement_timeout: Duration,
    errors: Arc<ErrorCounts>,
    /// How the pool connects, for a connection of its own outside the pool
    /// (a cached replica's LISTEN for changes).
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("pool", &self.pool_state())
            .finish_non_exhaustive()
    }
}

/// Why a database operation failed, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No connection in time, a statement past its timeout.
    Timeout,
    /// Connection refused or lost, the server shutting down or full.
    Unavailable,
    /// The server refused the statement (bad SQL, schema mismatch, bad data).
    Query,
}

impl ErrorKind {
    pub const ALL: [Self; 3] = [Self::Timeout, Self::Unavailable, Self::Query];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Query => "query",
        }
    }
}

/// Failed operations since start, by [`ErrorKind`].
#[derive(Debug, Default)]
struct ErrorCounts([AtomicU64; 3]);

/// The pool's state at one moment, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Most connections the pool may open.
    pub max: usize,
    /// Connections open now, in use or idle.
    pub open: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
}

impl Database {
    /// Builds the pool; connects lazily, so this succeeds with the database down.
    pub fn connect(url: &str, limits: &PoolSettings) -> Result<Self, DatabaseError> {
        let tls = TlsSettings::from_url(url)?;
        let mut config: tokio_postgres::Config = tls
            .url
            .parse()
            .map_err(|err: tokio_postgres::Error| DatabaseError::Url(err.to_string()))?;
        config.ssl_mode(tls.ssl_mode());
        let timeout_ms = limits.statement_timeout.as_millis().max(1);
        let options = format!(
            "{} -c statement_timeout={timeout_ms}",
            config.get_options().unwrap_or_default()
        );
        config
            .options(options.trim_start())
            .connect_timeout(limits.acquire_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("image-service");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let connector = tls.connector()?;
        let manager = match connector.clone() {
            Some(connector) => Manager::from_config(config.clone(), connector, manager_config),
            None => Manager::from_config(config.clone(), NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(limits.size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(limits.acquire_timeout))
            .create_timeout(Some(limits.acquire_timeout))
            .recycle_timeout(Some(limits.acquire_timeout))
            .build()
            .map_err(|err| DatabaseError::Pool(err.to_string()))?;
        Ok(Self {
            pool,
            statement_timeout: limits.statement_timeout,
            errors: Arc::default(),
            config,
            tls: connector,
        })
    }

    /// The pool's state now.
    pub fn pool_state(&self) -> PoolState {
        let status = self.pool.status();
        PoolState {
            max: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        }
    }

    /// Operations that failed with `kind` since start.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors.0[kind as usize].load(Ordering::Relaxed)
    }

    fn count(&self, kind: ErrorKind) {
        self.errors.0[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `err` as a [`RepositoryError`], counted.
    fn failed(&self, err: tokio_postgres::Error) -> RepositoryError {
        self.count(kind_of(&err));
        query_error(err)
    }

    /// A connection from the pool, waiting at most the acquire timeout (and
    /// the running call's deadline).
    pub async fn connection(&self) -> Result<Object, RepositoryError> {
        let waited = match deadline::remaining() {
            Some(left) => match tokio::time::timeout(left, self.pool.get()).await {
                Ok(waited) => waited,
                Err(_) => {
                    self.count(ErrorKind::Timeout);
                    return Err(RepositoryError::DeadlineExceeded(
                        "the call's deadline (grpc-timeout) passed while waiting for a database connection".into(),
                    ));
                }
            },
            None => self.pool.get().await,
        };
        waited.map_err(|err| {
            self.count(match &err {
                PoolError::Timeout(_) => ErrorKind::Timeout,
                PoolError::Backend(err) => kind_of(err),
                _ => ErrorKind::Unavailable,
            });
            pool_error(err)
        })
    }

    /// Runs `sql` (prepared once per connection) and returns every row.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, RepositoryError> {
        self.prepared(sql, async |client, statement| {
            client.query(statement, params).await
        })
        .await
    }

    /// Runs `sql` (prepared once per connection) and returns its first row, if
    /// any: for lookups by a key, which find one row or none.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, RepositoryError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// `call` with `sql` prepared on a connection, within [`Self::deadline`].
    async fn prepared<T>(
        &self,
        sql: &str,
        call: impl AsyncFnOnce(&Object, &Statement) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, RepositoryError> {
        let client = self.connection().await?;
        let answer = self
            .deadline(async {
                let statement = prepare(&client, sql).await.map_err(|e| self.failed(e))?;
                call(&client, &statement).await.map_err(|e| self.failed(e))
            })
            .await;
        self.discard_if_late(client, answer)
    }

    /// Whether the database answers `SELECT 1` now.
    pub async fn ping(&self) -> Result<(), RepositoryError> {
        let client = self.connection().await?;
        let answer = self
            .deadline(async {
                client
                    .simple_query("SELECT 1")
                    .await
                    .map(drop)
                    .map_err(|e| self.failed(e))
            })
            .await;
        self.discard_if_late(client, answer)
    }

    /// Waits until the database answers, retrying every second for at most `limit`.
    pub async fn wait_until_reachable(&self, limit: Duration) -> Result<(), RepositoryError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut attempt = 1u32;
        loop {
            match self.ping().await {
                Ok(()) => return Ok(()),
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    return Err(RepositoryError::Unavailable(format!(
                        "the database did not answer within {limit:?}: {err}"
                    )));
                }
                Err(err) => {
                    tracing::warn!(attempt, error = %err, "waiting for the database");
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// `work` within the statement timeout (the client's own deadline, for
    /// when the network stops answering and the server's timeout can't), or
    /// within the running call's deadline when that comes first.
    async fn deadline<T>(
        &self,
        work: impl Future<Output = Result<T, RepositoryError>>,
    ) -> Result<Result<T, RepositoryError>, Late> {
        let (limit, call) = match deadline::remaining() {
            Some(left) if left < self.statement_timeout => (left, true),
            _ => (self.statement_timeout, false),
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Late { limit, call })
    }

    /// A connection of its own, outside the pool, named `purpose` in
    /// `pg_stat_activity` (`application_name`); the messages the server sends
    /// unasked (notifications) go to `messages` until the connection ends,
    /// which then closes the channel.
    pub async fn dedicated_connection(
        &self,
        purpose: &str,
        messages: tokio::sync::mpsc::UnboundedSender<tokio_postgres::AsyncMessage>,
    ) -> Result<tokio_postgres::Client, RepositoryError> {
        let mut config = self.config.clone();
        let name = config.get_application_name().unwrap_or("image-service");
        config.application_name(format!("{name} {purpose}"));
        let connecting = async {
            match &self.tls {
                Some(tls) => {
                    let (client, connection) = config.connect(tls.clone()).await?;
                    tokio::spawn(forward_messages(connection, messages));
                    Ok(client)
                }
                None => {
                    let (client, connection) = config.connect(NoTls).await?;
                    tokio::spawn(forward_messages(connection, messages));
                    Ok(client)
                }
            }
        };
        match tokio::time::timeout(self.statement_timeout, connecting).await {
            Ok(connected) => connected.map_err(|err| self.failed(err)),
            Err(_) => {
                self.count(ErrorKind::Timeout);
                Err(RepositoryError::Unavailable(format!(
                    "no connection to the database within {:?}",
                    self.statement_timeout
                )))
            }
        }
    }

    /// The statement timeout the pool's connections run with.
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }
}

/// A statement that outlived the client's deadline (`call`: the running
/// call's, else the statement timeout).
struct Late {
    limit: Duration,
    call: bool,
}

impl Database {
    /// The answer; past the deadline, an error, and the connection is closed
    /// rather than pooled: a reply may still be on its way on it.
    fn discard_if_late<T>(
        &self,
        client: Object,
        answer: Result<Result<T, RepositoryError>, Late>,
    ) -> Result<T, RepositoryError> {
        match answer {
            Ok(answer) => answer,
            Err(Late { limit, call }) => {
                self.count(ErrorKind::Timeout);
                // Stop the server's work too: nobody waits for its answer.
                let cancel = client.cancel_token();
                let bound = self.statement_timeout;
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(bound, cancel.cancel_query(NoTls)).await;
                });
                drop(Object::take(client));
                Err(if call {
                    RepositoryError::DeadlineExceeded(format!(
                        "the call's deadline (grpc-timeout) passed after {limit:?}, before the database answered"
                    ))
                } else {
                    RepositoryError::Unavailable(format!(
                        "the database did not answer within {limit:?}"
                    ))
                })
            }
        }
    }
}

/// Drives a dedicated connection, passing on what the server sends unasked,
/// until it ends or nobody listens any more.
async fn forward_messages<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    messages: tokio::sync::mpsc::UnboundedSender<tokio_postgres::AsyncMessage>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
        match message {
            Ok(message) => {
                if messages.send(message).is_err() {
                    return;
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "a dedicated database connection ended");
                return;
            }
        }
    }
}

/// A read-only transaction on one snapshot (`REPEATABLE READ`): every
/// statement in it sees the database as of its first.
pub async fn read_only_snapshot(
    client: &mut Object,
) -> Result<deadpool_postgres::Transaction<'_>, RepositoryError> {
    client
        .build_transaction()
        .read_only(true)
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(query_error)
}

async fn prepare(client: &Object, sql: &str) -> Result<Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= MAX_CACHED_STATEMENTS {
        client.statement_cache.clear();
    }
    client.prepare_cached(sql).await
}

/// The metrics' kind of a failed statement, by the same split as [`query_error`].
fn kind_of(err: &tokio_postgres::Error) -> ErrorKind {
    use tokio_postgres::error::SqlState;
    match err.code() {
        Some(code) if *code == SqlState::QUERY_CANCELED => ErrorKind::Timeout,
        code if retryable(code) => ErrorKind::Unavailable,
        _ => ErrorKind::Query,
    }
}

/// Connection trouble and the server's timeouts are worth retrying; the rest
/// (bad SQL, a schema that doesn't match) is not.
fn retryable(code: Option<&tokio_postgres::error::SqlState>) -> bool {
    use tokio_postgres::error::SqlState;
    match code {
        None => true,
        Some(code) => {
            *code == SqlState::QUERY_CANCELED
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || code.code().starts_with("08")
        }
    }
}

fn pool_error(err: PoolError) -> RepositoryError {
    match err {
        PoolError::Timeout(_) => {
            RepositoryError::Unavailable("no database connection available in time".into())
        }
        PoolError::Backend(err) => query_error(err),
        PoolError::Closed => RepositoryError::Unavailable("the connection pool is closed".into()),
        other => RepositoryError::Unavailable(format!("cannot get a database connection: {other}")),
    }
}

/// `err` and the errors under it: tokio-postgres says only "error performing
/// TLS handshake" or "error connecting to server" and keeps the why (a
/// certificate for another name, connection refused) as its source.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// A failed statement as a [`RepositoryError`]: UNAVAILABLE when worth retrying.
pub fn query_error(err: tokio_postgres::Error) -> RepositoryError {
    let message = match err.as_db_error() {
        Some(db) => format!("database error: {} ({})", db.message(), db.code().code()),
        None => format!("database connection failed: {}", with_causes(&err)),
    };
    if retryable(err.code()) {
        RepositoryError::Unavailable(message)
    } else {
        RepositoryError::Internal(message)
    }
}
