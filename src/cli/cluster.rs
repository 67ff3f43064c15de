//! `strata controller` (run one voter of the metadata quorum) and `strata cluster status`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use strata_controller::raft::{Controller, QuorumConfig, QuorumStatus, client};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Parses `id@host:port` voter specs.
pub fn parse_voters(specs: &[String]) -> anyhow::Result<BTreeMap<u64, String>> {
    let voters = crate::config::parse_voters(&specs.join(","))?;
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
        bail!("node {id} is not among the voters {voters:?}");
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
    tracing::info!(node = id, %bound, ?voters, "controller ready");
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
                    tracing::info!(node = controller.id, leader = ?now, "active controller changed");
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
    watch_leader(&controller, shutdown).await;
    controller.shutdown().await;
    match crate::server::failure_cause(failed).await {
        Some(cause) => bail!(
            "the metadata log failed ({cause}); exiting so that a supervisor restarts this node"
        ),
        None => Ok(()),
    }
}

/// `strata cluster add-voter` / `remove-voter`: sends the change to the active controller.
pub async fn change_voters(
    controllers: &[String],
    request: strata_controller::raft::admin::AdminRequest,
) -> anyhow::Result<String> {
    let what = format!("{request:?}");
    client::admin(controllers, request)
        .await
        .with_context(|| format!("{what} failed"))?;
    Ok(format!("done: {what}\n"))
}

/// `strata cluster status`: each controller's view, and the leader's view of the voters.
pub async fn status(controllers: &[String]) -> anyhow::Result<String> {
    let mut views: Vec<(String, Result<QuorumStatus, String>)> = Vec::new();
    for addr in controllers {
        views.push((
            addr.clone(),
            client::status(addr).await.map_err(|e| e.to_string()),
        ));
    }
    let mut out = String::new();
    let leader = views
        .iter()
        .filter_map(|(_, v)| v.as_ref().ok())
        .find(|s| s.leader == Some(s.id));
    match leader {
        Some(l) => out.push_str(&format!(
            "active controller: {} (term {}), {} topics, {} partitions\n\n",
            l.id, l.term, l.topics, l.partitions
        )),
        None => out.push_str("active controller: none reachable\n\n"),
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|(addr, view)| match view {
            Ok(s) => vec![
                addr.clone(),
                s.id.to_string(),
                s.role.clone(),
                s.term.to_string(),
                opt(s.last_log_index),
                opt(s.applied),
                opt(s.snapshot),
            ],
            Err(e) => vec![addr.clone(), format!("unreachable: {e}")],
        })
        .collect();
    out.push_str(&super::table(
        &[
            "CONTROLLER",
            "ID",
            "ROLE",
            "TERM",
            "LAST-LOG",
            "APPLIED",
            "SNAPSHOT",
        ],
        &rows,
    ));
    if let Some(l) = leader {
        let end = l.last_log_index.unwrap_or(0);
        let rows: Vec<Vec<String>> = l
            .voters
            .iter()
            .map(|v| {
                vec![
                    v.id.to_string(),
                    v.addr.clone(),
                    opt(v.matched),
                    v.matched
                        .map_or("-".to_owned(), |m| end.saturating_sub(m).to_string()),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&super::table(
            &["VOTER", "ADDRESS", "MATCHED", "LAG"],
            &rows,
        ));
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
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&super::table(
            &["BROKER", "STATE", "RACK", "LEADERS", "REPLICAS"],
            &rows,
        ));
    }
    Ok(out)
}

fn opt(value: Option<u64>) -> String {
    value.map_or("-".to_owned(), |v| v.to_string())
}
