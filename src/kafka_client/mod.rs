//! A minimal Kafka protocol client: one connection, one request at a time, versions fixed by
//! the caller. The CLI's admin commands and the follower fetcher use it; it works against any
//! Kafka-compatible broker, over plain TCP or TLS, with SASL where the listener asks for it.

pub mod pool;
pub mod security;

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use security::ClientSecurity;

/// A connection's byte stream: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How long connecting or one request may take, unless set otherwise.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted (a describe of a huge group is still far below this).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// One connection to a broker.
pub struct Client {
    stream: Box<dyn Stream>,
    correlation_id: i32,
    client_id: &'static str,
    timeout: Duration,
    /// A request went out and its response was not read whole (an error, a timeout, or a
    /// caller that dropped the call): what the stream holds next is unknown, so the
    /// connection is not used again.
    broken: bool,
}

impl Client {
    /// Whether an earlier request's exchange was cut short: the connection cannot be used.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Connects to `addr` (`host:port`).
    pub async fn connect(addr: &str) -> anyhow::Result<Self> {
        Self::connect_as(addr, "strata-cli", TIMEOUT).await
    }

    /// Connects to `addr` as `client_id`, with `timeout` for connecting and each request,
    /// secured as this process's clients are ([`security::set_default`]).
    pub async fn connect_as(
        addr: &str,
        client_id: &'static str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::connect_with(addr, client_id, timeout, &security::default_security()).await
    }

    /// Connects to `addr` with `security`: TLS, then SASL, as the listener's protocol needs.
    pub async fn connect_with(
        addr: &str,
        client_id: &'static str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> anyhow::Result<Self> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr} timed out"))?
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let host = addr
                    .rsplit_once(':')
                    .map_or(addr, |(host, _)| host)
                    .trim_matches(['[', ']']);
                let name = rustls_pki_types::ServerName::try_from(host.to_owned())
                    .with_context(|| format!("'{host}' is not a host name for TLS"))?;
                let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(config));
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .with_context(|| format!("TLS handshake with {addr} timed out"))?
                    .with_context(|| format!("TLS handshake with {addr} failed"))?;
                Box::new(tls)
            }
        };
        let mut client = Self {
            stream,
            correlation_id: 0,
            client_id,
            timeout,
            broken: false,
        };
        if let Some(login) = &security.sasl {
            security::authenticate(&mut client, login)
                .await
                .with_context(|| format!("authenticating to {addr}"))?;
        }
        Ok(client)
    }

    /// The length-prefixed frame of `request` at `version`, with the next correlation id.
    fn frame<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<Vec<u8>> {
        if self.broken {
            bail!("the connection is unusable after an earlier request failed");
        }
        self.correlation_id += 1;
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)))
            .encode(&mut body, R::header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        Ok(frame)
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<()> {
        let frame = self.frame(version, request)?;
        self.broken = true;
        tokio::time::timeout(self.timeout, async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await
        })
        .await
        .context("the broker did not take the request in time")??;
        self.broken = false;
        Ok(())
    }

    /// Sends `request` at `version` and decodes the response.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        let frame = self.frame(version, request)?;
        self.broken = true;
        let response = tokio::time::timeout(self.timeout, async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            let size = self.stream.read_i32().await?;
            if size < 0 || size as usize > MAX_RESPONSE_BYTES {
                bail!("response of {size} bytes");
            }
            // Read into uninitialized capacity: a follower's responses are megabytes, and
            // zeroing them first cost a few percent of its CPU.
            let size = size as usize;
            let mut response = BytesMut::with_capacity(size);
            while response.len() < size {
                let want = (size - response.len()) as u64;
                if (&mut self.stream)
                    .take(want)
                    .read_buf(&mut response)
                    .await?
                    == 0
                {
                    bail!("the broker closed the connection mid-response");
                }
            }
            let mut response = response.freeze();
            let header =
                ResponseHeader::decode(&mut response, R::Response::header_version(version))?;
            if header.correlation_id != self.correlation_id {
                bail!(
                    "response to request {} instead of {}",
                    header.correlation_id,
                    self.correlation_id
                );
            }
            R::Response::decode(&mut response, version)
        })
        .await
        .context("the broker did not answer in time")??;
        self.broken = false;
        Ok(response)
    }
}
