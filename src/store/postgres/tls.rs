//! TLS to PostgreSQL, set the libpq way in the database URL: `sslmode` and
//! `sslrootcert`, so the URL a managed database's documentation gives works
//! as it is (`?sslmode=verify-full&sslrootcert=/path/root.crt`).
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require` and no
//! root certificates, so these two parameters are taken out of the URL here
//! and turned into a rustls connector (tokio-postgres-rustls):
//!
//! | sslmode | TLS | server certificate |
//! |---|---|---|
//! | absent, `disable` | no | - |
//! | `prefer` | when the server offers it | not checked |
//! | `require` | yes | not checked, or as `verify-ca` when `sslrootcert` is given |
//! | `verify-ca` | yes | chain to `sslrootcert` |
//! | `verify-full` | yes | chain to `sslrootcert`, and the host name |
//!
//! An absent `sslmode` is plaintext (libpq would try `prefer`), as before TLS
//! was supported: a URL that worked keeps connecting the same way.

use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pool::DatabaseError;

/// How the connection is secured, from the URL's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL with its TLS parameters taken out.
#[derive(Debug)]
pub struct TlsSettings {
    /// The URL without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub url: String,
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL. Other
    /// connection strings (libpq's `key=value` form) pass through as they are,
    /// their `sslmode` read by tokio-postgres (`require` is TLS without
    /// certificate checks, as in libpq).
    pub fn from_url(url: &str) -> Result<Self, DatabaseError> {
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
            let mode = match url.parse::<tokio_postgres::Config>() {
                Ok(config) if config.get_ssl_mode() == SslMode::Require => Mode::Require,
                _ => Mode::Disable,
            };
            return Ok(Self {
                url: url.to_owned(),
                mode,
                root_cert: None,
            });
        };
        let mut kept = Vec::new();
        let mut mode = Mode::Disable;
        let mut root_cert = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = || {
                percent_decode_str(value)
                    .decode_utf8()
                    .map(|v| v.into_owned())
                    .map_err(|_| DatabaseError::Url(format!("{key} is not UTF-8")))
            };
            match key {
                "sslmode" => {
                    mode = match value()?.as_str() {
                        "disable" => Mode::Disable,
                        "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            return Err(DatabaseError::Url(format!(
                                "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(value()?)),
                _ => kept.push(pair),
            }
        }
        if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) && root_cert.is_none() {
            return Err(DatabaseError::Url(
                "sslmode verify-ca and verify-full need sslrootcert=FILE (PEM CA certificates)"
                    .into(),
            ));
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(Self {
            url,
            mode,
            root_cert,
        })
    }

    /// What tokio-postgres should ask the server for.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The TLS connector, or `None` for plaintext. Reads `sslrootcert`; a
    /// missing or unusable file is an error naming it.
    pub fn connector(&self) -> Result<Option<MakeRustlsConnect>, DatabaseError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| DatabaseError::Url(format!("TLS: {err}")))?;
        let roots = match &self.root_cert {
            Some(path) => Some(
                crate::transport::tls::read_roots(path)
                    .map_err(|err| DatabaseError::Url(format!("sslrootcert: {err}")))?,
            ),
            None => None,
        };
        let config = match (self.mode, roots) {
            (Mode::Disable, _) => return Ok(None),
            (Mode::Prefer, _) | (Mode::Require, None) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(RelaxedVerifier {
                    provider,
                    chain: None,
                }))
                .with_no_client_auth(),
            (Mode::VerifyFull, Some(roots)) => {
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            (Mode::Require | Mode::VerifyCa, Some(roots)) => {
                let chain =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|err| DatabaseError::Url(format!("sslrootcert: {err}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(RelaxedVerifier {
                        provider,
                        chain: Some(chain),
                    }))
                    .with_no_client_auth()
            }
            // from_url refuses verify modes without sslrootcert.
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                return Err(DatabaseError::Url(
                    "sslmode verify-ca and verify-full need sslrootcert=FILE".into(),
                ));
            }
        };
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

/// The checks libpq makes below `verify-full`: with no root (`prefer`,
/// `require`), none on the certificate, so the connection is encrypted
/// without knowing who is at the other end; with a root (`verify-ca`), the
/// chain must lead to it, whatever host name the certificate is for. Either
/// way the handshake signatures are checked, so the server holds the key of
/// the certificate it sent.
#[derive(Debug)]
struct RelaxedVerifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let settings = TlsSettings::from_url(
            "postgres://app@db:5432/images?options=-c%20search_path%3Dimages&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Froot.crt",
        )
        .unwrap();
        assert_eq!(
            settings.url,
            "postgres://app@db:5432/images?options=-c%20search_path%3Dimages"
        );
        assert_eq!(settings.mode, Mode::VerifyFull);
        assert_eq!(
            settings.root_cert,
            Some(PathBuf::from("/etc/ca dir/root.crt"))
        );
        assert_eq!(settings.ssl_mode(), SslMode::Require);

        let plain = TlsSettings::from_url("postgres://app@db/images").unwrap();
        assert_eq!(
            (plain.mode, plain.url.as_str()),
            (Mode::Disable, "postgres://app@db/images")
        );
        assert!(plain.connector().unwrap().is_none());
        let only_tls = TlsSettings::from_url("postgres://app@db/images?sslmode=require").unwrap();
        assert_eq!(
            (only_tls.mode, only_tls.url.as_str()),
            (Mode::Require, "postgres://app@db/images")
        );
        assert!(only_tls.connector().unwrap().is_some());
        let key_value = TlsSettings::from_url("host=db user=app sslmode=require").unwrap();
        assert_eq!(key_value.mode, Mode::Require);
    }

    #[test]
    fn bad_tls_parameters_are_refused_with_the_reason() {
        let err = |url: &str| TlsSettings::from_url(url).unwrap_err().to_string();
        assert!(err("postgres://db/x?sslmode=allow-all").contains("sslmode \"allow-all\""));
        assert!(err("postgres://db/x?sslmode=verify-full").contains("need sslrootcert"));
        let missing = TlsSettings::from_url(
            "postgres://db/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap()
        .connector()
        .err()
        .unwrap()
        .to_string();
        assert!(
            missing.contains("/nonexistent/ca.pem") && missing.contains("cannot read"),
            "{missing}"
        );
    }
}
