//! Certificates made by the test: a CA, and server and client certificates it signs, written
//! as PEM files the broker and the clients read.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A certificate authority that signs certificates into a directory.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate's PEM file.
    pub pem: PathBuf,
    dir: PathBuf,
}

/// A key and certificate chain written as PEM: one file with both (Kafka's PEM keystore, the
/// broker's `ssl.keystore.location`), and the two apart (librdkafka's `ssl.certificate.location`
/// and `ssl.key.location`).
pub struct Issued {
    /// Key then certificate, in one file.
    pub keystore: PathBuf,
    /// The certificate.
    pub certificate: PathBuf,
    /// The private key (PKCS#8).
    pub key: PathBuf,
    /// The serial number, in hex as x509-parser writes it.
    pub serial: String,
}

/// What to issue.
pub struct Request<'a> {
    /// File name stem.
    pub name: &'a str,
    /// The subject, most significant first, as `(type, value)`: `[("O","Acme"),("CN","writer")]`.
    pub subject: &'a [(&'a str, &'a str)],
    /// A server certificate (for 127.0.0.1 and localhost) rather than a client one.
    pub server: bool,
    /// Valid until this many days from now (negative: already expired).
    pub days: i64,
    /// The serial number.
    pub serial: u64,
}

fn dn(subject: &[(&str, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (kind, value) in subject {
        let kind = match *kind {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            other => panic!("unknown DN type {other}"),
        };
        name.push(kind, *value);
    }
    name
}

impl Ca {
    /// A new CA named `name`, writing into `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&[("O", "Strata tests"), ("CN", name)]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(30);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            pem,
            dir: dir.to_owned(),
        }
    }

    /// Issues a certificate and writes its files.
    pub fn issue(&self, request: &Request<'_>) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(request.subject);
        params.serial_number = Some(SerialNumber::from_slice(&request.serial.to_be_bytes()));
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(30);
        params.not_after = now + Duration::days(request.days);
        if request.days < 0 {
            params.not_before = now - Duration::days(60);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if request.server {
            params.subject_alt_names = vec![
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                SanType::DnsName("localhost".try_into().unwrap()),
            ];
            // A node's certificate: it serves, and (on mutual TLS listeners) connects to peers.
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        let path = |suffix: &str| self.dir.join(format!("{}{suffix}", request.name));
        let issued = Issued {
            keystore: path(".keystore.pem"),
            certificate: path(".crt.pem"),
            key: path(".key.pem"),
            serial: request
                .serial
                .to_be_bytes()
                .iter()
                .skip_while(|b| **b == 0)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        };
        // Written beside and renamed, so a broker reloading the files never sees half of one.
        let write = |target: &Path, text: String| {
            let temporary = target.with_extension("tmp");
            std::fs::write(&temporary, text).unwrap();
            std::fs::rename(&temporary, target).unwrap();
        };
        write(
            &issued.keystore,
            format!("{}{}", key.serialize_pem(), cert.pem()),
        );
        write(&issued.certificate, cert.pem());
        write(&issued.key, key.serialize_pem());
        issued
    }
}

/// A TLS connection to `addr` that trusts `ca`, showing `client`'s certificate if given.
pub async fn connect(
    addr: &str,
    ca: &Path,
    client: Option<&Issued>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(issued) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&issued.certificate)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(&issued.key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The DER of the first certificate in a PEM file.
pub fn der(pem: &Path) -> Vec<u8> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// librdkafka settings for SSL to a broker whose CA is `ca`, with `client`'s certificate.
pub fn rdkafka_ssl<'a>(
    config: &'a mut rdkafka::ClientConfig,
    ca: &Path,
    client: Option<&Issued>,
) -> &'a mut rdkafka::ClientConfig {
    config
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.display().to_string());
    if let Some(issued) = client {
        config
            .set(
                "ssl.certificate.location",
                issued.certificate.display().to_string(),
            )
            .set("ssl.key.location", issued.key.display().to_string());
    }
    config
}
