//! `strata acl`: the ACLs of a running cluster (any Kafka-compatible one with an authorizer),
//! over the Kafka protocol, with `kafka-acls.sh`'s flags.

use anyhow::bail;
use clap::{Args, Subcommand};
use strata_api::security::acl::{
    Acl, AclFilter, CLUSTER_NAME, FilterPattern, Operation, PatternType, Permission, ResourceType,
    WILDCARD,
};

use super::{Output, table};
use crate::admin_client::AdminClient;

/// The resource an ACL command is about.
#[derive(Debug, Args, Default)]
pub struct ResourceArgs {
    /// A topic (`*`: every topic).
    #[arg(long, group = "resource")]
    topic: Option<String>,
    /// A consumer group (`*`: every group).
    #[arg(long, group = "resource")]
    group: Option<String>,
    /// The cluster.
    #[arg(long, group = "resource")]
    cluster: bool,
    /// A transactional id.
    #[arg(long, group = "resource")]
    transactional_id: Option<String>,
    /// `literal` (the name itself), `prefixed` (names starting with it); for list and delete
    /// also `any` and `match` (every ACL that applies to the name).
    #[arg(long, default_value = "literal")]
    resource_pattern_type: String,
}

impl ResourceArgs {
    fn resource(&self) -> Option<(ResourceType, String)> {
        if let Some(topic) = &self.topic {
            Some((ResourceType::Topic, topic.clone()))
        } else if let Some(group) = &self.group {
            Some((ResourceType::Group, group.clone()))
        } else if self.cluster {
            Some((ResourceType::Cluster, CLUSTER_NAME.to_owned()))
        } else {
            self.transactional_id
                .as_ref()
                .map(|id| (ResourceType::TransactionalId, id.clone()))
        }
    }
}

/// `strata acl …`.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs: each principal × each operation on the resource.
    Create {
        /// Principals allowed (`User:alice`, `User:*`; repeatable).
        #[arg(long = "allow-principal")]
        allow: Vec<String>,
        /// Principals denied (repeatable).
        #[arg(long = "deny-principal")]
        deny: Vec<String>,
        /// Hosts the ACLs apply to (IP addresses; `*` when omitted).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Operations: Read, Write, Create, Delete, Alter, Describe, ClusterAction,
        /// DescribeConfigs, AlterConfigs, IdempotentWrite, All (repeatable).
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        #[command(flatten)]
        resource: ResourceArgs,
    },
    /// List ACLs, all or those of a resource or principal.
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        resource: ResourceArgs,
    },
    /// Remove the ACLs of a resource (or of a principal), printing them.
    Delete {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
        /// Only this operation's.
        #[arg(long)]
        operation: Option<String>,
        #[command(flatten)]
        resource: ResourceArgs,
    },
}

fn operation(name: &str) -> anyhow::Result<Operation> {
    Operation::parse(name).ok_or_else(|| {
        anyhow::anyhow!(
            "'{name}' is not an operation: Read, Write, Create, Delete, Alter, Describe, \
             ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All"
        )
    })
}

fn filter(
    resource: &ResourceArgs,
    principal: Option<String>,
    operation_name: Option<&str>,
) -> anyhow::Result<AclFilter> {
    let (resource_type, name) = resource.resource().unzip();
    let pattern = match resource.resource_pattern_type.to_ascii_lowercase().as_str() {
        "literal" => FilterPattern::Exactly(PatternType::Literal),
        "prefixed" => FilterPattern::Exactly(PatternType::Prefixed),
        "any" => FilterPattern::Any,
        "match" => FilterPattern::Match,
        other => bail!("'{other}' is not literal, prefixed, any or match"),
    };
    // Without a resource, the pattern type does not narrow anything.
    let pattern = if name.is_none() {
        FilterPattern::Any
    } else {
        pattern
    };
    Ok(AclFilter {
        resource_type,
        name,
        pattern,
        principal,
        host: None,
        operation: operation_name.map(operation).transpose()?,
        permission: None,
    })
}

/// Runs `command` against the cluster behind `bootstrap`.
pub async fn run(bootstrap: &str, command: AclCommand, output: Output) -> anyhow::Result<String> {
    let mut admin = AdminClient::new(bootstrap);
    match command {
        AclCommand::Create {
            allow,
            deny,
            hosts,
            operations,
            resource,
        } => {
            let Some((resource_type, name)) = resource.resource() else {
                bail!("name a resource: --topic, --group, --cluster or --transactional-id");
            };
            if allow.is_empty() && deny.is_empty() {
                bail!("name a principal: --allow-principal or --deny-principal");
            }
            let pattern = match resource.resource_pattern_type.to_ascii_lowercase().as_str() {
                "literal" => PatternType::Literal,
                "prefixed" => PatternType::Prefixed,
                other => bail!("an ACL's pattern type is literal or prefixed, not '{other}'"),
            };
            let hosts = if hosts.is_empty() {
                vec![WILDCARD.to_owned()]
            } else {
                hosts
            };
            let mut acls = Vec::new();
            let principals = allow
                .iter()
                .map(|p| (p, Permission::Allow))
                .chain(deny.iter().map(|p| (p, Permission::Deny)));
            for (principal, permission) in principals {
                for host in &hosts {
                    for op in &operations {
                        let acl = Acl {
                            resource_type,
                            name: name.clone(),
                            pattern,
                            principal: principal.clone(),
                            host: host.clone(),
                            operation: operation(op)?,
                            permission,
                        };
                        acl.validate().map_err(|e| anyhow::anyhow!(e))?;
                        acls.push(acl);
                    }
                }
            }
            admin.create_acls(&acls).await?;
            render(output, &acls, "created")
        }
        AclCommand::List {
            principal,
            resource,
        } => {
            let acls = admin
                .describe_acls(&filter(&resource, principal, None)?)
                .await?;
            render(output, &acls, "")
        }
        AclCommand::Delete {
            principal,
            operation,
            resource,
        } => {
            if resource.resource().is_none() && principal.is_none() {
                bail!(
                    "name what to delete: a resource (--topic, --group, --cluster, --transactional-id) or --principal"
                );
            }
            let acls = admin
                .delete_acls(&filter(&resource, principal, operation.as_deref())?)
                .await?;
            render(output, &acls, "deleted")
        }
    }
}

fn render(output: Output, acls: &[Acl], verb: &str) -> anyhow::Result<String> {
    let rows: Vec<Vec<String>> = acls
        .iter()
        .map(|a| {
            vec![
                a.principal.clone(),
                if a.permission == Permission::Allow {
                    "ALLOW"
                } else {
                    "DENY"
                }
                .to_owned(),
                a.operation.name().to_owned(),
                a.resource_type.name().to_owned(),
                a.name.clone(),
                if a.pattern == PatternType::Literal {
                    "LITERAL"
                } else {
                    "PREFIXED"
                }
                .to_owned(),
                a.host.clone(),
            ]
        })
        .collect();
    Ok(match output {
        Output::Json => output.json(
            &acls
                .iter()
                .zip(&rows)
                .map(|(_, r)| {
                    serde_json::json!({
                        "principal": r[0], "permission": r[1], "operation": r[2],
                        "resource_type": r[3], "resource": r[4], "pattern": r[5], "host": r[6],
                    })
                })
                .collect::<Vec<_>>(),
        )?,
        Output::Text => {
            let table = table(
                &[
                    "PRINCIPAL",
                    "PERMISSION",
                    "OPERATION",
                    "RESOURCE-TYPE",
                    "RESOURCE",
                    "PATTERN",
                    "HOST",
                ],
                &rows,
            );
            if verb.is_empty() {
                table
            } else {
                format!("{} ACLs {verb}\n{table}", acls.len())
            }
        }
    })
}
