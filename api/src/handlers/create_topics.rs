//! CreateTopics (key 19): topics with partition count, replication factor, assignment, configs.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{Ctx, HandleError, error_parts, later, str_bytes};
use crate::broker::{Broker, BrokerError, NewTopic};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: CreateTopicsRequest,
) -> Result<Reply, HandleError> {
    let mut seen = std::collections::HashSet::new();
    // CREATE on the cluster allows any topic; otherwise CREATE on each topic.
    let any_topic = ctx.visible(Operation::Create, ResourceType::Cluster, CLUSTER_NAME);
    let planned: Vec<_> = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let new = if !seen.insert(name.clone()) {
                Err(BrokerError::InvalidRequest(format!(
                    "topic '{name}' appears twice in the request"
                )))
            } else if !any_topic && !ctx.allowed(Operation::Create, ResourceType::Topic, &name) {
                Err(BrokerError::TopicAuthorizationFailed)
            } else {
                new_topic(
                    &name,
                    topic.num_partitions,
                    topic.replication_factor,
                    topic.assignments,
                    topic.configs,
                )
            };
            (topic.name, name, new)
        })
        .collect();
    let (broker, version, validate_only) =
        (Arc::clone(ctx.broker), ctx.version, request.validate_only);
    Ok(later(ctx, async move {
        let mut topics = Vec::with_capacity(planned.len());
        for (topic_name, name, new) in planned {
            let result = match new {
                Ok(new) => broker.create_topic(new, validate_only).await,
                Err(e) => Err(e),
            };
            let (code, message) = error_parts(&result);
            let entry = CreatableTopicResult::default()
                .with_name(topic_name)
                .with_error_code(code)
                .with_error_message(message);
            // Topic ids exist from v7; partition count, replication factor and configs from v5.
            topics.push(match result {
                Ok(_) if version < 5 => entry,
                Err(_) if version < 5 => entry,
                Ok(meta) => {
                    let configs = broker.topic_configs(&name).unwrap_or_default();
                    entry
                        .with_topic_id(if version >= 7 {
                            meta.topic_id
                        } else {
                            uuid::Uuid::nil()
                        })
                        .with_num_partitions(meta.partitions.len() as i32)
                        .with_replication_factor(meta.replication_factor())
                        .with_configs(Some(
                            configs
                                .into_iter()
                                .map(|c| {
                                    CreatableTopicConfigs::default()
                                        .with_name(str_bytes(c.name))
                                        .with_value(c.value.map(str_bytes))
                                        .with_read_only(c.read_only)
                                        .with_config_source(c.source as i8)
                                })
                                .collect(),
                        ))
                }
                Err(_) => entry.with_num_partitions(-1).with_replication_factor(-1),
            });
        }
        CreateTopicsResponse::default().with_topics(topics)
    }))
}

fn new_topic(
    name: &str,
    num_partitions: i32,
    replication_factor: i16,
    assignments: Vec<kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment>,
    configs: Vec<kafka_protocol::messages::create_topics_request::CreatableTopicConfig>,
) -> Result<NewTopic, BrokerError> {
    if !assignments.is_empty() && (num_partitions != -1 || replication_factor != -1) {
        return Err(BrokerError::InvalidRequest(
            "both a replica assignment and a partition count or replication factor were given"
                .into(),
        ));
    }
    let mut config_map = BTreeMap::new();
    for config in configs {
        let Some(value) = config.value else {
            return Err(BrokerError::InvalidConfig(format!(
                "config '{}' has a null value",
                config.name.as_str()
            )));
        };
        config_map.insert(config.name.to_string(), value.to_string());
    }
    let partitions = match num_partitions {
        -1 if assignments.is_empty() => None,
        -1 => Some(assignments.len() as i32),
        n => Some(n),
    };
    let replication_factor = match replication_factor {
        -1 => assignments.first().map(|a| a.broker_ids.len() as i16),
        n => Some(n),
    };
    Ok(NewTopic {
        name: name.to_owned(),
        partitions,
        replication_factor,
        assignments: assignments
            .into_iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.into_iter().map(|b| b.0).collect(),
                )
            })
            .collect(),
        configs: config_map,
    })
}
