//! A minimal HTTP/1.1 client for the admin API: one request per connection, JSON bodies,
//! http or https, with the process's credentials (`--admin-token`, `--admin-user`; a broker
//! uses its inter-broker user).

use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest admin response accepted.
const MAX_RESPONSE: u64 = 64 << 20;

/// How this process calls admin APIs: the CAs of https ones, and the credentials it sends.
#[derive(Clone, Default)]
pub struct AdminHttp {
    /// The CAs of the admin APIs' certificates; bare `host:port` addresses then mean https.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The `Authorization` header sent with every request.
    pub authorization: Option<String>,
}

impl std::fmt::Debug for AdminHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHttp")
            .field("https", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl AdminHttp {
    /// https with the CAs of the PEM file `ca` (if any), with a bearer token or a user's
    /// password.
    pub fn new(
        ca: Option<&std::path::Path>,
        token: Option<&str>,
        login: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let tls = match ca {
            Some(ca) => {
                let props = std::collections::BTreeMap::from([
                    ("security.protocol".to_owned(), "SSL".to_owned()),
                    (
                        "ssl.truststore.location".to_owned(),
                        ca.display().to_string(),
                    ),
                ]);
                crate::kafka_client::ClientSecurity::from_properties(&props)?.tls
            }
            None => None,
        };
        let authorization = match (token, login) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Some((user, password))) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            (None, None) => None,
        };
        Ok(Self { tls, authorization })
    }
}

static DEFAULT: RwLock<Option<AdminHttp>> = RwLock::new(None);

/// Sets how this process calls admin APIs.
pub fn set_default(http: AdminHttp) {
    *DEFAULT.write().expect("not poisoned") = Some(http);
}

/// `method path` with an optional JSON `body` on the admin API at `addr` (`host:port`, or
/// with `http://` or `https://` before it): the status and body.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let http = DEFAULT
        .read()
        .expect("not poisoned")
        .clone()
        .unwrap_or_default();
    let (https, host) = match addr.split_once("://") {
        Some(("https", host)) => (true, host),
        Some(("http", host)) => (false, host),
        Some((scheme, _)) => bail!("{addr}: the admin API is http:// or https://, not {scheme}://"),
        None => (http.tls.is_some(), addr),
    };
    let host = host.trim_end_matches('/');
    let stream = TcpStream::connect(host)
        .await
        .with_context(|| format!("cannot connect to the admin API at {addr}"))?;
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(authorization) = &http.authorization {
        head.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    head.push_str("\r\n");
    let response = match https {
        false => exchange(stream, &head, body).await?,
        true => {
            let tls = http.tls.clone().with_context(|| {
                format!("{addr} is https: give the CA of its certificate with --admin-ca (STRATA_ADMIN_CA)")
            })?;
            let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let server = rustls_pki_types::ServerName::try_from(name.to_owned())
                .with_context(|| format!("{name} is not a host name"))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(server, stream)
                .await
                .with_context(|| format!("TLS with the admin API at {addr}"))?;
            exchange(stream, &head, body).await?
        }
    };
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the admin API sent no HTTP header")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the admin API sent no HTTP status")?;
    let mut body = response[split + 4..].to_vec();
    if head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    }) {
        body = dechunk(&body)?;
    }
    Ok((status, body))
}

/// Sends a request and reads the whole response.
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    head: &str,
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut response = Vec::new();
    let read = stream.take(MAX_RESPONSE).read_to_end(&mut response).await;
    // A TLS server may close without close_notify once it has answered in full.
    if let Err(e) = read
        && response.is_empty()
    {
        return Err(e.into());
    }
    Ok(response)
}

/// The body of a chunked response.
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk without its size line")?;
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..line_end])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .context("a chunk size that is not hexadecimal")?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            bail!("a chunk cut short");
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// The body of a 2xx answer to `method path`, or the error the API named.
pub async fn call(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<Vec<u8>> {
    let (status, body) = request(addr, method, path, body).await?;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message = serde_json::from_slice::<strata_api::links::ErrorBody>(&body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    bail!("{message} (HTTP {status})")
}
