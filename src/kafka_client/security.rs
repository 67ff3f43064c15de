//! How the Kafka protocol client secures its connections: TLS (rustls) and SASL (PLAIN,
//! SCRAM-SHA-256/512), configured with a Kafka client properties file as
//! `kafka-topics.sh --command-config` reads one (Java or librdkafka names).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use strata_api::security::SecurityProtocol;
use strata_api::security::sasl::Mechanism;
use strata_api::security::scram::ScramClient;

use super::Client;

/// SASL credentials.
#[derive(Clone)]
pub struct SaslLogin {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The user.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A client's security: the protocol, TLS trust and identity, SASL credentials.
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// TLS configuration, for SSL and SASL_SSL.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SASL credentials, for SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<SaslLogin>,
}

impl Default for ClientSecurity {
    fn default() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// The security of the tools of this process (`--command-config`), plaintext when unset.
static DEFAULT: OnceLock<ClientSecurity> = OnceLock::new();

/// Sets how this process's clients secure their connections, once, at startup.
pub fn set_default(security: ClientSecurity) {
    let _ = DEFAULT.set(security);
}

/// How this process's clients secure their connections.
pub fn default_security() -> ClientSecurity {
    DEFAULT.get().cloned().unwrap_or_default()
}

/// Reads a properties file: `key=value` (or `key: value`) lines, `#` and `!` comments.
pub fn read_properties(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .or_else(|| line.split_once(':'))
            .with_context(|| format!("{}: '{line}' is not key=value", path.display()))?;
        out.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(out)
}

/// A quoted `key="value"` of a JAAS line.
pub fn jaas_value(jaas: &str, key: &str) -> Option<String> {
    let start = jaas.find(&format!("{key}=\""))? + key.len() + 2;
    let end = jaas[start..].find('"')? + start;
    Some(jaas[start..end].to_owned())
}

impl ClientSecurity {
    /// The security a properties file describes (Java names, or librdkafka's where they differ).
    pub fn from_properties(props: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let get = |key: &str| props.get(key).map(String::as_str).filter(|v| !v.is_empty());
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(name) => SecurityProtocol::parse(&name.to_ascii_uppercase()).with_context(|| {
                format!("security.protocol '{name}' is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            })?,
        };
        let tls = if protocol.uses_tls() {
            Some(Arc::new(tls_config(&get)?))
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            let name = get("sasl.mechanism")
                .or_else(|| get("sasl.mechanisms"))
                .unwrap_or("GSSAPI");
            let mechanism =
                Mechanism::from_name(&name.to_ascii_uppercase()).with_context(|| {
                    format!("sasl.mechanism '{name}' is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
                })?;
            let jaas = get("sasl.jaas.config").unwrap_or_default();
            let username = jaas_value(jaas, "username")
                .or_else(|| get("sasl.username").map(str::to_owned))
                .context("no SASL user: set sasl.jaas.config (username=\"…\" password=\"…\") or sasl.username")?;
            let password = jaas_value(jaas, "password")
                .or_else(|| get("sasl.password").map(str::to_owned))
                .context("no SASL password: set sasl.jaas.config or sasl.password")?;
            Some(SaslLogin {
                mechanism,
                username,
                password,
            })
        } else {
            None
        };
        Ok(Self {
            protocol,
            tls,
            sasl,
        })
    }

    /// The security of a properties file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        Self::from_properties(&read_properties(path)?)
    }
}

fn tls_config<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = strata_api::security::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    let ca = get("ssl.truststore.location").or_else(|| get("ssl.ca.location"));
    let inline = get("ssl.truststore.certificates");
    match (inline, ca) {
        (Some(pem), _) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots
                    .add(cert.context("ssl.truststore.certificates: bad PEM")?)
                    .context("ssl.truststore.certificates: not a CA certificate")?;
            }
            if roots.is_empty() {
                bail!("ssl.truststore.certificates holds no certificate");
            }
        }
        (None, Some(path)) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read the CAs in {path} (PEM)"))?
            {
                roots
                    .add(cert.with_context(|| format!("{path}: bad PEM"))?)
                    .with_context(|| format!("{path}: not a CA certificate"))?;
            }
        }
        (None, None) => bail!(
            "TLS needs the CAs to trust: set ssl.truststore.location (PEM), ssl.ca.location or ssl.truststore.certificates"
        ),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots);
    let keystore = get("ssl.keystore.location");
    let certificate = get("ssl.certificate.location").or(keystore);
    let key = get("ssl.key.location").or(keystore);
    Ok(match (certificate, key) {
        (Some(certificate), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(certificate)
                .with_context(|| format!("cannot read {certificate}"))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{certificate}: bad PEM"))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{key}: no PEM private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client certificate and key do not match")?
        }
        _ => builder.with_no_client_auth(),
    })
}

/// Authenticates a fresh connection with SASL (SaslHandshake v1, then SaslAuthenticate).
pub(super) async fn authenticate(client: &mut Client, login: &SaslLogin) -> anyhow::Result<()> {
    let name = login.mechanism.name();
    let handshake = client
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name)),
        )
        .await?;
    if handshake.error_code != 0 {
        let offered: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
        bail!(
            "the broker does not offer SASL mechanism {name} (it offers {})",
            offered.join(", ")
        );
    }
    let step = async |client: &mut Client, bytes: Vec<u8>| -> anyhow::Result<Vec<u8>> {
        let answer = client
            .call(
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(bytes.into()),
            )
            .await
            .context("the broker closed the connection during SASL authentication")?;
        if answer.error_code != 0 {
            bail!(
                "SASL authentication as '{}' failed: {}",
                login.username,
                answer
                    .error_message
                    .map_or_else(String::new, |m| m.to_string())
            );
        }
        Ok(answer.auth_bytes.to_vec())
    };
    match login.mechanism {
        Mechanism::Plain => {
            let token = format!("\0{}\0{}", login.username, login.password);
            step(client, token.into_bytes()).await?;
        }
        Mechanism::Scram(m) => {
            let scram = ScramClient::new(m, &login.username, &login.password);
            let server_first = step(client, scram.first()).await?;
            let (last, expected) = scram
                .last(&server_first)
                .map_err(|e| anyhow::anyhow!("SCRAM: {e}"))?;
            let server_final = step(client, last).await?;
            if server_final != expected {
                bail!("the broker did not prove it knows the SCRAM credential");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_and_librdkafka_properties_are_read() {
        let props = BTreeMap::from([
            ("security.protocol".to_owned(), "SASL_PLAINTEXT".to_owned()),
            ("sasl.mechanism".to_owned(), "SCRAM-SHA-512".to_owned()),
            (
                "sasl.jaas.config".to_owned(),
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";".to_owned(),
            ),
        ]);
        let security = ClientSecurity::from_properties(&props).unwrap();
        let login = security.sasl.unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "s3cret")
        );
        let rdkafka = BTreeMap::from([
            ("security.protocol".to_owned(), "sasl_plaintext".to_owned()),
            ("sasl.mechanisms".to_owned(), "PLAIN".to_owned()),
            ("sasl.username".to_owned(), "bob".to_owned()),
            ("sasl.password".to_owned(), "pw".to_owned()),
        ]);
        let login = ClientSecurity::from_properties(&rdkafka)
            .unwrap()
            .sasl
            .unwrap();
        assert_eq!(login.mechanism, Mechanism::Plain);
        let missing = BTreeMap::from([("security.protocol".to_owned(), "SSL".to_owned())]);
        let e = ClientSecurity::from_properties(&missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssl.truststore.location"), "{e}");
        let bad = BTreeMap::from([("security.protocol".to_owned(), "TLS".to_owned())]);
        assert!(ClientSecurity::from_properties(&bad).is_err());
    }
}
