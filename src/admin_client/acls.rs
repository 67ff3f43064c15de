//! ACLs: CreateAcls, DescribeAcls and DeleteAcls, as `kafka-acls.sh` uses them.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use strata_api::security::acl::{
    Acl, AclFilter, FilterPattern, Operation, PatternType, Permission, ResourceType,
};

use super::{AdminClient, check, text};

const ANY: i8 = 1;
const MATCH: i8 = 2;

/// The protocol fields of a filter: resource type, name, pattern, principal, host,
/// operation, permission.
type FilterFields = (
    i8,
    Option<StrBytes>,
    i8,
    Option<StrBytes>,
    Option<StrBytes>,
    i8,
    i8,
);

fn fields(filter: &AclFilter) -> FilterFields {
    (
        filter.resource_type.map_or(ANY, ResourceType::code),
        filter.name.as_deref().map(text),
        match filter.pattern {
            FilterPattern::Any => ANY,
            FilterPattern::Match => MATCH,
            FilterPattern::Exactly(p) => p.code(),
        },
        filter.principal.as_deref().map(text),
        filter.host.as_deref().map(text),
        filter.operation.map_or(ANY, Operation::code),
        filter.permission.map_or(ANY, Permission::code),
    )
}

/// An ACL from the codes of a response.
#[allow(clippy::too_many_arguments)]
fn acl(
    resource_type: i8,
    name: &StrBytes,
    pattern: i8,
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> anyhow::Result<Acl> {
    let unknown =
        |what: &str, code: i8| anyhow::anyhow!("the broker sent an unknown {what} {code}");
    Ok(Acl {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| unknown("resource type", resource_type))?,
        name: name.to_string(),
        pattern: PatternType::from_code(pattern).ok_or_else(|| unknown("pattern type", pattern))?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(operation)
            .ok_or_else(|| unknown("operation", operation))?,
        permission: Permission::from_code(permission)
            .ok_or_else(|| unknown("permission", permission))?,
    })
}

impl AdminClient {
    /// Adds ACLs.
    pub async fn create_acls(&mut self, acls: &[Acl]) -> anyhow::Result<()> {
        let creations = acls
            .iter()
            .map(|a| {
                AclCreation::default()
                    .with_resource_type(a.resource_type.code())
                    .with_resource_name(text(&a.name))
                    .with_resource_pattern_type(a.pattern.code())
                    .with_principal(text(&a.principal))
                    .with_host(text(&a.host))
                    .with_operation(a.operation.code())
                    .with_permission_type(a.permission.code())
            })
            .collect();
        let response = self
            .call_any(3, &CreateAclsRequest::default().with_creations(creations))
            .await?;
        for result in response.results {
            check(result.error_code, result.error_message.as_ref(), || {
                "creating ACLs".to_owned()
            })?;
        }
        Ok(())
    }

    /// The ACLs that pass `filter`.
    pub async fn describe_acls(&mut self, filter: &AclFilter) -> anyhow::Result<Vec<Acl>> {
        let (resource_type, name, pattern, principal, host, operation, permission) = fields(filter);
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(resource_type)
            .with_resource_name_filter(name)
            .with_pattern_type_filter(pattern)
            .with_principal_filter(principal)
            .with_host_filter(host)
            .with_operation(operation)
            .with_permission_type(permission);
        let response = self.call_any(3, &request).await?;
        check(response.error_code, response.error_message.as_ref(), || {
            "listing ACLs".to_owned()
        })?;
        let mut out = Vec::new();
        for resource in &response.resources {
            for a in &resource.acls {
                out.push(acl(
                    resource.resource_type,
                    &resource.resource_name,
                    resource.pattern_type,
                    &a.principal,
                    &a.host,
                    a.operation,
                    a.permission_type,
                )?);
            }
        }
        Ok(out)
    }

    /// Removes the ACLs that pass `filter`; returns them.
    pub async fn delete_acls(&mut self, filter: &AclFilter) -> anyhow::Result<Vec<Acl>> {
        let (resource_type, name, pattern, principal, host, operation, permission) = fields(filter);
        let request = DeleteAclsRequest::default().with_filters(vec![
            DeleteAclsFilter::default()
                .with_resource_type_filter(resource_type)
                .with_resource_name_filter(name)
                .with_pattern_type_filter(pattern)
                .with_principal_filter(principal)
                .with_host_filter(host)
                .with_operation(operation)
                .with_permission_type(permission),
        ]);
        let response = self.call_any(3, &request).await?;
        let mut out = Vec::new();
        for result in &response.filter_results {
            check(result.error_code, result.error_message.as_ref(), || {
                "deleting ACLs".to_owned()
            })?;
            for m in &result.matching_acls {
                out.push(acl(
                    m.resource_type,
                    &m.resource_name,
                    m.pattern_type,
                    &m.principal,
                    &m.host,
                    m.operation,
                    m.permission_type,
                )?);
            }
        }
        Ok(out)
    }
}
