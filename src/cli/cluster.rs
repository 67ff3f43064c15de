//! `strata controller` (run one voter of the metadata quorum) and `strata cluster status`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use strata_controller::raft::{Controller, LEADER_SILENCE_MS, QuorumConfig, QuorumStatus, client};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Parses `id@host:port` voter specs.
pub fn parse_voters(specs: &[String]) -> anyhow::Result<BTreeMap<u64, String>> {
    let voters = crate::config::parse_voters(&specs.join(","))
        .map_err(|e| anyhow::anyhow!("--voters: {e}"))?;
    if voters.is_empty() {
        bail!("--voters names no voter");
    }
    Ok(voters)
}

/// Starts controller `id` on `listener` with its raft data in `data_dir`, and forms the quorum
/// of `voters` on first start (this node alone when empty). A configured `cluster_id` must
/// match the one the quorum has.
pub async fn start_controller(
    id: u64,
    listener: TcpListener,
    data_dir: &Path,
    voters: BTreeMap<u64, String>,
    quorum: QuorumConfig,
    cluster_id: Option<&str>,
    join: bool,
) -> anyhow::Result<Controller> {
    let bound = listener.local_addr()?;
    let voters = if voters.is_empty() {
        BTreeMap::from([(id, bound.to_string())])
    } else {
        voters
    };
    if !join && !voters.contains_key(&id) {
        let ids: Vec<String> = voters.keys().map(u64::to_string).collect();
        bail!(
            "node {id} is not among the voters ({}); give it --join to add it later",
            ids.join(", ")
        );
    }
    if let Some(warning) = even_voters_warning(voters.len()) {
        tracing::warn!("{warning}");
    }
    let controller = Controller::start(id, data_dir, listener, quorum).await?;
    if let Some(cluster_id) = cluster_id {
        controller.expect_cluster_id(cluster_id)?;
    }
    if join {
        tracing::info!(node = id, %bound, "waiting to be added to the quorum");
        return Ok(controller);
    }
    controller.bootstrap(&voters).await?;
    if voters.len() == 1 {
        // A lone voter need not wait an election timeout to lead.
        let _ = controller.raft.trigger().elect().await;
    }
    let voters: Vec<String> = voters.iter().map(|(id, a)| format!("{id}@{a}")).collect();
    tracing::info!(node = id, %bound, voters = %voters.join(","), "controller ready");
    Ok(controller)
}

/// Logs changes of the active controller until `shutdown`.
pub async fn watch_leader(controller: &Controller, mut shutdown: watch::Receiver<bool>) {
    let mut leader = None;
    let mut metrics = controller.raft.metrics();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            changed = metrics.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = metrics.borrow().current_leader;
                if now != leader {
                    match now {
                        Some(leader) => tracing::info!(node = controller.id, leader, "active controller changed"),
                        None => tracing::info!(node = controller.id, "no active controller"),
                    }
                    leader = now;
                }
            }
        }
    }
}

/// Runs controller `id` until `shutdown`: answers on `listen`, and forms the quorum of
/// `voters` on first start.
pub async fn run_controller(
    id: u64,
    listen: &str,
    data_dir: &Path,
    voters: BTreeMap<u64, String>,
    quorum: QuorumConfig,
    join: bool,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let _lock = crate::dir_lock::DirLock::acquire(data_dir)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind the controller listener on {listen}"))?;
    let bound = listener.local_addr()?;
    let controller = start_controller(id, listener, data_dir, voters, quorum, None, join).await?;
    println!("strata controller listening on {bound}");
    let (shutdown, failed) = crate::server::stop_on_failure(shutdown, Some(controller.failure()));
    let retired = controller.retired();
    tokio::select! {
        _ = watch_leader(&controller, shutdown) => {}
        _ = retired => {
            eprintln!(
                "controller {id} was removed from the metadata quorum and has stopped; \
                 delete {} before adding it back with `strata cluster add-voter`",
                data_dir.display()
            );
        }
    }
    controller.shutdown().await;
    match crate::server::failure_cause(failed).await {
        Some(cause) => bail!(
            "the metadata log failed ({cause}); exiting so that a supervisor restarts this node"
        ),
        None => Ok(()),
    }
}

/// `strata cluster add-voter` / `remove-voter`: sends the change to the active controller and
/// says, in a sentence, what the quorum is now.
pub async fn change_voters(
    controllers: &[String],
    request: strata_controller::raft::admin::AdminRequest,
) -> anyhow::Result<String> {
    use strata_controller::raft::admin::{AdminAnswer, AdminRequest};
    let (done, what) = match &request {
        AdminRequest::AddVoter { id, addr } => (
            format!("controller {id} ({addr}) is a voter now"),
            format!("adding controller {id} ({addr}) as a voter"),
        ),
        AdminRequest::RemoveVoter { id } => (
            format!("controller {id} is no longer a voter and has stopped taking part"),
            format!("removing voter {id}"),
        ),
        _ => ("done".to_owned(), "the change".to_owned()),
    };
    let reply = client::admin(controllers, request)
        .await
        .with_context(|| format!("{what} failed"))?;
    let mut out = done;
    if let AdminAnswer::Voters(voters) = reply.answer {
        let ids: Vec<String> = voters.keys().map(u64::to_string).collect();
        out.push_str(&format!(
            "; the quorum has {} voters ({}).\n",
            voters.len(),
            ids.join(", ")
        ));
        if let Some(warning) = even_voters_warning(voters.len()) {
            out.push_str(&format!("warning: {warning}\n"));
        }
    } else {
        out.push_str(".\n");
    }
    Ok(out)
}

/// Why an even voter count is worth a warning, if `voters` is even.
pub fn even_voters_warning(voters: usize) -> Option<String> {
    (voters > 0 && voters.is_multiple_of(2)).then(|| {
        format!(
            "{voters} voters tolerate no more failures than {} (a majority of {voters} is {}); \
             run an odd number of voters",
            voters - 1,
            voters / 2 + 1
        )
    })
}

/// What `strata cluster status` found.
pub struct Status {
    /// The report.
    pub text: String,
    /// Whether a controller is active.
    pub has_leader: bool,
    /// For scripts: the active controller and each controller's answer.
    pub json: serde_json::Value,
    /// When none is: why, as far as the answers tell.
    pub problem: String,
}

/// `strata cluster status`: asks the given controllers and every voter they name, and shows
/// each controller's view with the active controller's replication lag per voter, then the
/// brokers.
pub async fn status(controllers: &[String]) -> Status {
    let mut asked: BTreeMap<String, Result<QuorumStatus, String>> = BTreeMap::new();
    let mut queue: Vec<String> = controllers.to_vec();
    while let Some(addr) = queue.pop() {
        if asked.contains_key(&addr) {
            continue;
        }
        let answer = client::status(&addr).await.map_err(|e| match e {
            client::ClientError::Unreachable(e) => e.to_string(),
            other => other.to_string(),
        });
        if let Ok(view) = &answer {
            queue.extend(view.voters.iter().map(|v| v.addr.clone()));
        }
        asked.insert(addr, answer);
    }
    let claimed = asked
        .values()
        .filter_map(|v| v.as_ref().ok())
        .filter(|s| s.leader == Some(s.id))
        .max_by_key(|s| s.term);
    // A leader whose majority stopped answering still says it leads, but commits nothing.
    let leader = claimed.filter(|l| l.quorum_ack_ms.is_none_or(|ms| ms <= LEADER_SILENCE_MS));
    let mut out = String::new();
    let voters: BTreeMap<u64, String> = asked
        .values()
        .filter_map(|v| v.as_ref().ok())
        .max_by_key(|s| (s.leader == Some(s.id), s.term))
        .map(|s| s.voters.iter().map(|v| (v.id, v.addr.clone())).collect())
        .unwrap_or_default();
    match leader {
        Some(l) => {
            out.push_str(&format!(
                "active controller: {} (term {}); {} voters; {} topics, {} partitions\n",
                l.id,
                l.term,
                voters.len(),
                l.topics,
                l.partitions
            ));
            out.push_str(&format!(
                "partitions: {} under-replicated, {} offline, {} being reassigned\n",
                l.under_replicated, l.offline_count, l.reassigning
            ));
            if !l.offline.is_empty() {
                let more = l.offline_count.saturating_sub(l.offline.len());
                out.push_str(&format!(
                    "offline (no leader): {}{}\n",
                    l.offline.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
            out.push('\n');
        }
        None => match claimed {
            Some(l) => out.push_str(&format!(
                "active controller: none (controller {} leads term {} but no majority of \
                 voters has answered it for {:.1} s)\n\n",
                l.id,
                l.term,
                l.quorum_ack_ms.unwrap_or(0) as f64 / 1000.0
            )),
            None => out.push_str("active controller: none\n\n"),
        },
    }
    let end = leader.and_then(|l| l.last_log_index).unwrap_or(0);
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut unreachable = Vec::new();
    for (addr, view) in &asked {
        let id = match view {
            Ok(s) => s.id.to_string(),
            Err(_) => voters
                .iter()
                .find(|(_, a)| *a == addr)
                .map_or("?".to_owned(), |(id, _)| id.to_string()),
        };
        let row = match view {
            Ok(s) => {
                let lag = leader
                    .and_then(|l| l.voters.iter().find(|v| v.id == s.id))
                    .and_then(|v| v.matched)
                    .map_or("-".to_owned(), |m| end.saturating_sub(m).to_string());
                let role = if voters.contains_key(&s.id) || voters.is_empty() {
                    s.role.to_lowercase()
                } else {
                    format!("{} (not a voter)", s.role.to_lowercase())
                };
                vec![
                    id.clone(),
                    addr.clone(),
                    role,
                    s.term.to_string(),
                    opt(s.last_log_index),
                    opt(s.applied),
                    opt(s.snapshot),
                    lag,
                ]
            }
            Err(e) => {
                unreachable.push(format!("controller {id} at {addr} is unreachable: {e}"));
                let mut row = vec![id.clone(), addr.clone(), "unreachable".to_owned()];
                row.extend(std::iter::repeat_n("-".to_owned(), 5));
                row
            }
        };
        rows.push((id, row));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
    out.push_str(&super::table(
        &[
            "ID", "ADDRESS", "ROLE", "TERM", "LAST-LOG", "APPLIED", "SNAPSHOT", "LAG",
        ],
        &rows,
    ));
    for line in &unreachable {
        out.push_str(&format!("{line}\n"));
    }
    if let Some(warning) = even_voters_warning(voters.len()) {
        out.push_str(&format!("warning: {warning}\n"));
    }
    if let Some(l) = leader {
        let rows: Vec<Vec<String>> = l
            .brokers
            .iter()
            .map(|b| {
                vec![
                    b.id.to_string(),
                    if b.fenced { "fenced" } else { "active" }.to_owned(),
                    b.rack.clone().unwrap_or_else(|| "-".into()),
                    b.leaders.to_string(),
                    b.replicas.to_string(),
                    b.out_of_sync.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push('\n');
            out.push_str(&super::table(
                &[
                    "BROKER",
                    "STATE",
                    "RACK",
                    "LEADERS",
                    "REPLICAS",
                    "OUT-OF-SYNC",
                ],
                &rows,
            ));
        }
    }
    let reachable = asked.values().filter(|v| v.is_ok()).count();
    let problem = if reachable == 0 {
        format!(
            "no controller answered at {}",
            asked.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    } else {
        format!(
            "no active controller: {reachable} of {} voters answered and none leads \
             (an election under way, or no majority of voters up)",
            voters.len().max(reachable)
        )
    };
    let json = serde_json::json!({
        "active_controller": leader.map(|l| l.id),
        "term": leader.map(|l| l.term),
        "problem": (leader.is_none()).then(|| problem.clone()),
        "controllers": asked
            .iter()
            .map(|(addr, answer)| match answer {
                Ok(status) => serde_json::json!({ "address": addr, "status": status }),
                Err(e) => serde_json::json!({ "address": addr, "error": e }),
            })
            .collect::<Vec<_>>(),
    });
    Status {
        text: out,
        has_leader: leader.is_some(),
        problem,
        json,
    }
}

fn opt(value: Option<u64>) -> String {
    value.map_or("-".to_owned(), |v| v.to_string())
}
