//! TLS on both listeners with rustls: loading the PEM files, swapping the
//! configuration on reload, and handshaking accepted connections off the
//! accept loop.
//!
//! The whole `ServerConfig` is rebuilt and swapped on reload, so a new client
//! CA takes effect as a new certificate does. Connections already open keep
//! the configuration they were accepted with; only new ones see the new one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

/// A client must finish its handshake within this time, so a stalled one
/// holds nothing but its own task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to pick them up.
const ACCEPTED_BACKLOG: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("TLS certificate {cert} with key {key}: {problem}")]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        problem: String,
    },
}

fn file_error(path: &Path, problem: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

/// The PEM files TLS is configured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Which listener a configuration is for: they differ in the ALPN offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// gRPC: HTTP/2 only.
    Grpc,
    /// REST: HTTP/2 or HTTP/1.1.
    Rest,
}

struct Configs {
    grpc: Arc<ServerConfig>,
    rest: Arc<ServerConfig>,
}

/// The TLS configuration in force, shared by both listeners and replaced
/// whole by [`Tls::reload`].
#[derive(Clone)]
pub struct Tls {
    files: Arc<TlsFiles>,
    current: Arc<RwLock<Arc<Configs>>>,
}

impl Tls {
    /// Reads and checks the files; any problem refuses the start.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let configs = build_configs(&files)?;
        Ok(Self {
            files: Arc::new(files),
            current: Arc::new(RwLock::new(Arc::new(configs))),
        })
    }

    /// Rereads the files and, when they are good, serves new connections with
    /// them. On error the configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let configs = Arc::new(build_configs(&self.files)?);
        // A poisoned lock only means a panic elsewhere while swapping an Arc:
        // the value inside is still whole.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = configs;
        Ok(())
    }

    /// Reloads, logging the outcome (for the SIGHUP handler).
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(()) => {
                tracing::info!(cert = %self.files.cert.display(), "TLS certificates reloaded")
            }
            Err(err) => {
                tracing::error!(error = %err, "TLS reload failed, still serving the previous certificates");
            }
        }
    }

    fn config(&self, face: Face) -> Arc<ServerConfig> {
        let configs = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match face {
            Face::Grpc => configs.grpc.clone(),
            Face::Rest => configs.rest.clone(),
        }
    }

    /// Handshakes each connection of `tcp` in a task of its own (at most
    /// [`HANDSHAKE_TIMEOUT`]) and yields those that succeed, so one slow or
    /// broken client never holds up the accept loop. Stops accepting when the
    /// returned stream is dropped.
    pub fn accept<S>(&self, face: Face, tcp: S) -> ReceiverStream<io::Result<TlsStream<TcpStream>>>
    where
        S: Stream<Item = io::Result<TcpStream>> + Send + Unpin + 'static,
    {
        let (sender, receiver) = mpsc::channel(ACCEPTED_BACKLOG);
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tcp = tcp;
            loop {
                let accepted = tokio::select! {
                    accepted = tcp.next() => accepted,
                    () = sender.closed() => break,
                };
                let stream = match accepted {
                    Some(Ok(stream)) => stream,
                    Some(Err(err)) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    None => break,
                };
                let acceptor = TlsAcceptor::from(tls.config(face));
                let sender = sender.clone();
                tokio::spawn(async move {
                    let peer = stream.peer_addr().ok();
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send(Ok(stream)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(?peer, ?face, error = %err, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(?peer, ?face, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(receiver)
    }
}

fn build_configs(files: &TlsFiles) -> Result<Configs, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    // ring, chosen explicitly rather than through the process-wide default,
    // so nothing else linked in can change it.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| file_error(&files.cert, err))?;
    let builder = match &files.client_ca {
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|err| TlsError::Rejected {
            cert: files.cert.clone(),
            key: files.key.clone(),
            problem: err.to_string(),
        })?;
    let with_alpn = |protocols: &[&[u8]]| {
        let mut config = config.clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    };
    Ok(Configs {
        grpc: with_alpn(&[b"h2"]),
        rest: with_alpn(&[b"h2", b"http/1.1"]),
    })
}

fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(path)?), provider)
        .build()
        .map_err(|err| file_error(path, err))
}

/// A file's bytes; an unreadable file is an error naming it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| file_error(path, format!("cannot read: {err}")))
}

/// Every certificate of `pem`, read from `path`; none at all is an error.
pub(crate) fn parse_certs(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_error(path, format!("bad PEM: {err}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE block in the PEM file"));
    }
    Ok(certs)
}

/// Every certificate of a PEM file; none at all is an error.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certs(path, &read(path)?)
}

/// The certificates of a PEM file as trust roots (a client CA, a database's
/// or a collector's CA).
pub(crate) fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|err| file_error(path, format!("not a usable CA certificate: {err}")))?;
    }
    Ok(roots)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => {
            file_error(path, "no PRIVATE KEY block in the PEM file")
        }
        other => file_error(path, format!("bad PEM: {other}")),
    })
}
