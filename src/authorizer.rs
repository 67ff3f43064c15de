//! The broker's authorizer (`authorizer.class.name`): the ACLs of the metadata image,
//! indexed once per change, and the decisions of Kafka's `StandardAuthorizer`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use strata_api::security::Session;
use strata_api::security::acl::{
    self, Acl, AclIndex, AuthorizerConfig, Operation, PatternType, Permission, ResourceType,
};
use strata_controller::MetadataImage;
use strata_controller::record::AclRecord;
use uuid::Uuid;

/// The authorizer of a broker that has one.
#[derive(Debug)]
pub struct Authorizer {
    config: AuthorizerConfig,
    /// The index and the image's `acl_version` it was built from.
    index: ArcSwap<(u64, AclIndex)>,
}

impl Authorizer {
    /// An authorizer with these super users and default.
    pub fn new(config: AuthorizerConfig) -> Self {
        Self {
            config,
            index: ArcSwap::from_pointee((0, AclIndex::default())),
        }
    }

    /// The index of `image`'s ACLs, built again only when they changed.
    fn index(&self, image: &MetadataImage) -> Arc<(u64, AclIndex)> {
        let current = self.index.load_full();
        if current.0 == image.acl_version {
            return current;
        }
        let built = Arc::new((
            image.acl_version,
            AclIndex::new(image.acls.values().filter_map(from_record)),
        ));
        self.index.store(Arc::clone(&built));
        built
    }

    /// Whether `session` may do `operation` on the resource.
    pub fn authorize(
        &self,
        image: &MetadataImage,
        session: &Session,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let index = self.index(image);
        acl::authorize(
            &self.config,
            &index.1,
            &session.principal.to_string(),
            &session.peer.ip().to_string(),
            operation,
            resource_type,
            name,
        )
    }

    /// Whether `session` may write to some topic (KIP-679).
    pub fn may_write_some_topic(&self, image: &MetadataImage, session: &Session) -> bool {
        let index = self.index(image);
        acl::may_write_some_topic(
            &self.config,
            &index.1,
            &session.principal.to_string(),
            &session.peer.ip().to_string(),
        )
    }
}

/// An ACL of the metadata log, if its codes are ones this broker knows.
pub fn from_record(record: &AclRecord) -> Option<Acl> {
    Some(Acl {
        resource_type: ResourceType::from_code(record.resource_type)?,
        name: record.name.clone(),
        pattern: PatternType::from_code(record.pattern)?,
        principal: record.principal.clone(),
        host: record.host.clone(),
        operation: Operation::from_code(record.operation)?,
        permission: Permission::from_code(record.permission)?,
    })
}

/// The metadata record of an ACL.
pub fn to_record(acl: &Acl) -> AclRecord {
    AclRecord {
        resource_type: acl.resource_type.code(),
        name: acl.name.clone(),
        pattern: acl.pattern.code(),
        principal: acl.principal.clone(),
        host: acl.host.clone(),
        operation: acl.operation.code(),
        permission: acl.permission.code(),
    }
}

/// Every ACL of `image` with its id.
pub fn acls(image: &MetadataImage) -> Vec<(Uuid, Acl)> {
    image
        .acls
        .iter()
        .filter_map(|(id, r)| Some((*id, from_record(r)?)))
        .collect()
}
