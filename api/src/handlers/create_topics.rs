//! CreateTopics (key 19): topics with partition count, replication factor, assignment, configs.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{Ctx, HandleError, error_parts, str_bytes};
use crate::broker::{Broker, BrokerError, NewTopic};
use crate::connection::Reply;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: CreateTopicsRequest,
) -> Result<Reply, HandleError> {
    let mut seen = std::collections::HashSet::new();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let result = if !seen.insert(name.clone()) {
                Err(BrokerError::InvalidRequest(format!(
                    "topic '{name}' appears twice in the request"
                )))
            } else {
                new_topic(
                    &name,
                    topic.num_partitions,
                    topic.replication_factor,
                    topic.assignments,
                    topic.configs,
                )
                .and_then(|new| ctx.broker.create_topic(new, request.validate_only))
            };
            let (code, message) = error_parts(&result);
            let version = ctx.version;
            let entry = CreatableTopicResult::default()
                .with_name(topic.name)
                .with_error_code(code)
                .with_error_message(message);
            // Topic ids exist from v7; partition count, replication factor and configs from v5.
            match result {
                Ok(_) if version < 5 => entry,
                Err(_) if version < 5 => entry,
                Ok(meta) => {
                    let configs = ctx.broker.topic_configs(&name).unwrap_or_default();
                    entry
                        .with_topic_id(if version >= 7 {
                            meta.topic_id
                        } else {
                            uuid::Uuid::nil()
                        })
                        .with_num_partitions(meta.partitions)
                        .with_replication_factor(1)
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
            }
        })
        .collect();
    ctx.respond(&CreateTopicsResponse::default().with_topics(topics))
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
