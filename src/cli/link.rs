//! `strata link …` and `strata mirror …`: cluster links and their mirror topics, through a
//! node's admin API (`/v1/links`).

use std::collections::BTreeMap;

use anyhow::Context;

use super::Output;
use clap::Subcommand;
use strata_api::links::{LinkStatus, LinkSummary, NewLink, StopMirrors, Stopped};

use super::http::call;
use super::table;

/// `strata link` subcommands.
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Create a link: mirror topics of a source cluster here, byte for byte at its offsets.
    Create {
        /// The link's name.
        name: String,
        /// Bootstrap servers of the source cluster, host:port[,host:port…].
        #[arg(long)]
        source: String,
        /// Source topics to mirror: a regular expression over whole names (default: all).
        #[arg(long)]
        topics: Option<String>,
        /// Source topics never to mirror (a regular expression).
        #[arg(long)]
        exclude_topics: Option<String>,
        /// Consumer groups whose committed offsets are copied (a regular expression).
        #[arg(long)]
        groups: Option<String>,
        /// Where new mirrors start: earliest (the source's whole history) or latest.
        #[arg(long, default_value = "earliest")]
        start: String,
        /// Prefix for mirror topic names (two links in opposite directions: `east.`).
        #[arg(long)]
        prefix: Option<String>,
        /// How often the groups' committed offsets are copied, ms.
        #[arg(long, default_value_t = 5000)]
        offset_sync_ms: u64,
        /// Kafka client properties to reach the source with (`security.protocol`, `sasl.*`,
        /// `ssl.*`, as `--command-config` reads them); a CA file is sent inline.
        #[arg(long)]
        source_config: Option<std::path::PathBuf>,
    },
    /// Every link.
    List,
    /// A link's mirror topics and how far each partition is behind the source.
    Status {
        /// The link.
        name: String,
    },
    /// Point a link at its source's new bootstrap servers (the source moved or was rebuilt).
    SetSource {
        /// The link.
        name: String,
        /// Bootstrap servers of the source cluster, host:port[,host:port…].
        #[arg(long)]
        source: String,
        /// New client properties to reach the source with (default: unchanged).
        #[arg(long)]
        source_config: Option<std::path::PathBuf>,
    },
    /// Stop fetching (mirrors stay read-only).
    Pause {
        /// The link.
        name: String,
    },
    /// Fetch again.
    Resume {
        /// The link.
        name: String,
    },
    /// Delete a link whose mirrors were failed over or promoted.
    Delete {
        /// The link.
        name: String,
    },
}

/// The topics a mirror command acts on.
#[derive(Debug, clap::Args)]
pub struct Chosen {
    /// The link.
    #[arg(long)]
    link: String,
    /// Every topic of the link.
    #[arg(long, conflicts_with = "topics")]
    all: bool,
    /// These topics, comma-separated.
    #[arg(long, value_delimiter = ',')]
    topics: Vec<String>,
}

/// `strata mirror` subcommands.
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// The source is lost: stop mirroring and make the mirror topics writable at their end.
    Failover(Chosen),
    /// Failback, on the old primary once it is back: its topics become mirrors of the new
    /// primary (the link's source); what they accepted after the cut is cut off and kept in
    /// `<topic>.strata-truncated`.
    TruncateAndRestore(Chosen),
    /// Planned, no loss: swap the roles of the link's two clusters. The source (reached at
    /// `--peer-admin`) stops taking writes, the mirrors here catch up and become writable,
    /// and the source's topics then mirror them through `--peer-link` (a link there whose
    /// source is this cluster).
    Reverse {
        /// The link here (its source is the current primary).
        #[arg(long)]
        link: String,
        /// The current primary's admin API, host:port.
        #[arg(long)]
        peer_admin: String,
        /// The link on the current primary whose source is this cluster.
        #[arg(long)]
        peer_link: String,
    },
    /// Planned: wait until the mirror topics have caught up with the source, then make them
    /// writable (stop the source's producers first).
    Promote(Chosen),
}

fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn summaries(links: &[LinkSummary]) -> String {
    let rows: Vec<Vec<String>> = links
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.source.clone(),
                l.state.clone(),
                l.topics.clone().unwrap_or_else(|| "(all)".into()),
                l.mirroring_topics.to_string(),
            ]
        })
        .collect();
    table(&["LINK", "SOURCE", "STATE", "TOPICS", "MIRRORING"], &rows)
}

fn status_text(status: &LinkStatus) -> String {
    let mut out = format!(
        "link {} from {} ({}): {} records behind, {:.1} s, {} bytes mirrored by this node\n",
        status.link.name,
        status.link.source,
        status.link.state,
        status.lag_records,
        status.lag_seconds,
        status.bytes_mirrored
    );
    if let Some(error) = &status.last_error {
        out.push_str(&format!("last error: {error}\n"));
    }
    let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
    let rows: Vec<Vec<String>> = status
        .mirrors
        .iter()
        .flat_map(|m| {
            m.partitions.iter().map(move |p| {
                vec![
                    m.topic.clone(),
                    p.partition.to_string(),
                    m.state.clone(),
                    opt(p.mirror_end),
                    opt(p.source_end),
                    opt(p.lag_records),
                    p.lag_seconds.map_or("-".into(), |s| format!("{s:.1}")),
                ]
            })
        })
        .collect();
    out.push_str(&table(
        &[
            "TOPIC",
            "PARTITION",
            "STATE",
            "MIRROR-END",
            "SOURCE-END",
            "LAG",
            "LAG-SECONDS",
        ],
        &rows,
    ));
    out
}

/// The client properties of `path` for a link. The CA file it names is sent inline
/// (`ssl.truststore.certificates`): every broker of this cluster mirrors, not only this host.
fn source_properties(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut props = crate::kafka_client::security::read_properties(path)?;
    for key in ["ssl.truststore.location", "ssl.ca.location"] {
        if let Some(ca) = props.remove(key) {
            let pem = std::fs::read_to_string(&ca)
                .with_context(|| format!("{}: {key}: cannot read {ca}", path.display()))?;
            props.insert("ssl.truststore.certificates".into(), pem);
        }
    }
    crate::kafka_client::ClientSecurity::from_properties(&props)
        .with_context(|| format!("--source-config {}", path.display()))?;
    Ok(props)
}

/// Runs a `strata link` command against the admin API at `admin`; what to print.
pub async fn link(admin: &str, command: LinkCommand, output: Output) -> anyhow::Result<String> {
    match command {
        LinkCommand::Create {
            name,
            source,
            topics,
            exclude_topics,
            groups,
            start,
            prefix,
            offset_sync_ms,
            source_config,
        } => {
            let source_config = source_config
                .as_deref()
                .map(source_properties)
                .transpose()?;
            let body = serde_json::to_vec(&NewLink {
                name,
                source,
                topics,
                exclude_topics,
                groups,
                start: Some(start),
                prefix,
                offset_sync_ms: Some(offset_sync_ms),
                source_config,
            })?;
            let created: LinkSummary =
                serde_json::from_slice(&call(admin, "POST", "/v1/links", Some(&body)).await?)
                    .context("the admin API sent unexpected JSON")?;
            if output == Output::Json {
                return output.json(&created);
            }
            Ok(format!(
                "link {} created: mirroring from {}\n",
                created.name, created.source
            ))
        }
        LinkCommand::List => {
            let links: Vec<LinkSummary> =
                serde_json::from_slice(&call(admin, "GET", "/v1/links", None).await?)
                    .context("the admin API sent unexpected JSON")?;
            if output == Output::Json {
                return output.json(&links);
            }
            Ok(summaries(&links))
        }
        LinkCommand::Status { name } => {
            let path = format!("/v1/links/{}", path_segment(&name));
            let status: LinkStatus =
                serde_json::from_slice(&call(admin, "GET", &path, None).await?)
                    .context("the admin API sent unexpected JSON")?;
            if output == Output::Json {
                return output.json(&status);
            }
            Ok(status_text(&status))
        }
        LinkCommand::SetSource {
            name,
            source,
            source_config,
        } => {
            let path = format!("/v1/links/{}/source", path_segment(&name));
            let source_config = source_config
                .as_deref()
                .map(source_properties)
                .transpose()?;
            let body = serde_json::to_vec(&strata_api::links::LinkSource {
                source,
                source_config,
            })?;
            let changed: LinkSummary =
                serde_json::from_slice(&call(admin, "POST", &path, Some(&body)).await?)
                    .context("the admin API sent unexpected JSON")?;
            if output == Output::Json {
                return output.json(&changed);
            }
            Ok(format!(
                "link {} now mirrors from {}\n",
                changed.name, changed.source
            ))
        }
        LinkCommand::Pause { name } => {
            let path = format!("/v1/links/{}/pause", path_segment(&name));
            call(admin, "POST", &path, None).await?;
            done(output, &name, "paused")
        }
        LinkCommand::Resume { name } => {
            let path = format!("/v1/links/{}/resume", path_segment(&name));
            call(admin, "POST", &path, None).await?;
            done(output, &name, "resumed")
        }
        LinkCommand::Delete { name } => {
            let path = format!("/v1/links/{}", path_segment(&name));
            call(admin, "DELETE", &path, None).await?;
            done(output, &name, "deleted")
        }
    }
}

/// What a link command without an answer of its own prints.
fn done(output: Output, link: &str, what: &str) -> anyhow::Result<String> {
    match output {
        Output::Json => output.json(&serde_json::json!({ "link": link, "done": what })),
        Output::Text => Ok(format!("link {link} {what}\n")),
    }
}

/// `strata mirror reverse`: freeze the primary (its topics become mirrors, its link paused),
/// promote here once caught up, then let the old primary follow.
async fn reverse(
    admin: &str,
    link: &str,
    peer_admin: &str,
    peer_link: &str,
) -> anyhow::Result<String> {
    let status: LinkStatus = serde_json::from_slice(
        &call(
            admin,
            "GET",
            &format!("/v1/links/{}", path_segment(link)),
            None,
        )
        .await?,
    )
    .context("the admin API sent unexpected JSON")?;
    let mirrors: Vec<&strata_api::links::MirrorStatus> = status
        .mirrors
        .iter()
        .filter(|m| m.state == "mirroring")
        .collect();
    if mirrors.is_empty() {
        anyhow::bail!("link {link} has no mirroring topics to reverse");
    }
    let here: Vec<String> = mirrors.iter().map(|m| m.topic.clone()).collect();
    let there: Vec<String> = mirrors.iter().map(|m| m.source_topic.clone()).collect();
    let peer = path_segment(peer_link);
    let mut out = String::new();
    // The peer's link must not fetch before this side is promoted: a mirror ahead of its
    // source would be cut back to it.
    call(peer_admin, "POST", &format!("/v1/links/{peer}/pause"), None).await?;
    let body = serde_json::to_vec(&StopMirrors {
        topics: Some(there.clone()),
    })?;
    call(
        peer_admin,
        "POST",
        &format!("/v1/links/{peer}/restore"),
        Some(&body),
    )
    .await
    .context("freezing the current primary")?;
    out.push_str(&format!(
        "{}: read-only on the current primary
",
        there.join(", ")
    ));
    let body = serde_json::to_vec(&StopMirrors {
        topics: Some(here.clone()),
    })?;
    call(
        admin,
        "POST",
        &format!("/v1/links/{}/promote", path_segment(link)),
        Some(&body),
    )
    .await
    .context(
        "promoting here (the current primary is read-only; run reverse again or resume it by hand)",
    )?;
    out.push_str(&format!(
        "{}: caught up and writable here
",
        here.join(", ")
    ));
    call(
        peer_admin,
        "POST",
        &format!("/v1/links/{peer}/resume"),
        None,
    )
    .await?;
    out.push_str(&format!(
        "the former primary now mirrors them through link {peer_link}
"
    ));
    Ok(out)
}

/// Runs a `strata mirror` command against the admin API at `admin`; what to print.
pub async fn mirror(admin: &str, command: MirrorCommand, output: Output) -> anyhow::Result<String> {
    let (Chosen { link, all, topics }, action) = match command {
        MirrorCommand::Reverse {
            link,
            peer_admin,
            peer_link,
        } => {
            let text = reverse(admin, &link, &peer_admin, &peer_link).await?;
            return match output {
                Output::Json => output
                    .json(&serde_json::json!({ "reversed": text.lines().collect::<Vec<_>>() })),
                Output::Text => Ok(text),
            };
        }
        MirrorCommand::Failover(chosen) => (chosen, "failover"),
        MirrorCommand::Promote(chosen) => (chosen, "promote"),
        MirrorCommand::TruncateAndRestore(chosen) => (chosen, "restore"),
    };
    if !all && topics.is_empty() {
        anyhow::bail!("name the mirror topics with --topics, or pass --all");
    }
    let which = StopMirrors {
        topics: (!all).then_some(topics),
    };
    let path = format!("/v1/links/{}/{action}", path_segment(&link));
    let body = serde_json::to_vec(&which)?;
    let stopped: Stopped = serde_json::from_slice(&call(admin, "POST", &path, Some(&body)).await?)
        .context("the admin API sent unexpected JSON")?;
    if output == Output::Json {
        return output.json(&stopped);
    }
    if stopped.topics.is_empty() {
        return Ok(format!("link {link} has no topics to {action}\n"));
    }
    Ok(stopped
        .topics
        .iter()
        .map(|t| match action {
            "restore" => format!(
                "{t}: mirrors {link}'s source again; records it had beyond the source go to {t}.strata-truncated\n"
            ),
            _ => format!("{t}: writable ({action})\n"),
        })
        .collect())
}
