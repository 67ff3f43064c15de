//! Moving replicas and leadership through the controller: partition reassignments and leader
//! elections (AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders).

use strata_api::BrokerError;
use strata_api::broker::{PartitionResults, Reassignment};
use strata_controller::raft::admin::{AdminAnswer, AdminRequest, PartitionMove};
use strata_controller::reassignment::{MoveError, reassignments};

use super::admin::ClusterAdmin;

fn from_move(e: MoveError) -> BrokerError {
    match e {
        MoveError::UnknownPartition => BrokerError::UnknownTopicOrPartition,
        MoveError::InvalidAssignment(m) => BrokerError::InvalidReplicaAssignment(m),
        MoveError::NoReassignment => BrokerError::NoReassignmentInProgress,
        MoveError::ElectionNotNeeded => BrokerError::ElectionNotNeeded,
        MoveError::PreferredLeaderNotAvailable(m) => BrokerError::PreferredLeaderNotAvailable(m),
        MoveError::EligibleLeadersNotAvailable(m) => BrokerError::EligibleLeadersNotAvailable(m),
    }
}

fn results(answer: AdminAnswer) -> Result<PartitionResults, BrokerError> {
    match answer {
        AdminAnswer::Moves(moves) => Ok(moves
            .into_iter()
            .map(|(topic, partition, refusal)| {
                (
                    topic,
                    partition,
                    refusal.map_or(Ok(()), |e| Err(from_move(e))),
                )
            })
            .collect()),
        other => Err(BrokerError::ControllerUnavailable(format!(
            "unexpected controller answer {other:?}"
        ))),
    }
}

impl ClusterAdmin {
    /// AlterPartitionReassignments. Unless `allow_rf_change`, a target whose size differs
    /// from the partition's replication factor is refused (KIP-860).
    pub(crate) async fn reassign_partitions(
        &self,
        moves: Vec<(String, i32, Option<Vec<i32>>)>,
        allow_rf_change: bool,
    ) -> Result<PartitionResults, BrokerError> {
        let mut out = Vec::new();
        let mut asked = Vec::new();
        {
            let image = self.metadata.image();
            for (topic, partition, target) in moves {
                let current = image
                    .topic(&topic)
                    .and_then(|t| t.partitions.get(&partition))
                    .map(|p| p.target_replicas().len());
                if let (false, Some(target), Some(current)) = (allow_rf_change, &target, current)
                    && target.len() != current
                {
                    out.push((
                        topic,
                        partition,
                        Err(BrokerError::InvalidReplicationFactor(format!(
                            "the partition has {current} replicas and the target {}: the \
                             request does not allow the replication factor to change",
                            target.len()
                        ))),
                    ));
                    continue;
                }
                asked.push(PartitionMove {
                    topic,
                    partition,
                    target,
                });
            }
        }
        if !asked.is_empty() {
            out.extend(results(
                self.admin(AdminRequest::ReassignPartitions(asked)).await?,
            )?);
        }
        Ok(out)
    }

    /// ListPartitionReassignments.
    pub(crate) fn reassignments(&self) -> Vec<Reassignment> {
        let image = self.metadata.image();
        reassignments(&image)
            .into_iter()
            .filter_map(|(topic_id, partition, p)| {
                Some(Reassignment {
                    topic: image.topics.get(&topic_id)?.name.clone(),
                    partition,
                    replicas: p.replicas,
                    adding: p.adding_replicas,
                    removing: p.removing_replicas,
                })
            })
            .collect()
    }

    /// ElectLeaders.
    pub(crate) async fn elect_leaders(
        &self,
        unclean: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<PartitionResults, BrokerError> {
        results(
            self.admin(AdminRequest::ElectLeaders {
                unclean,
                partitions,
            })
            .await?,
        )
    }
}
