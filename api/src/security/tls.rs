//! TLS for a listener with rustls: certificates from PEM (files or inline, as Kafka's KIP-651),
//! client authentication (`ssl.client.auth`), and reloading when the files change.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::principal::{KafkaPrincipal, PrincipalMapper, subject_dn};
use crate::metrics::KAFKA;

/// The cryptography every TLS config uses, named explicitly so that no code depends on a
/// process-wide default (which panics when two providers are compiled in).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Makes [`provider`] the process default too, for libraries that build their own configs.
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Where PEM text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file, read again when it changes.
    File(PathBuf),
    /// Text given in the configuration itself.
    Inline(String),
}

impl PemSource {
    fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Self::File(path) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            Self::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Inline(_) => "the inline PEM".into(),
        }
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// One is asked for; a client without one connects as `User:ANONYMOUS`.
    Requested,
    /// One is required.
    Required,
}

impl ClientAuth {
    /// Parses Kafka's values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Self::None),
            "requested" => Ok(Self::Requested),
            "required" => Ok(Self::Required),
            other => Err(format!("'{other}' is not none, requested or required")),
        }
    }
}

/// A listener's TLS settings, by their Kafka names.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificate chain, leaf first (`ssl.keystore.location` or
    /// `ssl.keystore.certificate.chain`).
    pub certificate_chain: PemSource,
    /// The private key (the same file, or `ssl.keystore.key`).
    pub private_key: PemSource,
    /// CA certificates client certificates must chain to (`ssl.truststore.location` or
    /// `ssl.truststore.certificates`).
    pub truststore: Option<PemSource>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`.
    pub protocols: Vec<String>,
    /// `ssl.cipher.suites`; empty: rustls's defaults.
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules`.
    pub principal_mapper: PrincipalMapper,
    /// How often the files are checked for changes (`ssl.certificate.reload.interval.ms`).
    pub reload_interval: Duration,
}

/// What identifies a version of a file: a replaced or rewritten file changes one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamps(settings: &TlsSettings) -> Vec<Option<Stamp>> {
    [
        Some(&settings.certificate_chain),
        Some(&settings.private_key),
        settings.truststore.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|source| match source {
        PemSource::File(path) => std::fs::metadata(path).ok().map(|m| Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
        }),
        PemSource::Inline(_) => None,
    })
    .collect()
}

/// The certificate a listener serves.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// Its subject, as RFC 2253 writes it.
    pub subject: String,
    /// Its serial number, in hex.
    pub serial: String,
    /// When it expires, in Unix seconds.
    pub not_after: i64,
    /// When it expires, for people.
    pub expires: String,
}

/// A loaded configuration and what it was loaded from.
#[derive(Debug)]
struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<Stamp>>,
    certificate: CertificateInfo,
}

/// One listener's TLS: the current configuration, swapped whole when the files change.
#[derive(Debug)]
pub struct TlsContext {
    listener: String,
    settings: TlsSettings,
    current: ArcSwap<Loaded>,
}

impl TlsContext {
    /// Loads the certificates and key; the error names the file and the problem.
    pub fn load(listener: &str, settings: TlsSettings) -> Result<Self, String> {
        let loaded = build(&settings)?;
        KAFKA.tls_certificate(listener, loaded.certificate.not_after);
        Ok(Self {
            listener: listener.to_owned(),
            settings,
            current: ArcSwap::from_pointee(loaded),
        })
    }

    /// The current server configuration.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.load().config)
    }

    /// An acceptor with the current certificates.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.load().config))
    }

    /// The certificate served now.
    pub fn certificate(&self) -> CertificateInfo {
        self.current.load().certificate.clone()
    }

    /// The principal of a connection: the mapped subject of the client's certificate, or
    /// `User:ANONYMOUS` when it sent none.
    pub fn principal(
        &self,
        connection: &rustls::ServerConnection,
    ) -> Result<KafkaPrincipal, String> {
        let Some(leaf) = connection.peer_certificates().and_then(|c| c.first()) else {
            return Ok(KafkaPrincipal::anonymous());
        };
        let dn = subject_dn(leaf)?;
        Ok(KafkaPrincipal::user(
            self.settings.principal_mapper.name(&dn)?,
        ))
    }

    /// Loads the files again if they changed since the last load. A bad new version is
    /// reported and the old one kept, so a half-written file never takes the listener down.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamps(&self.settings);
        if now == self.current.load().stamps {
            return Ok(false);
        }
        match build(&self.settings) {
            Ok(loaded) => {
                tracing::info!(
                    listener = %self.listener,
                    subject = %loaded.certificate.subject,
                    serial = %loaded.certificate.serial,
                    "TLS certificates reloaded"
                );
                KAFKA.tls_certificate(&self.listener, loaded.certificate.not_after);
                self.current.store(Arc::new(loaded));
                Ok(true)
            }
            Err(e) => {
                KAFKA.tls_reload_failed(&self.listener);
                // Remember the stamps, so that one bad version is reported once.
                let current = self.current.load();
                self.current.store(Arc::new(Loaded {
                    config: Arc::clone(&current.config),
                    stamps: now,
                    certificate: current.certificate.clone(),
                }));
                Err(e)
            }
        }
    }

    /// Checks the files every `ssl.certificate.reload.interval.ms` until shutdown.
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.settings.reload_interval.is_zero() {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.reload_interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            if let Err(e) = self.reload_if_changed() {
                tracing::error!(listener = %self.listener, "TLS certificates not reloaded, keeping the previous ones: {e}");
            }
        }
    }
}

fn certificates(source: &PemSource) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = source.read()?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", source.describe()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (JKS and PKCS12 stores must be converted to PEM)",
            source.describe()
        ));
    }
    Ok(certs)
}

fn private_key(source: &PemSource) -> Result<PrivateKeyDer<'static>, String> {
    let pem = source.read()?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(_) if String::from_utf8_lossy(&pem).contains("ENCRYPTED") => Err(format!(
            "{}: encrypted private keys are not supported; decrypt it (openssl pkcs8 -topk8 -nocrypt)",
            source.describe()
        )),
        Err(e) => Err(format!("{}: no PEM private key: {e}", source.describe())),
    }
}

fn versions(names: &[String]) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let mut out = Vec::new();
    for name in names {
        out.push(match name.trim() {
            "TLSv1.2" => &rustls::version::TLS12,
            "TLSv1.3" => &rustls::version::TLS13,
            other => {
                return Err(format!(
                    "TLS version '{other}' is not supported; use TLSv1.2 and/or TLSv1.3"
                ));
            }
        });
    }
    if out.is_empty() {
        return Err("no TLS version enabled; use TLSv1.2 and/or TLSv1.3".into());
    }
    Ok(out)
}

/// The provider, limited to `ssl.cipher.suites` (IANA names, as Java writes them).
fn provider_with_suites(names: &[String]) -> Result<Arc<CryptoProvider>, String> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if names.is_empty() {
        return Ok(Arc::new(provider));
    }
    let iana = |suite: &rustls::SupportedCipherSuite| {
        format!("{:?}", suite.suite()).replace("TLS13_", "TLS_")
    };
    let mut chosen = Vec::new();
    for name in names {
        let name = name.trim();
        let suite = provider
            .cipher_suites
            .iter()
            .find(|s| iana(s) == name)
            .ok_or_else(|| {
                let known: Vec<String> = provider.cipher_suites.iter().map(iana).collect();
                format!(
                    "cipher suite '{name}' is not supported; known: {}",
                    known.join(", ")
                )
            })?;
        chosen.push(*suite);
    }
    provider.cipher_suites = chosen;
    Ok(Arc::new(provider))
}

fn build(settings: &TlsSettings) -> Result<Loaded, String> {
    let stamps = stamps(settings);
    let chain = certificates(&settings.certificate_chain)?;
    let key = private_key(&settings.private_key)?;
    let provider = provider_with_suites(&settings.cipher_suites)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions(&settings.protocols)?)
        .map_err(|e| format!("ssl.enabled.protocols and ssl.cipher.suites do not agree: {e}"))?;
    let verifier = match settings.client_auth {
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
        auth => {
            let source = settings.truststore.as_ref().ok_or_else(|| {
                "ssl.client.auth needs the CAs to trust: set ssl.truststore.location".to_owned()
            })?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(source)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: not a CA certificate: {e}", source.describe()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::Requested => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            verifier
                .build()
                .map_err(|e| format!("{}: {e}", source.describe()))?
        }
    };
    let (_, leaf) = X509Certificate::from_der(&chain[0]).map_err(|e| {
        format!(
            "{}: bad certificate: {e}",
            settings.certificate_chain.describe()
        )
    })?;
    let certificate = CertificateInfo {
        subject: subject_dn(&chain[0])?,
        serial: leaf.raw_serial_as_string(),
        not_after: leaf.validity().not_after.timestamp(),
        expires: leaf.validity().not_after.to_string(),
    };
    let config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a certificate and key pair: {e}",
                settings.certificate_chain.describe(),
                settings.private_key.describe()
            )
        })?;
    Ok(Loaded {
        config: Arc::new(config),
        stamps,
        certificate,
    })
}
