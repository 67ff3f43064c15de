//! Who is on the other end of a connection: the listener's security protocol, TLS, and the
//! principal a request is made as.

pub mod acl;
pub mod admin_auth;
pub mod gate;
pub mod https;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

pub use principal::{KafkaPrincipal, PrincipalMapper};
pub use tls::{TlsContext, TlsSettings};

/// Kafka's listener security protocols (`listener.security.protocol.map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS; the principal comes from the client certificate, if any.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The protocol of a Kafka name (`SASL_SSL`), if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "PLAINTEXT" => Self::Plaintext,
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => return None,
        })
    }

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections are TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether clients authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One Kafka listener as the protocol server sees it.
#[derive(Debug)]
pub struct ListenerInfo {
    /// Its name (`EXTERNAL`), which picks the endpoints Metadata returns on it.
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// Its TLS certificates and settings, when the protocol uses TLS.
    pub tls: Option<Arc<TlsContext>>,
    /// Its SASL settings, when the protocol uses SASL.
    pub sasl: Option<Arc<sasl::SaslConfig>>,
}

impl ListenerInfo {
    /// A PLAINTEXT listener named `name`.
    pub fn plaintext(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// One connection's identity: where it came in and who it is.
#[derive(Debug, Clone)]
pub struct Session {
    /// The listener it arrived on.
    pub listener: Arc<ListenerInfo>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Who its requests are made as (`User:ANONYMOUS` until proven otherwise).
    pub principal: KafkaPrincipal,
    /// Its produce requests whose transactional batches wait to be appended in their second
    /// phase (KIP-890 verification): while any does, later ones wait behind it, so that one
    /// connection's batches are appended in the order they were sent.
    pub deferred_produces: Arc<std::sync::atomic::AtomicUsize>,
}

impl Session {
    /// An unauthenticated session on `listener`.
    pub fn anonymous(listener: Arc<ListenerInfo>, peer: SocketAddr) -> Self {
        Self {
            listener,
            peer,
            principal: KafkaPrincipal::anonymous(),
            deferred_produces: Arc::default(),
        }
    }
}
