//! ACLs with the semantics of Kafka's `StandardAuthorizer`: resource types, literal and
//! prefixed patterns, allow and deny with deny winning, implied operations, super users and
//! `allow.everyone.if.no.acl.found`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use super::KafkaPrincipal;

/// Kafka's `ResourceType` codes that ACLs apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster (named `kafka-cluster`).
    Cluster,
    /// A transactional id.
    TransactionalId,
}

/// The name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard: every resource of a type, every principal, every host.
pub const WILDCARD: &str = "*";

impl ResourceType {
    /// Its protocol code.
    pub fn code(self) -> i8 {
        match self {
            Self::Topic => 2,
            Self::Group => 3,
            Self::Cluster => 4,
            Self::TransactionalId => 5,
        }
    }

    /// The type of a protocol code.
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            2 => Self::Topic,
            3 => Self::Group,
            4 => Self::Cluster,
            5 => Self::TransactionalId,
            _ => return None,
        })
    }

    /// Its name as `kafka-acls.sh` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Topic => "Topic",
            Self::Group => "Group",
            Self::Cluster => "Cluster",
            Self::TransactionalId => "TransactionalId",
        }
    }
}

/// How an ACL's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    /// The name itself (or `*`: every name).
    Literal,
    /// Every name that starts with it.
    Prefixed,
}

impl PatternType {
    /// Its protocol code.
    pub fn code(self) -> i8 {
        match self {
            Self::Literal => 3,
            Self::Prefixed => 4,
        }
    }

    /// The pattern type of a protocol code (ANY and MATCH are filters, not patterns).
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(Self::Literal),
            4 => Some(Self::Prefixed),
            _ => None,
        }
    }
}

/// Kafka's `AclOperation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Every operation.
    All,
    /// Read.
    Read,
    /// Write.
    Write,
    /// Create.
    Create,
    /// Delete.
    Delete,
    /// Alter.
    Alter,
    /// Describe.
    Describe,
    /// Replica traffic between brokers.
    ClusterAction,
    /// DescribeConfigs.
    DescribeConfigs,
    /// AlterConfigs.
    AlterConfigs,
    /// Idempotent produce without transactions.
    IdempotentWrite,
}

impl Operation {
    /// Every operation but ALL.
    pub const EACH: [Self; 10] = [
        Self::Read,
        Self::Write,
        Self::Create,
        Self::Delete,
        Self::Alter,
        Self::Describe,
        Self::ClusterAction,
        Self::DescribeConfigs,
        Self::AlterConfigs,
        Self::IdempotentWrite,
    ];

    /// Its protocol code.
    pub fn code(self) -> i8 {
        match self {
            Self::All => 2,
            Self::Read => 3,
            Self::Write => 4,
            Self::Create => 5,
            Self::Delete => 6,
            Self::Alter => 7,
            Self::Describe => 8,
            Self::ClusterAction => 9,
            Self::DescribeConfigs => 10,
            Self::AlterConfigs => 11,
            Self::IdempotentWrite => 12,
        }
    }

    /// The operation of a protocol code (not ANY, which is a filter).
    pub fn from_code(code: i8) -> Option<Self> {
        std::iter::once(Self::All)
            .chain(Self::EACH)
            .find(|o| o.code() == code)
    }

    /// Its name as `kafka-acls.sh` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "All",
            Self::Read => "Read",
            Self::Write => "Write",
            Self::Create => "Create",
            Self::Delete => "Delete",
            Self::Alter => "Alter",
            Self::Describe => "Describe",
            Self::ClusterAction => "ClusterAction",
            Self::DescribeConfigs => "DescribeConfigs",
            Self::AlterConfigs => "AlterConfigs",
            Self::IdempotentWrite => "IdempotentWrite",
        }
    }

    /// Parses a `kafka-acls.sh` name, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        let wanted = text.replace(['_', '-'], "").to_ascii_lowercase();
        std::iter::once(Self::All)
            .chain(Self::EACH)
            .find(|o| o.name().to_ascii_lowercase() == wanted)
    }

    /// Whether an ALLOW of `self` allows `wanted`: itself, ALL everything, and the implied
    /// DESCRIBE (of READ, WRITE, DELETE, ALTER) and DESCRIBE_CONFIGS (of ALTER_CONFIGS).
    fn allows(self, wanted: Self) -> bool {
        self == wanted
            || self == Self::All
            || (wanted == Self::Describe
                && matches!(self, Self::Read | Self::Write | Self::Delete | Self::Alter))
            || (wanted == Self::DescribeConfigs && self == Self::AlterConfigs)
    }

    /// Whether a DENY of `self` denies `wanted`: itself and ALL only.
    fn denies(self, wanted: Self) -> bool {
        self == wanted || self == Self::All
    }
}

/// ALLOW or DENY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Denied.
    Deny,
    /// Allowed.
    Allow,
}

impl Permission {
    /// Its protocol code.
    pub fn code(self) -> i8 {
        match self {
            Self::Deny => 2,
            Self::Allow => 3,
        }
    }

    /// The permission of a protocol code (not ANY).
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Self::Deny),
            3 => Some(Self::Allow),
            _ => None,
        }
    }
}

/// One ACL: `principal` from `host` is `permission`ed `operation` on the resources of
/// `resource_type` that `name` and `pattern` match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name (`*`: every one, for a literal pattern).
    pub name: String,
    /// How the name matches.
    pub pattern: PatternType,
    /// `User:alice` or `User:*`.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    /// The operation.
    pub operation: Operation,
    /// Allowed or denied.
    pub permission: Permission,
}

impl Acl {
    /// Checks an ACL as CreateAcls does; the reason it is refused.
    pub fn validate(&self) -> Result<(), String> {
        KafkaPrincipal::parse(&self.principal)?;
        if self.name.is_empty() {
            return Err("the resource name must not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER_NAME {
            return Err(format!(
                "the cluster resource is named '{CLUSTER_NAME}', not '{}'",
                self.name
            ));
        }
        if self.host != WILDCARD && self.host.parse::<IpAddr>().is_err() {
            return Err(format!("host '{}' is not an IP address or *", self.host));
        }
        Ok(())
    }

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == WILDCARD || self.host == host)
    }
}

/// A filter of DescribeAcls and DeleteAcls: `None` fields match anything.
#[derive(Debug, Clone, Default)]
pub struct AclFilter {
    /// The resource type (ANY: `None`).
    pub resource_type: Option<ResourceType>,
    /// The resource name.
    pub name: Option<String>,
    /// LITERAL, PREFIXED, `None` (ANY) or MATCH.
    pub pattern: FilterPattern,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation (ANY: `None`).
    pub operation: Option<Operation>,
    /// The permission (ANY: `None`).
    pub permission: Option<Permission>,
}

/// The pattern part of a filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FilterPattern {
    /// Any pattern type, the name compared as it is.
    #[default]
    Any,
    /// Only this pattern type.
    Exactly(PatternType),
    /// Every ACL that would apply to a resource of that name: the literal one, the literal
    /// `*` and every prefix of it.
    Match,
}

impl AclFilter {
    /// Whether `acl` passes.
    pub fn matches(&self, acl: &Acl) -> bool {
        let name_ok = match (&self.name, self.pattern) {
            (None, FilterPattern::Any | FilterPattern::Match) => true,
            (None, FilterPattern::Exactly(p)) => acl.pattern == p,
            (Some(name), FilterPattern::Any) => &acl.name == name,
            (Some(name), FilterPattern::Exactly(p)) => acl.pattern == p && &acl.name == name,
            (Some(name), FilterPattern::Match) => match acl.pattern {
                PatternType::Literal => &acl.name == name || acl.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&acl.name),
            },
        };
        name_ok
            && self.resource_type.is_none_or(|t| t == acl.resource_type)
            && self.principal.as_ref().is_none_or(|p| p == &acl.principal)
            && self.host.as_ref().is_none_or(|h| h == &acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }
}

/// The ACLs of one resource type, indexed for lookups by name.
#[derive(Debug, Default)]
struct TypeIndex {
    literal: HashMap<String, Vec<Acl>>,
    /// Prefixed ACLs by prefix; a name is checked against each of its prefixes.
    prefixed: BTreeMap<String, Vec<Acl>>,
}

/// Every ACL, indexed; replaced whole when ACLs change.
#[derive(Debug, Default)]
pub struct AclIndex {
    types: HashMap<ResourceType, TypeIndex>,
    count: usize,
}

impl AclIndex {
    /// Indexes `acls`.
    pub fn new(acls: impl IntoIterator<Item = Acl>) -> Self {
        let mut index = Self::default();
        for acl in acls {
            let by_type = index.types.entry(acl.resource_type).or_default();
            let map = match acl.pattern {
                PatternType::Literal => by_type.literal.entry(acl.name.clone()).or_default(),
                PatternType::Prefixed => by_type.prefixed.entry(acl.name.clone()).or_default(),
            };
            map.push(acl);
            index.count += 1;
        }
        index
    }

    /// How many ACLs there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every ACL that names the resource: its literal name, the literal `*`, and each
    /// prefix of it.
    fn matching<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Acl> + 'a {
        let by_type = self.types.get(&resource_type);
        let literal = by_type.into_iter().flat_map(move |t| {
            let exact = t.literal.get(name).into_iter().flatten();
            let wildcard = (name != WILDCARD)
                .then(|| t.literal.get(WILDCARD))
                .flatten()
                .into_iter()
                .flatten();
            exact.chain(wildcard)
        });
        let prefixed = by_type.into_iter().flat_map(move |t| {
            // Only prefixes of the name can match: probe each one (names are short).
            name.char_indices()
                .map(|(i, c)| &name[..i + c.len_utf8()])
                .filter_map(|prefix| t.prefixed.get(prefix))
                .flatten()
        });
        literal.chain(prefixed)
    }

    /// Every ACL.
    pub fn all(&self) -> impl Iterator<Item = &Acl> {
        self.types
            .values()
            .flat_map(|t| t.literal.values().chain(t.prefixed.values()).flatten())
    }
}

/// Who may do what: `super.users`, the ACLs, and what happens on a resource without any.
#[derive(Debug, Default, Clone)]
pub struct AuthorizerConfig {
    /// `super.users`: allowed everything.
    pub super_users: HashSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// The decision for `principal` at `host` doing `operation` on a resource.
pub fn authorize(
    config: &AuthorizerConfig,
    index: &AclIndex,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if config.super_users.contains(principal) {
        return true;
    }
    let mut any = false;
    let mut allowed = false;
    for acl in index.matching(resource_type, name) {
        any = true;
        if !acl.applies_to(principal, host) {
            continue;
        }
        match acl.permission {
            Permission::Deny if acl.operation.denies(operation) => return false,
            Permission::Allow if acl.operation.allows(operation) => allowed = true,
            _ => {}
        }
    }
    if !any {
        return config.allow_if_no_acl;
    }
    allowed
}

/// Whether `principal` may write to some topic (KIP-679: an idempotent producer needs no
/// IDEMPOTENT_WRITE on the cluster if it may write somewhere): an ALLOW of WRITE or ALL on
/// some topic pattern that no DENY of the same pattern cancels.
pub fn may_write_some_topic(
    config: &AuthorizerConfig,
    index: &AclIndex,
    principal: &str,
    host: &str,
) -> bool {
    if config.super_users.contains(principal) {
        return true;
    }
    let Some(topics) = index.types.get(&ResourceType::Topic) else {
        return config.allow_if_no_acl;
    };
    let lists = topics.literal.values().chain(topics.prefixed.values());
    let applicable: Vec<&Acl> = lists
        .flatten()
        .filter(|a| a.applies_to(principal, host))
        .collect();
    let denied = |acl: &Acl| {
        applicable.iter().any(|d| {
            d.permission == Permission::Deny
                && d.operation.denies(Operation::Write)
                && ((d.pattern == PatternType::Literal
                    && (d.name == WILDCARD || (d.pattern == acl.pattern && d.name == acl.name)))
                    || (d.pattern == PatternType::Prefixed && acl.name.starts_with(&d.name)))
        })
    };
    applicable.iter().any(|a| {
        a.permission == Permission::Allow && a.operation.allows(Operation::Write) && !denied(a)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> Acl {
        Acl {
            resource_type,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation,
            permission,
        }
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    fn can(index: &AclIndex, principal: &str, op: Operation, t: ResourceType, name: &str) -> bool {
        authorize(
            &AuthorizerConfig::default(),
            index,
            principal,
            "10.0.0.1",
            op,
            t,
            name,
        )
    }

    #[test]
    fn deny_wins_over_allow() {
        let index = AclIndex::new([
            acl(Topic, "orders", Literal, "User:alice", Read, Allow),
            acl(Topic, "ord", Prefixed, "User:alice", Read, Deny),
        ]);
        assert!(!can(&index, "User:alice", Read, Topic, "orders"));
        // DENY READ does not deny DESCRIBE, which the ALLOW READ implies.
        assert!(can(&index, "User:alice", Describe, Topic, "orders"));
    }

    #[test]
    fn operations_imply_describe() {
        let index = AclIndex::new([
            acl(Topic, "t", Literal, "User:a", Write, Allow),
            acl(Topic, "c", Literal, "User:a", AlterConfigs, Allow),
            acl(Group, "g", Literal, "User:a", All, Allow),
        ]);
        assert!(can(&index, "User:a", Describe, Topic, "t"));
        assert!(!can(&index, "User:a", Read, Topic, "t"));
        assert!(can(&index, "User:a", DescribeConfigs, Topic, "c"));
        assert!(!can(&index, "User:a", Describe, Topic, "c"));
        assert!(can(&index, "User:a", Delete, Group, "g"));
    }

    #[test]
    fn patterns_and_wildcards_match() {
        let index = AclIndex::new([
            acl(Topic, "logs-", Prefixed, "User:a", Read, Allow),
            acl(Topic, "*", Literal, "User:*", Describe, Allow),
            acl(Group, "*", Literal, "User:b", Read, Allow),
        ]);
        assert!(can(&index, "User:a", Read, Topic, "logs-app"));
        assert!(!can(&index, "User:a", Read, Topic, "log"));
        assert!(can(&index, "User:zed", Describe, Topic, "anything"));
        assert!(can(&index, "User:b", Read, Group, "g1"));
        assert!(!can(&index, "User:a", Read, Group, "g1"));
    }

    #[test]
    fn hosts_super_users_and_the_default() {
        let mut restricted = acl(Topic, "t", Literal, "User:a", Read, Allow);
        restricted.host = "10.0.0.2".into();
        let index = AclIndex::new([restricted]);
        assert!(!can(&index, "User:a", Read, Topic, "t"), "another host");
        assert!(authorize(
            &AuthorizerConfig::default(),
            &index,
            "User:a",
            "10.0.0.2",
            Read,
            Topic,
            "t"
        ));
        let config = AuthorizerConfig {
            super_users: ["User:admin".to_owned()].into(),
            allow_if_no_acl: false,
        };
        assert!(authorize(
            &config,
            &index,
            "User:admin",
            "h",
            Alter,
            Cluster,
            CLUSTER_NAME
        ));
        // No ACL on the resource: the default decides.
        assert!(!authorize(
            &config, &index, "User:a", "h", Read, Topic, "other"
        ));
        let open = AuthorizerConfig {
            allow_if_no_acl: true,
            ..AuthorizerConfig::default()
        };
        assert!(authorize(
            &open, &index, "User:a", "h", Read, Topic, "other"
        ));
        // An ACL on the resource for someone else: not "no ACL found", so denied.
        assert!(!authorize(
            &open, &index, "User:b", "10.0.0.2", Read, Topic, "t"
        ));
    }

    #[test]
    fn idempotent_producers_may_write_somewhere() {
        let config = AuthorizerConfig::default();
        let index = AclIndex::new([acl(Topic, "t", Literal, "User:a", Write, Allow)]);
        assert!(may_write_some_topic(&config, &index, "User:a", "h"));
        assert!(!may_write_some_topic(&config, &index, "User:b", "h"));
        let denied = AclIndex::new([
            acl(Topic, "t", Literal, "User:a", Write, Allow),
            acl(Topic, "*", Literal, "User:a", Write, Deny),
        ]);
        assert!(!may_write_some_topic(&config, &denied, "User:a", "h"));
    }

    #[test]
    fn filters_select_acls() {
        let acls = [
            acl(Topic, "orders", Literal, "User:a", Read, Allow),
            acl(Topic, "ord", Prefixed, "User:a", Read, Allow),
            acl(Topic, "*", Literal, "User:b", Write, Deny),
            acl(Group, "orders", Literal, "User:a", Read, Allow),
        ];
        let count = |filter: &AclFilter| acls.iter().filter(|a| filter.matches(a)).count();
        assert_eq!(count(&AclFilter::default()), 4);
        let topic = AclFilter {
            resource_type: Some(Topic),
            ..AclFilter::default()
        };
        assert_eq!(count(&topic), 3);
        let matching = AclFilter {
            resource_type: Some(Topic),
            name: Some("orders".into()),
            pattern: FilterPattern::Match,
            ..AclFilter::default()
        };
        assert_eq!(count(&matching), 3);
        let literal = AclFilter {
            name: Some("orders".into()),
            pattern: FilterPattern::Exactly(Literal),
            ..AclFilter::default()
        };
        assert_eq!(count(&literal), 2);
        assert!(acls[0].validate().is_ok());
        let mut bad = acls[0].clone();
        bad.principal = "alice".into();
        assert!(bad.validate().is_err());
        let mut cluster = acls[0].clone();
        cluster.resource_type = Cluster;
        assert!(cluster.validate().is_err());
    }
}
