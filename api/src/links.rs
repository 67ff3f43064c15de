//! The cluster-link part of the admin HTTP API (`/v1/links`): creating, listing, pausing and
//! deleting links, a link's mirror lag, and stopping its mirrors (failover, promote).
//!
//! - `GET /v1/links`, `POST /v1/links` (a [`NewLink`]): the links; create one.
//! - `GET /v1/links/{name}`, `DELETE /v1/links/{name}`: one link's status; delete it.
//! - `POST /v1/links/{name}/pause`, `/resume`: stop or restart fetching.
//! - `POST /v1/links/{name}/source` (a [`LinkSource`]): the source's new bootstrap servers.
//! - `POST /v1/links/{name}/failover`, `/promote` (a [`StopMirrors`]): make its mirror topics
//!   writable, at once (source lost) or once caught up (source reachable).
//! - `POST /v1/links/{name}/restore` (a [`StopMirrors`]): failback: this cluster's topics
//!   become mirrors of the link's source again, what they have beyond it kept aside.
//!
//! Errors are a status (400 bad input, 404 unknown link, 409 not possible now, 503 the
//! controller or source unavailable) with `{"error": "…"}` naming the problem.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// A link to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLink {
    /// Its name.
    pub name: String,
    /// Bootstrap servers of the source cluster.
    pub source: String,
    /// Source topics to mirror (a regular expression over whole names; all when absent).
    #[serde(default)]
    pub topics: Option<String>,
    /// Source topics never to mirror.
    #[serde(default)]
    pub exclude_topics: Option<String>,
    /// Consumer groups whose offsets are copied.
    #[serde(default)]
    pub groups: Option<String>,
    /// `earliest` (default) or `latest`.
    #[serde(default)]
    pub start: Option<String>,
    /// Prepended to mirror topic names.
    #[serde(default)]
    pub prefix: Option<String>,
    /// How often group offsets are copied, ms (default 5000).
    #[serde(default)]
    pub offset_sync_ms: Option<u64>,
}

/// A link as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSummary {
    /// Its name.
    pub name: String,
    /// Bootstrap servers of the source cluster.
    pub source: String,
    /// `active` or `paused`.
    pub state: String,
    /// Topic filter.
    pub topics: Option<String>,
    /// Topics excluded.
    pub exclude_topics: Option<String>,
    /// Group filter.
    pub groups: Option<String>,
    /// `earliest` or `latest`.
    pub start: String,
    /// Name prefix of its mirrors.
    pub prefix: String,
    /// How often group offsets are copied, ms.
    pub offset_sync_ms: u64,
    /// Its mirror topics that still follow the source.
    pub mirroring_topics: usize,
}

/// One mirror partition's lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MirrorPartition {
    /// Partition index.
    pub partition: i32,
    /// The mirror's high watermark, if its leader answered.
    pub mirror_end: Option<i64>,
    /// The source's high watermark, if the source answered.
    pub source_end: Option<i64>,
    /// Records behind the source.
    pub lag_records: Option<i64>,
    /// Seconds between the newest source record and the newest mirrored one (0 when caught up).
    pub lag_seconds: Option<f64>,
}

/// One mirror topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MirrorStatus {
    /// Its name here.
    pub topic: String,
    /// Its name on the source.
    pub source_topic: String,
    /// `mirroring`, `stopped (failover)` or `stopped (promote)`.
    pub state: String,
    /// Per partition.
    pub partitions: Vec<MirrorPartition>,
}

/// A link's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The link.
    pub link: LinkSummary,
    /// Bytes this node mirrored since it started.
    pub bytes_mirrored: u64,
    /// This node's last mirroring error, while it lasts.
    pub last_error: Option<String>,
    /// Records behind the source, over all mirroring partitions (those that answered).
    pub lag_records: i64,
    /// The largest partition lag in seconds.
    pub lag_seconds: f64,
    /// Its mirror topics.
    pub mirrors: Vec<MirrorStatus>,
}

/// Which mirror topics to stop (`None`: all of the link's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopMirrors {
    /// Topic names.
    #[serde(default)]
    pub topics: Option<Vec<String>>,
}

/// What stopping mirrors did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// The topics now writable.
    pub topics: Vec<String>,
}

/// A refused request: its HTTP status and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    /// HTTP status.
    pub status: u16,
    /// The problem, in words.
    pub message: String,
}

impl AdminError {
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            message: message.into(),
        }
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: 409,
            message: message.into(),
        }
    }
    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: 503,
            message: message.into(),
        }
    }
}

/// The error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Why.
    pub error: String,
}

type Answer<T> = Result<Json<T>, (StatusCode, Json<ErrorBody>)>;

fn answer<T>(result: Result<T, AdminError>) -> Answer<T> {
    result.map(Json).map_err(|e| {
        (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(ErrorBody { error: e.message }),
        )
    })
}

/// What the link endpoints ask of the broker.
pub trait LinkAdmin: Send + Sync + 'static {
    /// Every link.
    fn links(&self) -> impl Future<Output = Vec<LinkSummary>> + Send;
    /// One link's status with its mirrors' lag.
    fn link_status(
        &self,
        name: String,
    ) -> impl Future<Output = Result<LinkStatus, AdminError>> + Send;
    /// Creates a link.
    fn create_link(
        &self,
        link: NewLink,
    ) -> impl Future<Output = Result<LinkSummary, AdminError>> + Send;
    /// Deletes a link.
    fn delete_link(&self, name: String) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// Points a link at new bootstrap servers of its source.
    fn set_link_source(
        &self,
        name: String,
        source: String,
    ) -> impl Future<Output = Result<LinkSummary, AdminError>> + Send;
    /// Pauses or resumes a link.
    fn pause_link(
        &self,
        name: String,
        paused: bool,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// Turns this cluster's topics into mirrors of the link's source (failback), cutting off
    /// into side topics what their histories have that the source's lacks.
    fn restore_mirrors(
        &self,
        link: String,
        which: StopMirrors,
    ) -> impl Future<Output = Result<Stopped, AdminError>> + Send;
    /// Stops mirror topics: at once (`promote == false`), or once caught up with the source.
    fn stop_mirrors(
        &self,
        link: String,
        which: StopMirrors,
        promote: bool,
    ) -> impl Future<Output = Result<Stopped, AdminError>> + Send;
}

async fn list<S: LinkAdmin>(State(state): State<Arc<S>>) -> Json<Vec<LinkSummary>> {
    Json(state.links().await)
}

async fn create<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Json(link): Json<NewLink>,
) -> Answer<LinkSummary> {
    answer(state.create_link(link).await)
}

async fn status<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<LinkStatus> {
    answer(state.link_status(name).await)
}

async fn delete<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Stopped> {
    answer(
        state
            .delete_link(name)
            .await
            .map(|()| Stopped { topics: Vec::new() }),
    )
}

/// A link's new source (`POST /v1/links/{name}/source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSource {
    /// Bootstrap servers of the source cluster.
    pub source: String,
}

async fn set_source<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    Json(body): Json<LinkSource>,
) -> Answer<LinkSummary> {
    answer(state.set_link_source(name, body.source).await)
}

async fn pause<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Stopped> {
    answer(
        state
            .pause_link(name, true)
            .await
            .map(|()| Stopped { topics: Vec::new() }),
    )
}

async fn resume<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Stopped> {
    answer(
        state
            .pause_link(name, false)
            .await
            .map(|()| Stopped { topics: Vec::new() }),
    )
}

async fn failover<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    Json(which): Json<StopMirrors>,
) -> Answer<Stopped> {
    answer(state.stop_mirrors(name, which, false).await)
}

async fn promote<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    Json(which): Json<StopMirrors>,
) -> Answer<Stopped> {
    answer(state.stop_mirrors(name, which, true).await)
}

async fn restore<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    Json(which): Json<StopMirrors>,
) -> Answer<Stopped> {
    answer(state.restore_mirrors(name, which).await)
}

/// The link routes.
pub fn routes<S: LinkAdmin>() -> Router<Arc<S>> {
    Router::new()
        .route("/v1/links", get(list::<S>).post(create::<S>))
        .route("/v1/links/{name}", get(status::<S>).delete(delete::<S>))
        .route("/v1/links/{name}/pause", post(pause::<S>))
        .route("/v1/links/{name}/source", post(set_source::<S>))
        .route("/v1/links/{name}/resume", post(resume::<S>))
        .route("/v1/links/{name}/failover", post(failover::<S>))
        .route("/v1/links/{name}/promote", post(promote::<S>))
        .route("/v1/links/{name}/restore", post(restore::<S>))
}
