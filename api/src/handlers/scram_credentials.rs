//! DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key 51): SCRAM users
//! in the metadata log. The client salts and hashes the password (PBKDF2); the broker keeps
//! StoredKey and ServerKey of the salted password, never the salted password itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::{Broker, ScramUpdate};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};
use crate::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramMechanism};

const RESOURCE_NOT_FOUND: i16 = 91;
const DUPLICATE_RESOURCE: i16 = 92;
const UNACCEPTABLE_CREDENTIAL: i16 = 93;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

pub(super) fn describe<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeUserScramCredentialsRequest,
) -> Result<Reply, HandleError> {
    if let Err(e) = ctx.check(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return ctx.respond(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(e.code())
                .with_error_message(e.message().map(str_bytes)),
        );
    }
    let users = ctx.broker.scram_users();
    let info = |list: &[(ScramMechanism, i32)]| {
        list.iter()
            .map(|(m, iterations)| {
                CredentialInfo::default()
                    .with_mechanism(m.code())
                    .with_iterations(*iterations)
            })
            .collect::<Vec<_>>()
    };
    let results = match request.users {
        // Every user, when none is named.
        None => users
            .iter()
            .map(|(user, list)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(str_bytes(user.clone()))
                    .with_credential_infos(info(list))
            })
            .collect(),
        Some(names) => {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for name in &names {
                *seen.entry(name.name.to_string()).or_default() += 1;
            }
            seen.into_iter()
                .map(|(user, count)| {
                    let result = DescribeUserScramCredentialsResult::default()
                        .with_user(str_bytes(user.clone()));
                    if count > 1 {
                        return result
                            .with_error_code(DUPLICATE_RESOURCE)
                            .with_error_message(Some(str_bytes(format!(
                                "cannot describe user '{user}' twice in one request"
                            ))));
                    }
                    match users.get(&user) {
                        Some(list) => result.with_credential_infos(info(list)),
                        None => result
                            .with_error_code(RESOURCE_NOT_FOUND)
                            .with_error_message(Some(str_bytes(format!(
                                "attempt to describe a user credential that does not exist: {user}"
                            )))),
                    }
                })
                .collect()
        }
    };
    ctx.respond(&DescribeUserScramCredentialsResponse::default().with_results(results))
}

/// Checks one upsertion as Kafka does; the error code and message of a bad one.
fn check_upsertion(
    name: &str,
    mechanism: i8,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<ScramMechanism, (i16, String)> {
    let mechanism = ScramMechanism::from_code(mechanism).ok_or((
        UNSUPPORTED_SASL_MECHANISM,
        format!("unknown SCRAM mechanism {mechanism}"),
    ))?;
    if name.is_empty() {
        return Err((UNACCEPTABLE_CREDENTIAL, "username must not be empty".into()));
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err((
            UNACCEPTABLE_CREDENTIAL,
            format!(
                "{iterations} iterations is outside {MIN_ITERATIONS}..={MAX_ITERATIONS} for {}",
                mechanism.name()
            ),
        ));
    }
    if salt.is_empty() || salted_password.is_empty() {
        return Err((
            UNACCEPTABLE_CREDENTIAL,
            "the salt and the salted password must not be empty".into(),
        ));
    }
    Ok(mechanism)
}

pub(super) fn alter<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: AlterUserScramCredentialsRequest,
) -> Result<Reply, HandleError> {
    if let Err(e) = ctx.check(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        let mut users: Vec<String> = request
            .deletions
            .iter()
            .map(|d| d.name.to_string())
            .chain(request.upsertions.iter().map(|u| u.name.to_string()))
            .collect();
        users.sort();
        users.dedup();
        let results = users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(str_bytes(user))
                    .with_error_code(e.code())
                    .with_error_message(e.message().map(str_bytes))
            })
            .collect();
        return ctx.respond(&AlterUserScramCredentialsResponse::default().with_results(results));
    }
    // A user named more than once, in deletions or upsertions, is refused whole (Kafka).
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for name in request
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(request.upsertions.iter().map(|u| &u.name))
    {
        *count.entry(name.to_string()).or_default() += 1;
    }
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    for (user, n) in &count {
        if *n > 1 {
            errors.insert(
                user.clone(),
                (
                    DUPLICATE_RESOURCE,
                    "a user credential cannot be altered twice in the same request".into(),
                ),
            );
        }
    }
    let mut updates = Vec::new();
    for deletion in &request.deletions {
        let user = deletion.name.to_string();
        if errors.contains_key(&user) {
            continue;
        }
        match ScramMechanism::from_code(deletion.mechanism) {
            Some(_) if user.is_empty() => {
                errors.insert(
                    user,
                    (UNACCEPTABLE_CREDENTIAL, "username must not be empty".into()),
                );
            }
            Some(mechanism) => updates.push(ScramUpdate {
                user,
                mechanism,
                credential: None,
            }),
            None => {
                let message = format!("unknown SCRAM mechanism {}", deletion.mechanism);
                errors.insert(user, (UNSUPPORTED_SASL_MECHANISM, message));
            }
        }
    }
    for upsertion in &request.upsertions {
        let user = upsertion.name.to_string();
        if errors.contains_key(&user) {
            continue;
        }
        match check_upsertion(
            &user,
            upsertion.mechanism,
            upsertion.iterations,
            &upsertion.salt,
            &upsertion.salted_password,
        ) {
            Ok(mechanism) => updates.push(ScramUpdate {
                credential: Some(mechanism.credential(
                    upsertion.salt.to_vec(),
                    &upsertion.salted_password,
                    upsertion.iterations,
                )),
                user,
                mechanism,
            }),
            Err(e) => {
                errors.insert(user, e);
            }
        }
    }
    let broker = Arc::clone(ctx.broker);
    let users: Vec<String> = count.into_keys().collect();
    Ok(later(ctx, async move {
        let names: Vec<String> = updates.iter().map(|u| u.user.clone()).collect();
        if !updates.is_empty() {
            match broker.alter_scram(updates).await {
                Ok(results) => {
                    for (user, refusal) in names.into_iter().zip(results) {
                        if let Some(message) = refusal {
                            errors.insert(user, (RESOURCE_NOT_FOUND, message));
                        }
                    }
                }
                Err(e) => {
                    for user in names {
                        errors.insert(user, (e.code(), e.to_string()));
                    }
                }
            }
        }
        let results = users
            .into_iter()
            .map(|user| {
                let result =
                    AlterUserScramCredentialsResult::default().with_user(str_bytes(user.clone()));
                match errors.remove(&user) {
                    Some((code, message)) => result
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message))),
                    None => result,
                }
            })
            .collect();
        AlterUserScramCredentialsResponse::default().with_results(results)
    }))
}
