//! Clients over SASL_SSL (SCRAM-SHA-512 on TLS): the broker's certificate, made here with a
//! CA of the run's own, and the user the clients log in as.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
};

use crate::workload::ClientSecurity;

const USER: &str = "bench";
const PASSWORD: &str = "bench-secret";

/// The broker settings of a SASL_SSL listener beside the PLAINTEXT one, with its certificate
/// written under `dir`; and the CA file clients trust.
pub fn broker_settings(dir: &Path) -> anyhow::Result<(Vec<String>, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    // Distinct subjects: a leaf named like its issuer looks self-signed to OpenSSL.
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "strata-bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
    server.distinguished_name = DistinguishedName::new();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let key = KeyPair::generate()?;
    let cert = server.signed_by(&key, &issuer)?;
    let ca_file = dir.join("ca.pem");
    let keystore = dir.join("broker.pem");
    std::fs::write(&ca_file, ca_cert.pem())?;
    std::fs::write(&keystore, format!("{}{}", key.serialize_pem(), cert.pem()))?;
    Ok((
        vec![
            "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0".to_owned(),
            format!("ssl.keystore.location={}", keystore.display()),
            "sasl.enabled.mechanisms=SCRAM-SHA-512".to_owned(),
        ],
        ca_file,
    ))
}

/// Creates the clients' SCRAM user with `strata user create` on the PLAINTEXT listener.
pub fn create_user(binary: &Path, bootstrap: &str) -> anyhow::Result<()> {
    let mut child = Command::new(binary)
        .args([
            "user",
            "create",
            USER,
            "--mechanism",
            "SCRAM-SHA-512",
            "--bootstrap",
        ])
        .arg(bootstrap)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {} user create", binary.display()))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{PASSWORD}\n").as_bytes())?;
    if !child.wait()?.success() {
        bail!("strata user create failed");
    }
    Ok(())
}

/// How the clients reach the SASL_SSL listener at `bootstrap`.
pub fn client(bootstrap: &str, ca: &Path) -> ClientSecurity {
    let settings = [
        ("security.protocol", "sasl_ssl".to_owned()),
        ("sasl.mechanisms", "SCRAM-SHA-512".to_owned()),
        ("sasl.username", USER.to_owned()),
        ("sasl.password", PASSWORD.to_owned()),
        ("ssl.ca.location", ca.display().to_string()),
    ];
    ClientSecurity {
        label: "SASL_SSL",
        bootstrap: bootstrap.to_owned(),
        settings: settings
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}
