//! The OpenAPI 3 document of the admin HTTP API, generated from the handlers' and types'
//! annotations (utoipa), served at `GET /v1/openapi.json`.

use axum::Json;
use utoipa::OpenApi;

use crate::admin::{self, Check, Health, Readiness, TieringStatus};
use crate::cluster_api::{self, Deleted};
use crate::links::{
    self, LinkSource, LinkStatus, LinkSummary, MirrorPartition, MirrorStatus, NewLink, StopMirrors,
    Stopped,
};
use crate::model::*;
use crate::rest::ErrorBody;
use crate::security::admin_auth::{self, Role, Whoami};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Strata admin API",
        description = "Operate a Strata cluster: its brokers and controllers, topics, consumer groups, tiered storage and cluster links. Served by every node's admin listener; answers are cluster-wide. Errors are JSON: {\"error\": \"…\"}. With admin.api.authentication set, every path but the probes asks for HTTP Basic (a user's SCRAM or PLAIN password) or a bearer token; the viewer role only reads.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        admin::health, admin::ready, admin::tiering, admin::metrics, document, admin_auth::whoami,
        cluster_api::cluster,
        cluster_api::list_topics, cluster_api::create_topic, cluster_api::describe_topic,
        cluster_api::delete_topic, cluster_api::topic_configs, cluster_api::alter_topic_configs,
        cluster_api::add_partitions, cluster_api::read_records,
        cluster_api::list_groups, cluster_api::describe_group, cluster_api::delete_group,
        cluster_api::reset_offsets,
        links::list, links::create, links::status, links::delete, links::set_source,
        links::pause, links::resume, links::failover, links::promote, links::restore,
    ),
    components(schemas(
        ErrorBody, Health, Check, Readiness, TieringStatus, Whoami, Role, ClusterView, BrokerView,
        ControllerView, TopicSummary, NewTopic, TopicDetail, PartitionDetail, TopicConfig,
        ConfigChanges, PartitionCount, RecordPage, RecordView, GroupSummary, GroupDetail,
        GroupMember, GroupOffset, TopicPartitions, OffsetReset, Deleted, NewLink, LinkSummary,
        LinkStatus, MirrorStatus, MirrorPartition, LinkSource, StopMirrors, Stopped,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "node", description = "This node: health, readiness, metrics, its tiered partitions"),
        (name = "cluster", description = "Brokers, controllers and partition health"),
        (name = "topics", description = "Topics: create, describe, configs, partitions, records"),
        (name = "groups", description = "Consumer groups: lag, offsets, deletion"),
        (name = "links", description = "Cluster links: mirroring another cluster, failover"),
    )
)]
pub struct ApiDoc;

/// HTTP Basic (a user's password) and bearer tokens, as `admin.api.authentication` enables
/// them; `/v1/health`, `/v1/ready` and `/v1/whoami` need neither.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let none: [&str; 0] = [];
        doc.security = Some(vec![
            SecurityRequirement::new("basic", none),
            SecurityRequirement::new("token", none),
        ]);
        for open in ["/v1/health", "/v1/ready", admin_auth::WHOAMI] {
            if let Some(item) = doc.paths.paths.get_mut(open)
                && let Some(get) = item.get.as_mut()
            {
                // An empty requirement: callable without credentials.
                get.security = Some(vec![SecurityRequirement::default()]);
            }
        }
    }
}

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node",
    responses((status = 200, description = "This document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    Json(doc)
}
