//! `strata user`: SCRAM users of a running cluster (any Kafka-compatible one), over the Kafka
//! protocol, as `kafka-configs.sh --entity-type users` manages them. Passwords are read from
//! stdin, salted and hashed here; they never travel.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;
use strata_api::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramMechanism};

use super::{Output, table};
use crate::admin_client::AdminClient;

/// `strata user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or change its password: the password is the first line of stdin.
    Create {
        /// The user name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; both when omitted).
        #[arg(long = "mechanism")]
        mechanisms: Vec<String>,
        /// PBKDF2 iterations (4096 to 16384). Keep the default: a user with other iterations
        /// can be told from an unknown one by what the broker sends before the password check.
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: i32,
    },
    /// Delete a user's credentials (every mechanism when none is given).
    Delete {
        /// The user name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable).
        #[arg(long = "mechanism")]
        mechanisms: Vec<String>,
    },
    /// Every user with SCRAM credentials.
    List,
    /// One user's mechanisms and iterations.
    Describe {
        /// The user name.
        name: String,
    },
}

fn mechanisms(names: &[String]) -> anyhow::Result<Vec<ScramMechanism>> {
    if names.is_empty() {
        return Ok(ScramMechanism::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            ScramMechanism::from_name(&n.to_ascii_uppercase())
                .with_context(|| format!("'{n}' is not SCRAM-SHA-256 or SCRAM-SHA-512"))
        })
        .collect()
}

/// The first line of stdin, without its line end.
fn password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!(
            "no password: give it as the first line of stdin (echo 'secret' | strata user create NAME)"
        );
    }
    Ok(password)
}

/// Runs `command` against the cluster behind `bootstrap`.
pub async fn run(bootstrap: &str, command: UserCommand, output: Output) -> anyhow::Result<String> {
    let mut admin = AdminClient::new(bootstrap);
    match command {
        UserCommand::Create {
            name,
            mechanisms: names,
            iterations,
        } => {
            let list = mechanisms(&names)?;
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                bail!("--iterations {iterations} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}");
            }
            let password = password()?;
            admin
                .set_scram_password(&name, &password, &list, iterations)
                .await?;
            let names: Vec<&str> = list.iter().map(|m| m.name()).collect();
            message(
                output,
                format!("user '{name}' set for {}\n", names.join(", ")),
            )
        }
        UserCommand::Delete {
            name,
            mechanisms: names,
        } => {
            let list = if names.is_empty() {
                let users = admin.scram_users(Some(std::slice::from_ref(&name))).await?;
                users
                    .iter()
                    .flat_map(|u| u.mechanisms.iter())
                    .filter_map(|(m, _)| ScramMechanism::from_name(m))
                    .collect()
            } else {
                mechanisms(&names)?
            };
            admin.delete_scram_user(&name, &list).await?;
            message(output, format!("user '{name}' deleted\n"))
        }
        UserCommand::List => {
            let users = admin.scram_users(None).await?;
            render(output, &users)
        }
        UserCommand::Describe { name } => {
            let users = admin.scram_users(Some(std::slice::from_ref(&name))).await?;
            render(output, &users)
        }
    }
}

fn message(output: Output, text: String) -> anyhow::Result<String> {
    match output {
        Output::Json => output.json(&serde_json::json!({ "message": text.trim_end() })),
        Output::Text => Ok(text),
    }
}

fn render(output: Output, users: &[crate::admin_client::ScramUser]) -> anyhow::Result<String> {
    Ok(match output {
        Output::Json => output.json(&users)?,
        Output::Text => {
            let rows: Vec<Vec<String>> = users
                .iter()
                .flat_map(|u| {
                    u.mechanisms.iter().map(|(m, iterations)| {
                        vec![u.user.clone(), m.clone(), iterations.to_string()]
                    })
                })
                .collect();
            table(&["USER", "MECHANISM", "ITERATIONS"], &rows)
        }
    })
}
