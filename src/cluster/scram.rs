//! SCRAM credentials in the metadata log: AlterUserScramCredentials through the controller,
//! and the credentials as the SASL exchange reads them.

use std::collections::BTreeMap;

use strata_api::BrokerError;
use strata_api::broker::ScramUpdate;
use strata_api::security::scram::{ScramCredential, ScramMechanism};
use strata_controller::MetadataImage;
use strata_controller::raft::admin::{AdminAnswer, AdminRequest, ScramChange};
use strata_controller::record;

use super::admin::ClusterAdmin;

/// The records that give a new cluster the users of `bootstrap.scram.users.file`: both
/// mechanisms, a random salt each, 4096 iterations (what `strata user create` does).
pub fn bootstrap_records(users: &crate::config::BootstrapUsers) -> Vec<record::MetadataRecord> {
    let mut out = Vec::new();
    for (user, password) in &users.0 {
        for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let salt = strata_api::security::scram::random_bytes(16);
            let iterations = strata_api::security::scram::MIN_ITERATIONS;
            let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations as u32);
            let c = mechanism.credential(salt, &salted, iterations);
            out.push(record::MetadataRecord::SetScramCredential {
                user: user.clone(),
                mechanism: mechanism.name().to_owned(),
                credential: Some(record::ScramCredential {
                    salt: c.salt,
                    stored_key: c.stored_key,
                    server_key: c.server_key,
                    iterations: c.iterations,
                }),
            });
        }
    }
    out
}

impl ClusterAdmin {
    /// Applies credential changes; per change, why it was refused, if it was.
    pub(crate) async fn alter_scram(
        &self,
        updates: Vec<ScramUpdate>,
    ) -> Result<Vec<Option<String>>, BrokerError> {
        let changes = updates
            .into_iter()
            .map(|u| ScramChange {
                user: u.user,
                mechanism: u.mechanism.name().to_owned(),
                credential: u.credential.map(|c| record::ScramCredential {
                    salt: c.salt,
                    stored_key: c.stored_key,
                    server_key: c.server_key,
                    iterations: c.iterations,
                }),
            })
            .collect();
        match self.request(AdminRequest::AlterScram(changes)).await? {
            AdminAnswer::ScramResults(results) => Ok(results),
            other => Err(BrokerError::InvalidRequest(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }
}

/// A user's credential for `mechanism`.
pub(crate) fn credential(
    image: &MetadataImage,
    user: &str,
    mechanism: ScramMechanism,
) -> Option<ScramCredential> {
    let c = image.scram.get(user)?.get(mechanism.name())?;
    Some(ScramCredential {
        salt: c.salt.clone(),
        stored_key: c.stored_key.clone(),
        server_key: c.server_key.clone(),
        iterations: c.iterations,
    })
}

/// Every user with credentials: their mechanisms and iterations.
pub(crate) fn users(image: &MetadataImage) -> BTreeMap<String, Vec<(ScramMechanism, i32)>> {
    image
        .scram
        .iter()
        .map(|(user, mechanisms)| {
            let list = mechanisms
                .iter()
                .filter_map(|(name, c)| Some((ScramMechanism::from_name(name)?, c.iterations)))
                .collect();
            (user.clone(), list)
        })
        .collect()
}
