//! `strata tiering status`: each tiered partition's two tiers and its upload backlog, read
//! from a broker's admin API (`GET /v1/tiering`).

use anyhow::Context;
use strata_api::admin::TieringStatus;

/// `GET path` on the admin API at `addr`; the body of a 2xx answer.
pub async fn get(addr: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    super::http::call(addr, "GET", path, None).await
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
