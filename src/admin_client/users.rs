//! SCRAM users: AlterUserScramCredentials and DescribeUserScramCredentials, as
//! `kafka-configs.sh --entity-type users` uses them. The password is salted and hashed here
//! (PBKDF2), so it never leaves this process.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use strata_api::security::scram::{ScramMechanism, random_bytes};

use super::{AdminClient, check, text};

/// A user and the SCRAM mechanisms it has credentials for, with their iterations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScramUser {
    /// The user name.
    pub user: String,
    /// (`SCRAM-SHA-256`, iterations), …
    pub mechanisms: Vec<(String, i32)>,
}

impl AdminClient {
    /// Sets `user`'s password for each of `mechanisms`.
    pub async fn set_scram_password(
        &mut self,
        user: &str,
        password: &str,
        mechanisms: &[ScramMechanism],
        iterations: i32,
    ) -> anyhow::Result<()> {
        let upsertions = mechanisms
            .iter()
            .map(|m| {
                let salt = random_bytes(16);
                let salted =
                    m.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32);
                ScramCredentialUpsertion::default()
                    .with_name(text(user))
                    .with_mechanism(m.code())
                    .with_iterations(iterations)
                    .with_salt(salt.into())
                    .with_salted_password(salted.into())
            })
            .collect();
        self.alter_scram(
            AlterUserScramCredentialsRequest::default().with_upsertions(upsertions),
            user,
        )
        .await
    }

    /// Removes `user`'s credentials for each of `mechanisms`.
    pub async fn delete_scram_user(
        &mut self,
        user: &str,
        mechanisms: &[ScramMechanism],
    ) -> anyhow::Result<()> {
        let deletions = mechanisms
            .iter()
            .map(|m| {
                ScramCredentialDeletion::default()
                    .with_name(text(user))
                    .with_mechanism(m.code())
            })
            .collect();
        self.alter_scram(
            AlterUserScramCredentialsRequest::default().with_deletions(deletions),
            user,
        )
        .await
    }

    async fn alter_scram(
        &mut self,
        request: AlterUserScramCredentialsRequest,
        user: &str,
    ) -> anyhow::Result<()> {
        // One mechanism per request: Kafka refuses a user named twice in one request.
        let (deletions, upsertions) = (request.deletions, request.upsertions);
        for deletion in deletions {
            let one = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
            self.alter_one(one, user).await?;
        }
        for upsertion in upsertions {
            let one = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
            self.alter_one(one, user).await?;
        }
        Ok(())
    }

    async fn alter_one(
        &mut self,
        request: AlterUserScramCredentialsRequest,
        user: &str,
    ) -> anyhow::Result<()> {
        let response = self.call_any(0, &request).await?;
        for result in response.results {
            check(result.error_code, result.error_message.as_ref(), || {
                format!("changing the credentials of user '{user}'")
            })?;
        }
        Ok(())
    }

    /// Users with SCRAM credentials: those named, or all.
    pub async fn scram_users(
        &mut self,
        users: Option<&[String]>,
    ) -> anyhow::Result<Vec<ScramUser>> {
        let request =
            DescribeUserScramCredentialsRequest::default().with_users(users.map(|names| {
                names
                    .iter()
                    .map(|n| UserName::default().with_name(text(n)))
                    .collect()
            }));
        let response = self.call_any(0, &request).await?;
        check(response.error_code, response.error_message.as_ref(), || {
            "describing SCRAM users".to_owned()
        })?;
        let mut out = Vec::new();
        for result in response.results {
            check(result.error_code, result.error_message.as_ref(), || {
                format!("describing user '{}'", result.user)
            })?;
            out.push(ScramUser {
                user: result.user.to_string(),
                mechanisms: result
                    .credential_infos
                    .iter()
                    .map(|c| {
                        let name = ScramMechanism::from_code(c.mechanism).map_or_else(
                            || format!("mechanism {}", c.mechanism),
                            |m| m.name().to_owned(),
                        );
                        (name, c.iterations)
                    })
                    .collect(),
            });
        }
        Ok(out)
    }
}
