//! CreateAcls (key 30), DescribeAcls (key 29) and DeleteAcls (key 31): ACLs in the metadata
//! log, as `kafka-acls.sh` and the AdminClient manage them. Without an authorizer they answer
//! SECURITY_DISABLED, as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{
    Acl, AclFilter, CLUSTER_NAME, FilterPattern, Operation, PatternType, Permission, ResourceType,
};

const ANY: i8 = 1;
const MATCH: i8 = 2;

fn disabled() -> BrokerError {
    BrokerError::SecurityDisabled("no authorizer is configured (authorizer.class.name)".into())
}

/// A filter from its protocol fields; the reason it is invalid.
#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    Ok(AclFilter {
        resource_type: match resource_type {
            ANY => None,
            code => Some(
                ResourceType::from_code(code)
                    .ok_or_else(|| format!("resource type {code} is not served"))?,
            ),
        },
        name: name.map(|n| n.to_string()),
        pattern: match pattern {
            ANY => FilterPattern::Any,
            MATCH => FilterPattern::Match,
            code => FilterPattern::Exactly(
                PatternType::from_code(code)
                    .ok_or_else(|| format!("pattern type {code} is not valid"))?,
            ),
        },
        principal: principal.map(|p| p.to_string()),
        host: host.map(|h| h.to_string()),
        operation: match operation {
            ANY => None,
            code => Some(
                Operation::from_code(code)
                    .ok_or_else(|| format!("operation {code} is not valid"))?,
            ),
        },
        permission: match permission {
            ANY => None,
            code => Some(
                Permission::from_code(code)
                    .ok_or_else(|| format!("permission type {code} is not valid"))?,
            ),
        },
    })
}

pub(super) fn create<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: CreateAclsRequest,
) -> Result<Reply, HandleError> {
    let refuse_all = |e: BrokerError| {
        let results = request
            .creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(e.code())
                    .with_error_message(e.message().map(str_bytes))
            })
            .collect();
        ctx.respond(&CreateAclsResponse::default().with_results(results))
    };
    if !ctx.broker.authorizer_enabled() {
        return refuse_all(disabled());
    }
    if let Err(e) = ctx.check(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        return refuse_all(e);
    }
    let parsed: Vec<Result<Acl, String>> = request
        .creations
        .iter()
        .map(|c| {
            let acl = Acl {
                resource_type: ResourceType::from_code(c.resource_type)
                    .ok_or_else(|| format!("resource type {} is not served", c.resource_type))?,
                name: c.resource_name.to_string(),
                pattern: PatternType::from_code(c.resource_pattern_type).ok_or_else(|| {
                    format!(
                        "pattern type {} is not valid for an ACL (LITERAL or PREFIXED)",
                        c.resource_pattern_type
                    )
                })?,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: Operation::from_code(c.operation)
                    .ok_or_else(|| format!("operation {} is not valid for an ACL", c.operation))?,
                permission: Permission::from_code(c.permission_type).ok_or_else(|| {
                    format!(
                        "permission type {} is not valid for an ACL",
                        c.permission_type
                    )
                })?,
            };
            acl.validate()?;
            Ok(acl)
        })
        .collect();
    let valid: Vec<Acl> = parsed.iter().filter_map(|r| r.clone().ok()).collect();
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let outcome = if valid.is_empty() {
            Ok(())
        } else {
            broker.create_acls(valid).await
        };
        let results = parsed
            .into_iter()
            .map(|r| {
                let result = AclCreationResult::default();
                match (r, &outcome) {
                    (Err(message), _) => result
                        .with_error_code(BrokerError::InvalidRequest(String::new()).code())
                        .with_error_message(Some(str_bytes(message))),
                    (Ok(_), Err(e)) => result
                        .with_error_code(e.code())
                        .with_error_message(e.message().map(str_bytes)),
                    (Ok(_), Ok(())) => result,
                }
            })
            .collect();
        CreateAclsResponse::default().with_results(results)
    }))
}

pub(super) fn describe<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeAclsRequest,
) -> Result<Reply, HandleError> {
    let error = |e: BrokerError| {
        DescribeAclsResponse::default()
            .with_error_code(e.code())
            .with_error_message(e.message().map(str_bytes))
    };
    if !ctx.broker.authorizer_enabled() {
        return ctx.respond(&error(disabled()));
    }
    if let Err(e) = ctx.check(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return ctx.respond(&error(e));
    }
    let filter = match filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(message) => return ctx.respond(&error(BrokerError::InvalidRequest(message))),
    };
    // Grouped by resource pattern, as Kafka answers.
    let mut resources: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for (_, acl) in ctx.broker.acls() {
        if filter.matches(&acl) {
            resources
                .entry((acl.resource_type, acl.name.clone(), acl.pattern))
                .or_default()
                .push(
                    AclDescription::default()
                        .with_principal(str_bytes(acl.principal))
                        .with_host(str_bytes(acl.host))
                        .with_operation(acl.operation.code())
                        .with_permission_type(acl.permission.code()),
                );
        }
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(str_bytes(name))
                .with_pattern_type(pattern.code())
                .with_acls(acls)
        })
        .collect();
    ctx.respond(&DescribeAclsResponse::default().with_resources(resources))
}

pub(super) fn delete<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DeleteAclsRequest,
) -> Result<Reply, HandleError> {
    let refuse_all = |e: BrokerError| {
        let results = request
            .filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(e.code())
                    .with_error_message(e.message().map(str_bytes))
            })
            .collect();
        ctx.respond(&DeleteAclsResponse::default().with_filter_results(results))
    };
    if !ctx.broker.authorizer_enabled() {
        return refuse_all(disabled());
    }
    if let Err(e) = ctx.check(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        return refuse_all(e);
    }
    let acls = ctx.broker.acls();
    let mut ids = Vec::new();
    let results: Vec<DeleteAclsFilterResult> = request
        .filters
        .iter()
        .map(|f| {
            let parsed = filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            );
            match parsed {
                Err(message) => {
                    let e = BrokerError::InvalidRequest(message);
                    DeleteAclsFilterResult::default()
                        .with_error_code(e.code())
                        .with_error_message(e.message().map(str_bytes))
                }
                Ok(filter) => {
                    let matching = acls
                        .iter()
                        .filter(|(_, acl)| filter.matches(acl))
                        .map(|(id, acl)| {
                            ids.push(*id);
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(acl.resource_type.code())
                                .with_resource_name(str_bytes(acl.name.clone()))
                                .with_pattern_type(acl.pattern.code())
                                .with_principal(str_bytes(acl.principal.clone()))
                                .with_host(str_bytes(acl.host.clone()))
                                .with_operation(acl.operation.code())
                                .with_permission_type(acl.permission.code())
                        })
                        .collect();
                    DeleteAclsFilterResult::default().with_matching_acls(matching)
                }
            }
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let outcome = if ids.is_empty() {
            Ok(())
        } else {
            broker.delete_acls(ids).await
        };
        let results = match outcome {
            Ok(()) => results,
            Err(e) => results
                .into_iter()
                .map(|r| {
                    r.with_error_code(e.code())
                        .with_error_message(e.message().map(str_bytes))
                        .with_matching_acls(Vec::new())
                })
                .collect(),
        };
        DeleteAclsResponse::default().with_filter_results(results)
    }))
}
