//! The admin HTTP API (axum): what an operator or a metrics scraper asks a broker that the
//! Kafka protocol cannot tell, as JSON.
//!
//! - `GET /v1/health`: the node's real state, check by check (controller, metadata quorum,
//!   broker registration, log directory, object store); 200 when every check passes, 503 with
//!   the failing ones otherwise. For monitoring: a 503 asks for an operator, not a restart (a
//!   node that cannot go on exits by itself).
//! - `GET /v1/ready`: 200 while the broker serves Kafka clients (joined, unfenced, not
//!   shutting down), 503 otherwise: for load balancers.
//! - `GET /v1/tiering`: each tiered partition's two tiers and upload backlog.
//! - `GET /metrics`: every metric, as Prometheus text or (when the `Accept` header asks for
//!   it, as Prometheus does) OpenMetrics.
//! - `/v1/links`: cluster links and their mirrors (see [`crate::links`]).
//! - `/v1/cluster`, `/v1/topics`, `/v1/groups`: the cluster (see [`crate::cluster_api`]).
//! - `GET /v1/openapi.json`: the OpenAPI 3 document of all of it ([`crate::openapi`]).
//! - `GET /v1/whoami`: the caller and its role ([`crate::security::admin_auth`]).
//! - `GET /`: the web console ([`crate::console`]).
//!
//! It serves http or, with ADMIN:SSL, https; with `admin.api.authentication` it asks every
//! caller but the probes for a password or a token ([`crate::security::admin_auth`]).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One partition's two tiers, as `GET /v1/tiering` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// One check of `/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    /// What is checked: `controller`, `metadata_quorum`, `broker`, `log_dir`, `object_store`.
    pub name: String,
    /// Whether it passes.
    pub ok: bool,
    /// What was found, in words.
    pub detail: String,
}

/// The answer of `/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `failing` when a check fails.
    pub status: String,
    /// This node.
    pub node_id: i32,
    /// Every check.
    pub checks: Vec<Check>,
}

impl Health {
    /// A report of `checks`.
    pub fn of(node_id: i32, checks: Vec<Check>) -> Self {
        let ok = checks.iter().all(|c| c.ok);
        Self {
            status: if ok { "ok" } else { "failing" }.to_owned(),
            node_id,
            checks,
        }
    }

    /// Whether every check passes.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// The answer of `/v1/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Whether the broker serves Kafka clients.
    pub ready: bool,
    /// Why, in words.
    pub detail: String,
}

/// What the admin API reads from the broker.
pub trait AdminState: Send + Sync + 'static {
    /// Every tiered partition this broker leads.
    fn tiering(&self) -> impl Future<Output = Vec<TieringStatus>> + Send;
    /// The node's checks.
    fn health(&self) -> Health;
    /// Whether the broker serves Kafka clients.
    fn ready(&self) -> Readiness;
    /// Every metric of the node, encoded as OpenMetrics or Prometheus text.
    fn metrics(&self, openmetrics: bool) -> impl Future<Output = String> + Send;
}

/// Every metric of the node, as Prometheus text, or OpenMetrics when `Accept` asks for it.
#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "Prometheus text or OpenMetrics", content_type = "text/plain")))]
pub async fn metrics<S: AdminState>(
    State(state): State<Arc<S>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let (openmetrics, content_type) = negotiate(&headers);
    (
        [(CONTENT_TYPE, content_type)],
        state.metrics(openmetrics).await,
    )
}

/// Each tiered partition this node leads: its two tiers and upload backlog.
#[utoipa::path(get, path = "/v1/tiering", tag = "node",
    responses((status = 200, description = "Done", body = [TieringStatus])))]
pub async fn tiering<S: AdminState>(State(state): State<Arc<S>>) -> Json<Vec<TieringStatus>> {
    Json(state.tiering().await)
}

fn status_of(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The node's checks: 200 when all pass, 503 with the failing ones.
#[utoipa::path(get, path = "/v1/health", tag = "node",
    responses((status = 200, description = "Every check passes", body = Health), (status = 503, description = "A check fails", body = Health)))]
pub async fn health<S: AdminState>(State(state): State<Arc<S>>) -> (StatusCode, Json<Health>) {
    let health = state.health();
    (status_of(health.ok()), Json(health))
}

/// Whether the node serves Kafka clients (for load balancers).
#[utoipa::path(get, path = "/v1/ready", tag = "node",
    responses((status = 200, description = "Serving Kafka clients", body = Readiness), (status = 503, description = "Not serving Kafka clients", body = Readiness)))]
pub async fn ready<S: AdminState>(State(state): State<Arc<S>>) -> (StatusCode, Json<Readiness>) {
    let ready = state.ready();
    (status_of(ready.ready), Json(ready))
}

/// What the admin listener of a controller-only node reads.
pub trait ControllerAdminState: Send + Sync + 'static {
    /// The controller's checks.
    fn health(&self) -> Health;
    /// Its metrics, encoded as OpenMetrics or Prometheus text.
    fn metrics(&self, openmetrics: bool) -> String;
}

/// Serves a controller-only node's admin listener until `shutdown` turns true: `/v1/health`
/// and `/metrics` (a controller has no topics, groups or links to show).
pub async fn serve_controller_admin<S: ControllerAdminState>(
    listener: TcpListener,
    state: Arc<S>,
    security: AdminSecurity,
    shutdown: watch::Receiver<bool>,
) {
    async fn health<S: ControllerAdminState>(
        State(state): State<Arc<S>>,
    ) -> (StatusCode, Json<Health>) {
        let health = state.health();
        (status_of(health.ok()), Json(health))
    }
    async fn metrics<S: ControllerAdminState>(
        State(state): State<Arc<S>>,
        headers: HeaderMap,
    ) -> impl IntoResponse {
        let (openmetrics, content_type) = negotiate(&headers);
        ([(CONTENT_TYPE, content_type)], state.metrics(openmetrics))
    }
    let app = Router::new()
        .route("/v1/health", get(health::<S>))
        .route("/metrics", get(metrics::<S>))
        .fallback(crate::rest::no_route)
        .method_not_allowed_fallback(crate::rest::wrong_method)
        .with_state(state);
    serve_app(listener, app, security, shutdown).await;
}

/// How the admin listener is secured: TLS (ADMIN:SSL) and who may call it.
#[derive(Debug, Clone)]
pub struct AdminSecurity {
    /// The listener's certificates, when it serves https.
    pub tls: Option<Arc<crate::security::TlsContext>>,
    /// Its authentication.
    pub auth: Arc<crate::security::admin_auth::AdminAuth>,
}

impl AdminSecurity {
    /// Plain HTTP, open to everyone.
    pub fn open() -> Self {
        Self {
            tls: None,
            auth: Arc::new(crate::security::admin_auth::AdminAuth::open()),
        }
    }
}

/// Serves `app` on `listener`, secured as `security` says, until `shutdown` turns true.
async fn serve_app(
    listener: TcpListener,
    app: Router,
    security: AdminSecurity,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = app
        .route(
            crate::security::admin_auth::WHOAMI,
            get(crate::security::admin_auth::whoami),
        )
        .layer(axum::middleware::from_fn_with_state(
            security.auth,
            crate::security::admin_auth::authenticate,
        ));
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let served = match security.tls {
        Some(tls) => match crate::security::https::TlsListener::new(listener, tls) {
            Ok(listener) => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }
            Err(e) => Err(e),
        },
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        }
    };
    if let Err(e) = served {
        tracing::error!("admin API stopped: {e}");
    }
}

/// Whether a scraper asks for OpenMetrics, and the content type of the answer.
fn negotiate(headers: &HeaderMap) -> (bool, &'static str) {
    let accept = headers.get(ACCEPT).and_then(|a| a.to_str().ok());
    match crate::metrics::wants_openmetrics(accept) {
        true => (true, crate::metrics::OPENMETRICS_CONTENT_TYPE),
        false => (false, crate::metrics::PROMETHEUS_CONTENT_TYPE),
    }
}

/// Serves the admin API on `listener`, secured as `security` says, until `shutdown` turns
/// true.
pub async fn serve_admin<
    S: AdminState + crate::links::LinkAdmin + crate::cluster_api::ClusterApi,
>(
    listener: TcpListener,
    state: Arc<S>,
    security: AdminSecurity,
    shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/v1/health", get(health::<S>))
        .route("/v1/ready", get(ready::<S>))
        .route("/v1/tiering", get(tiering::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/v1/openapi.json", get(crate::openapi::document))
        .merge(crate::links::routes::<S>())
        .merge(crate::cluster_api::routes::<S>())
        .merge(crate::console::routes())
        .fallback(crate::rest::no_route)
        .method_not_allowed_fallback(crate::rest::wrong_method)
        .with_state(state);
    serve_app(listener, app, security, shutdown).await;
}
