//! The admin HTTP API (axum): what an operator or a metrics scraper asks a broker that the
//! Kafka protocol cannot tell, as JSON. `GET /v1/health`, `GET /v1/tiering`.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One partition's two tiers, as `GET /v1/tiering` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TieringStatus {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset on local disk.
    pub local_start: u64,
    /// Offset the next record gets.
    pub log_end: u64,
    /// Bytes on local disk.
    pub local_bytes: u64,
    /// First offset in the remote tier, if any.
    pub remote_start: Option<u64>,
    /// Offset after the last remote record, if any.
    pub remote_end: Option<u64>,
    /// Bytes of batches in the remote tier.
    pub remote_bytes: u64,
    /// Bytes stored for them (compressed).
    pub remote_stored_bytes: u64,
    /// Closed segments waiting for upload.
    pub upload_lag_segments: u64,
    /// Their bytes.
    pub upload_lag_bytes: u64,
    /// The last upload or retention failure, until one succeeds.
    pub last_error: Option<String>,
    /// When a segment was last uploaded (ms since the epoch).
    pub last_upload_ms: Option<i64>,
}

/// What the admin API reads from the broker.
pub trait AdminState: Send + Sync + 'static {
    /// Every tiered partition this broker leads.
    fn tiering(&self) -> impl Future<Output = Vec<TieringStatus>> + Send;
}

async fn tiering<S: AdminState>(State(state): State<Arc<S>>) -> Json<Vec<TieringStatus>> {
    Json(state.tiering().await)
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn serve_admin<S: AdminState>(
    listener: TcpListener,
    state: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/v1/health", get(|| async { "ok" }))
        .route("/v1/tiering", get(tiering::<S>))
        .with_state(state);
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("admin API stopped: {e}");
    }
}
