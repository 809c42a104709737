//! SIP over TLS (RFC 3261 sec. 26.2, RFC 5630): rustls configurations for
//! the TLS listener and for connections we open to a trunk.
//!
//! - Server side: our certificate chain and key (PEM). Client certificates
//!   (mutual TLS) are [`ClientAuth::None`], [`ClientAuth::Optional`] or
//!   [`ClientAuth::Required`], checked against the configured roots.
//! - Client side (a connection we open: a callback, a BYE after the trunk's
//!   connection closed): the trunk's certificate is verified against the
//!   configured roots (never the system's or a public list: a trunk is a
//!   known party) for the configured name, or its IP address when none is
//!   set; we present our certificate as client certificate.
//! - Limits: handshake timeout, idle timeout and a cap on connections
//!   accepted at once ([`StreamLimits`]); beyond the cap a new connection is
//!   closed at once.
//!
//! Key files are read once at start; no key byte is logged (rustls logs
//! none, and errors here name files, never contents).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Whether the TLS listener asks connecting trunks for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client certificate is asked for and, if sent, must verify.
    Optional,
    /// A client certificate that verifies against the roots is required.
    Required,
}

/// Files and policies of the TLS transport.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Our certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// Our private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Roots the trunks' certificates are verified against (PEM); without
    /// them we open no TLS connection and ask for no client certificate.
    pub ca_file: Option<PathBuf>,
    /// Client certificates on the listener.
    pub client_auth: ClientAuth,
    /// Name the trunk's certificate must carry on connections we open
    /// (empty: the IP address we connect to).
    pub server_name: String,
    /// Limits.
    pub limits: StreamLimits,
}

/// Bounds of TLS connections (TCP has [`super::TcpLimits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Connections accepted at once; more are closed on accept.
    pub max_connections: usize,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// A connection with nothing read or written for this long is closed
    /// (`None`: never).
    pub idle_timeout: Option<Duration>,
}

impl StreamLimits {
    /// The limits of reading a handshaken connection: idle as configured,
    /// a message whole within TCP's default message timeout.
    pub(super) fn reading(&self) -> super::TcpLimits {
        super::TcpLimits {
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout.unwrap_or(Duration::MAX),
            message_timeout: super::TcpLimits::default().message_timeout,
        }
    }
}

/// Why the TLS transport could not be set up.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// The roots file holds no usable certificate.
    #[error("{0}: no usable CA certificate found")]
    NoRoots(PathBuf),
    /// `client_auth` asks for certificates but no `ca_file` says whom to trust.
    #[error("client_auth needs ca_file (the roots client certificates are checked against)")]
    ClientAuthWithoutRoots,
    /// `server_name` is not a DNS name or IP address.
    #[error("server_name {0:?} is not a DNS name or IP address")]
    BadServerName(String),
    /// rustls refused the configuration (key does not match the certificate, ...).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The TLS transport's rustls side.
#[derive(Clone)]
pub struct Tls {
    pub(super) acceptor: TlsAcceptor,
    pub(super) connector: Option<TlsConnector>,
    server_name: Option<ServerName<'static>>,
    pub(super) limits: StreamLimits,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("outbound", &self.connector.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)
}

impl Tls {
    /// Reads the files and builds the configurations.
    ///
    /// # Errors
    /// [`TlsError`] naming the file or setting.
    pub fn load(s: &TlsSettings) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certs(&s.cert_file)?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(s.cert_file.clone()));
        }
        let key = PrivateKeyDer::from_pem_file(&s.key_file).map_err(|source| TlsError::Read {
            path: s.key_file.clone(),
            source,
        })?;
        let roots = match &s.ca_file {
            Some(p) => {
                let mut store = RootCertStore::empty();
                let (added, _) = store.add_parsable_certificates(certs(p)?);
                if added == 0 {
                    return Err(TlsError::NoRoots(p.clone()));
                }
                Some(Arc::new(store))
            }
            None => None,
        };
        let cfg = |e: rustls::Error| TlsError::Config(e.to_string());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(cfg)?;
        let server = match (s.client_auth, &roots) {
            (ClientAuth::None, _) => server.with_no_client_auth(),
            (_, None) => return Err(TlsError::ClientAuthWithoutRoots),
            (auth, Some(r)) => {
                let b = WebPkiClientVerifier::builder_with_provider(r.clone(), provider.clone());
                let b = if auth == ClientAuth::Optional {
                    b.allow_unauthenticated()
                } else {
                    b
                };
                let v = b.build().map_err(|e| TlsError::Config(e.to_string()))?;
                server.with_client_cert_verifier(v)
            }
        };
        let server = server
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(cfg)?;
        let connector = match roots {
            Some(r) => {
                let client = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(cfg)?
                    .with_root_certificates(r)
                    .with_client_auth_cert(chain, key)
                    .map_err(cfg)?;
                Some(TlsConnector::from(Arc::new(client)))
            }
            None => None,
        };
        let server_name = if s.server_name.is_empty() {
            None
        } else {
            Some(
                ServerName::try_from(s.server_name.clone())
                    .map_err(|_| TlsError::BadServerName(s.server_name.clone()))?,
            )
        };
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector,
            server_name,
            limits: s.limits,
        })
    }

    /// The name a connection to `dest` verifies the certificate for.
    pub(super) fn name_for(&self, dest: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(dest.ip().into()))
    }
}
