//! `strata partitions reassign`, `strata partitions elect-leaders` and
//! `strata cluster decommission`: moving replicas and leadership of a running cluster with
//! the Kafka admin APIs (AlterPartitionReassignments, ListPartitionReassignments,
//! ElectLeaders, IncrementalAlterConfigs), like `kafka-reassign-partitions.sh` and
//! `kafka-leader-election.sh`. Plans use the reassignment JSON of Kafka's tool.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};

use super::partitions::{PartitionState, all};
use crate::kafka_client::Client;

/// One partition's replicas in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Target replicas, the preferred leader first.
    pub replicas: Vec<i32>,
}

/// A reassignment plan, in the JSON of `kafka-reassign-partitions.sh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Always 1.
    pub version: i32,
    /// The partitions that move.
    pub partitions: Vec<PlannedPartition>,
}

/// Replicas for `partitions` spread evenly over `brokers` with `rf` replicas each (the
/// current count when `None`), moving few: replicas on `brokers` stay, missing ones go to the
/// least loaded brokers, then single replicas move from the most to the least loaded broker
/// until no two brokers differ by more than one, and leadership (the first replica) is spread
/// the same way. Only partitions whose replicas change are in the plan.
pub fn balanced_plan(
    partitions: &[PartitionState],
    brokers: &[i32],
    rf: Option<usize>,
) -> anyhow::Result<Plan> {
    let brokers: BTreeSet<i32> = brokers.iter().copied().collect();
    if brokers.is_empty() {
        bail!("no brokers to place replicas on");
    }
    let rf_of = |p: &PartitionState| rf.unwrap_or(p.replicas.len());
    if let Some(p) = partitions.iter().find(|p| rf_of(p) > brokers.len()) {
        bail!(
            "{}-{} needs {} replicas but only {} brokers were given",
            p.topic,
            p.partition,
            rf_of(p),
            brokers.len()
        );
    }
    // Keep what can stay, fill up with the least loaded brokers...
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    let mut plan: Vec<Vec<i32>> = Vec::with_capacity(partitions.len());
    for p in partitions {
        let mut chosen: Vec<i32> = p
            .replicas
            .iter()
            .copied()
            .filter(|r| brokers.contains(r))
            .take(rf_of(p))
            .collect();
        while chosen.len() < rf_of(p) {
            let next = least(&load, |b| !chosen.contains(&b)).expect("enough brokers were checked");
            chosen.push(next);
        }
        for r in &chosen {
            *load.get_mut(r).expect("a given broker") += 1;
        }
        plan.push(chosen);
    }
    // ...then move replicas from the most to the least loaded broker until they differ by
    // at most one.
    loop {
        let (&high, &most) = load
            .iter()
            .max_by_key(|(b, n)| (**n, -**b))
            .expect("brokers");
        let (&low, &fewest) = load
            .iter()
            .min_by_key(|(b, n)| (**n, **b))
            .expect("brokers");
        if most <= fewest + 1 {
            break;
        }
        let Some(replicas) = plan
            .iter_mut()
            .find(|r| r.contains(&high) && !r.contains(&low))
        else {
            break;
        };
        let at = replicas.iter().position(|r| *r == high).expect("contains");
        replicas[at] = low;
        *load.get_mut(&high).expect("a given broker") -= 1;
        *load.get_mut(&low).expect("a given broker") += 1;
    }
    // Leadership likewise: hand it from the broker leading most to a replica leading fewer.
    let mut leads: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for replicas in &plan {
        *leads.get_mut(&replicas[0]).expect("a given broker") += 1;
    }
    loop {
        let (&high, &most) = leads
            .iter()
            .max_by_key(|(b, n)| (**n, -**b))
            .expect("brokers");
        let candidate = plan.iter_mut().filter(|r| r[0] == high).find_map(|r| {
            let at = (1..r.len()).min_by_key(|i| (leads[&r[*i]], *i))?;
            (leads[&r[at]] + 1 < most).then_some((r, at))
        });
        let Some((replicas, at)) = candidate else {
            break;
        };
        let to = replicas[at];
        replicas.swap(0, at);
        *leads.get_mut(&high).expect("a given broker") -= 1;
        *leads.get_mut(&to).expect("a given broker") += 1;
    }
    let out = partitions
        .iter()
        .zip(plan)
        .filter(|(p, replicas)| *replicas != p.replicas)
        .map(|(p, replicas)| PlannedPartition {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas,
        })
        .collect();
    Ok(Plan {
        version: 1,
        partitions: out,
    })
}

/// The broker with the fewest replicas among those `allowed` (lowest id on ties).
fn least(load: &BTreeMap<i32, usize>, allowed: impl Fn(i32) -> bool) -> Option<i32> {
    load.iter()
        .filter(|(b, _)| allowed(**b))
        .min_by_key(|(b, n)| (**n, **b))
        .map(|(b, _)| *b)
}

/// A plan that moves every replica off `broker`: each goes, in the same position, to the
/// live broker holding the fewest replicas that the partition is not on yet.
pub fn decommission_plan(
    partitions: &[PartitionState],
    live: &[i32],
    broker: i32,
) -> anyhow::Result<Plan> {
    let mut load: BTreeMap<i32, usize> = live
        .iter()
        .filter(|b| **b != broker)
        .map(|b| (*b, 0))
        .collect();
    for p in partitions {
        for r in &p.replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
    }
    let mut out = Vec::new();
    for p in partitions.iter().filter(|p| p.replicas.contains(&broker)) {
        let Some(to) = least(&load, |b| !p.replicas.contains(&b)) else {
            bail!(
                "{}-{} has {} replicas: no other live broker can take the one on broker \
                 {broker}",
                p.topic,
                p.partition,
                p.replicas.len()
            );
        };
        *load.get_mut(&to).expect("a live broker") += 1;
        let replicas = p
            .replicas
            .iter()
            .map(|r| if *r == broker { to } else { *r })
            .collect();
        out.push(PlannedPartition {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas,
        });
    }
    Ok(Plan {
        version: 1,
        partitions: out,
    })
}

/// The plan as a table of current and new replicas.
pub fn describe_plan(plan: &Plan, current: &[PartitionState]) -> String {
    if plan.partitions.is_empty() {
        return "nothing to move: every partition already has the replicas asked for\n".into();
    }
    let rows: Vec<Vec<String>> = plan
        .partitions
        .iter()
        .map(|p| {
            let now = current
                .iter()
                .find(|c| c.topic == p.topic && c.partition == p.partition)
                .map_or("-".to_owned(), |c| ids(&c.replicas));
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                now,
                ids(&p.replicas),
            ]
        })
        .collect();
    super::table(&["TOPIC", "PARTITION", "REPLICAS", "NEW REPLICAS"], &rows)
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Live broker ids of the cluster behind `bootstrap`.
pub async fn live_brokers(bootstrap: &str) -> anyhow::Result<Vec<i32>> {
    let mut client = Client::connect(bootstrap).await?;
    let response = client
        .call(9, &MetadataRequest::default().with_topics(Some(vec![])))
        .await?;
    Ok(response.brokers.iter().map(|b| b.node_id.0).collect())
}

/// Sends the plan's reassignments (or, with `cancel`, cancels them); fails naming every
/// partition refused.
pub async fn execute(bootstrap: &str, plan: &Plan, cancel: bool) -> anyhow::Result<()> {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for p in &plan.partitions {
        let entry = ReassignablePartition::default()
            .with_partition_index(p.partition)
            .with_replicas((!cancel).then(|| p.replicas.iter().map(|b| BrokerId(*b)).collect()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == p.topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(
                ReassignableTopic::default()
                    .with_name(name(&p.topic))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    let mut client = Client::connect(bootstrap).await?;
    let response = client
        .call(
            0,
            &AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(60_000)
                .with_topics(topics),
        )
        .await?;
    if response.error_code != 0 {
        bail!(
            "reassignment refused: error code {}{}",
            response.error_code,
            message(&response.error_message)
        );
    }
    let refused: Vec<String> = response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.error_code != 0)
                .map(move |p| {
                    format!(
                        "{}-{}: error code {}{}",
                        t.name.0,
                        p.partition_index,
                        p.error_code,
                        message(&p.error_message)
                    )
                })
        })
        .collect();
    if !refused.is_empty() {
        bail!("reassignment refused for:\n  {}", refused.join("\n  "));
    }
    Ok(())
}

fn message(m: &Option<StrBytes>) -> String {
    m.as_ref().map_or(String::new(), |m| format!(" ({m})"))
}

/// Partitions of the plan still being reassigned.
pub async fn in_progress(bootstrap: &str, plan: &Plan) -> anyhow::Result<Vec<(String, i32)>> {
    let mut client = Client::connect(bootstrap).await?;
    let response = client
        .call(
            0,
            &ListPartitionReassignmentsRequest::default().with_topics(None),
        )
        .await?;
    if response.error_code != 0 {
        bail!(
            "listing reassignments failed: error code {}",
            response.error_code
        );
    }
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .filter(|(t, p)| {
            plan.partitions
                .iter()
                .any(|q| q.topic == *t && q.partition == *p)
        })
        .collect())
}

/// Waits until no partition of the plan is being reassigned, reporting progress on stderr.
pub async fn wait(bootstrap: &str, plan: &Plan, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last = usize::MAX;
    loop {
        let left = in_progress(bootstrap, plan).await?;
        if left.is_empty() {
            eprintln!(
                "reassignment of {} partitions complete in {:.1} s",
                plan.partitions.len(),
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if left.len() != last {
            eprintln!("{} partitions still moving", left.len());
            last = left.len();
        }
        if start.elapsed() > timeout {
            bail!(
                "{} partitions were still moving after {} s (it goes on in the cluster): {:?}",
                left.len(),
                timeout.as_secs(),
                left
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sets (or with `None` removes) the cluster-wide replication throttle rates.
pub async fn set_throttle(bootstrap: &str, rate: Option<u64>) -> anyhow::Result<()> {
    let configs = [
        "leader.replication.throttled.rate",
        "follower.replication.throttled.rate",
    ]
    .into_iter()
    .map(|n| {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(n))
            .with_config_operation(if rate.is_some() { 0 } else { 1 })
            .with_value(rate.map(|r| StrBytes::from_string(r.to_string())))
    })
    .collect();
    let mut client = Client::connect(bootstrap).await?;
    let response = client
        .call(
            0,
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(StrBytes::from_static_str(""))
                    .with_configs(configs),
            ]),
        )
        .await?;
    if let Some(r) = response.responses.iter().find(|r| r.error_code != 0) {
        bail!(
            "setting the replication throttle failed: error code {}{}",
            r.error_code,
            message(&r.error_message)
        );
    }
    Ok(())
}

/// Reads a plan file in the JSON of `kafka-reassign-partitions.sh`.
pub fn read_plan(path: &std::path::Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plan {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a reassignment plan", path.display()))
}

/// Elects preferred leaders (or, with `unclean`, leaders of leaderless partitions) for
/// `partitions`, or every partition; one line per partition elected or refused.
pub async fn elect_leaders(
    bootstrap: &str,
    unclean: bool,
    partitions: Option<Vec<(String, i32)>>,
) -> anyhow::Result<String> {
    let topic_partitions = partitions.map(|ps| {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in ps {
            by_topic.entry(t).or_default().push(p);
        }
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                TopicPartitions::default()
                    .with_topic(name(&t))
                    .with_partitions(ps)
            })
            .collect()
    });
    let mut client = Client::connect(bootstrap).await?;
    let response = client
        .call(
            1,
            &ElectLeadersRequest::default()
                .with_election_type(i8::from(unclean))
                .with_topic_partitions(topic_partitions)
                .with_timeout_ms(60_000),
        )
        .await?;
    if response.error_code != 0 {
        bail!("ElectLeaders failed: error code {}", response.error_code);
    }
    let mut out = String::new();
    for t in &response.replica_election_results {
        for p in &t.partition_result {
            out.push_str(&match p.error_code {
                0 => format!("{}-{}: leader elected\n", t.topic.0, p.partition_id),
                code => format!(
                    "{}-{}: not elected, error code {code}{}\n",
                    t.topic.0,
                    p.partition_id,
                    message(&p.error_message)
                ),
            });
        }
    }
    if out.is_empty() {
        out.push_str("no partition needed a new leader\n");
    }
    Ok(out)
}

/// What `strata partitions reassign` was asked.
#[derive(Debug, Clone, Default)]
pub struct ReassignArgs {
    /// Topics whose partitions are planned (every topic when empty).
    pub topics: Vec<String>,
    /// Brokers to spread them over.
    pub brokers: Vec<i32>,
    /// Replicas per partition (the current count when `None`).
    pub replication_factor: Option<usize>,
    /// A plan file instead of a generated plan.
    pub plan: Option<std::path::PathBuf>,
    /// Send the plan (otherwise it is only shown).
    pub execute: bool,
    /// Cancel the plan's reassignments.
    pub cancel: bool,
    /// Wait for the reassignments to complete.
    pub wait: bool,
    /// Throttle replication of moving replicas to this many bytes/s while they move.
    pub throttle: Option<u64>,
    /// How long `wait` waits.
    pub timeout: Duration,
}

/// `strata partitions reassign`.
pub async fn reassign(bootstrap: &str, args: ReassignArgs) -> anyhow::Result<String> {
    let current = all(bootstrap).await?;
    let plan = match &args.plan {
        Some(path) => read_plan(path)?,
        None => {
            if args.brokers.is_empty() {
                bail!("give --brokers to spread replicas over, or --plan with a plan file");
            }
            let chosen: Vec<PartitionState> = current
                .iter()
                .filter(|p| args.topics.is_empty() || args.topics.contains(&p.topic))
                .filter(|p| !p.topic.starts_with("__") || args.topics.contains(&p.topic))
                .cloned()
                .collect();
            if chosen.is_empty() {
                bail!("no partitions of topics {:?}", args.topics);
            }
            balanced_plan(&chosen, &args.brokers, args.replication_factor)?
        }
    };
    let mut out = describe_plan(&plan, &current);
    if !(args.execute || args.cancel) {
        out.push_str("\nplan (run again with --execute, or save and pass as --plan):\n");
        out.push_str(&serde_json::to_string_pretty(&plan)?);
        out.push('\n');
        return Ok(out);
    }
    if plan.partitions.is_empty() {
        return Ok(out);
    }
    run_plan(bootstrap, &plan, &args).await?;
    out.push_str(if args.cancel {
        "cancelled\n"
    } else if args.wait {
        "done\n"
    } else {
        "started: follow it with `strata partitions reassign --plan <file> --wait`\n"
    });
    Ok(out)
}

async fn run_plan(bootstrap: &str, plan: &Plan, args: &ReassignArgs) -> anyhow::Result<()> {
    if let Some(rate) = args.throttle {
        set_throttle(bootstrap, Some(rate)).await?;
    }
    let sent = execute(bootstrap, plan, args.cancel).await;
    let waited = match (&sent, args.wait) {
        (Ok(()), true) => wait(bootstrap, plan, args.timeout).await,
        _ => Ok(()),
    };
    // The throttle stays while reassignments run on without us.
    if args.throttle.is_some() && (args.wait || sent.is_err()) {
        set_throttle(bootstrap, None).await?;
    }
    sent.and(waited)
}

/// `strata cluster decommission --broker N`: moves every replica off the broker and waits
/// until it holds none.
pub async fn decommission(
    bootstrap: &str,
    broker: i32,
    throttle: Option<u64>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let current = all(bootstrap).await?;
    let live = live_brokers(bootstrap).await?;
    let plan = decommission_plan(&current, &live, broker)?;
    let mut out = describe_plan(&plan, &current);
    if !plan.partitions.is_empty() {
        let args = ReassignArgs {
            execute: true,
            wait: true,
            throttle,
            timeout,
            ..ReassignArgs::default()
        };
        run_plan(bootstrap, &plan, &args).await?;
    }
    let left = all(bootstrap)
        .await?
        .into_iter()
        .filter(|p| p.replicas.contains(&broker))
        .count();
    if left > 0 {
        bail!("broker {broker} still holds {left} replicas");
    }
    out.push_str(&format!(
        "broker {broker} holds no replicas: it can be stopped and removed\n"
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(topic: &str, partition: i32, replicas: &[i32]) -> PartitionState {
        PartitionState {
            topic: topic.into(),
            partition,
            leader: replicas[0],
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            offline: vec![],
        }
    }

    #[test]
    fn a_balanced_plan_spreads_replicas_and_leaders_and_moves_little() {
        let current: Vec<PartitionState> = (0..6).map(|i| p("t", i, &[1, 2, 3])).collect();
        let plan = balanced_plan(&current, &[1, 2, 3, 4], None).unwrap();
        let mut load: BTreeMap<i32, usize> = BTreeMap::new();
        let mut leads: BTreeMap<i32, usize> = BTreeMap::new();
        for q in &current {
            let replicas = plan
                .partitions
                .iter()
                .find(|x| x.partition == q.partition)
                .map_or(q.replicas.clone(), |x| x.replicas.clone());
            for r in &replicas {
                *load.entry(*r).or_default() += 1;
            }
            *leads.entry(replicas[0]).or_default() += 1;
            let kept = replicas.iter().filter(|r| q.replicas.contains(r)).count();
            assert!(kept >= 2, "one replica moves at most: {replicas:?}");
        }
        assert!(load.values().all(|n| (4..=5).contains(n)), "{load:?}");
        assert!(leads.values().all(|n| (1..=2).contains(n)), "{leads:?}");
    }

    #[test]
    fn a_decommission_plan_replaces_the_broker_in_place() {
        let current = vec![
            p("t", 0, &[1, 2, 3]),
            p("t", 1, &[2, 3, 4]),
            p("t", 2, &[3, 4, 1]),
        ];
        let plan = decommission_plan(&current, &[1, 2, 3, 4], 1).unwrap();
        assert_eq!(plan.partitions.len(), 2);
        assert_eq!(plan.partitions[0].replicas, vec![4, 2, 3]);
        assert_eq!(plan.partitions[1].replicas, vec![3, 4, 2]);
        assert!(decommission_plan(&current, &[1, 2, 3], 1).is_err());
    }
}
