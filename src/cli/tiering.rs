//! `strata tiering status`: each tiered partition's two tiers and its upload backlog, read
//! from a broker's admin API (`GET /v1/tiering`).

use anyhow::{Context, bail};
use strata_api::admin::TieringStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest admin response accepted.
const MAX_RESPONSE: u64 = 64 << 20;

/// `GET path` on the admin API at `addr`; the body of a 200 answer.
pub async fn get(addr: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to the admin API at {addr}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut response).await?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the admin API sent no HTTP header")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        bail!(
            "the admin API answered {}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(response[split + 4..].to_vec())
}

/// The status rows of the broker at `addr`.
pub async fn status_rows(addr: &str) -> anyhow::Result<Vec<TieringStatus>> {
    let body = get(addr, "/v1/tiering").await?;
    serde_json::from_slice(&body).context("the admin API sent unexpected JSON")
}

/// `strata tiering status`.
pub async fn status(addr: &str) -> anyhow::Result<String> {
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    let rows: Vec<Vec<String>> = status_rows(addr)
        .await?
        .into_iter()
        .map(|s| {
            vec![
                s.topic,
                s.partition.to_string(),
                opt(s.remote_start),
                opt(s.remote_end),
                s.local_start.to_string(),
                s.log_end.to_string(),
                s.remote_bytes.to_string(),
                s.remote_stored_bytes.to_string(),
                s.local_bytes.to_string(),
                format!("{} ({} B)", s.upload_lag_segments, s.upload_lag_bytes),
                s.last_error.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    Ok(super::table(
        &[
            "TOPIC",
            "PARTITION",
            "REMOTE-START",
            "REMOTE-END",
            "LOCAL-START",
            "LOG-END",
            "REMOTE-BYTES",
            "STORED-BYTES",
            "LOCAL-BYTES",
            "UPLOAD-LAG",
            "LAST-ERROR",
        ],
        &rows,
    ))
}
