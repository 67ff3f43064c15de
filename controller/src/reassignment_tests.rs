//! Reassignment and elections, driven through the image.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::reassignment::{
    MoveError, imbalanced_partitions, record_for_preferred_leader, record_for_reassignment,
    record_for_unclean_leader, records_for_completed_reassignments,
};
use crate::{Endpoint, MetadataImage, MetadataRecord, PartitionRegistration};

fn apply(image: &mut MetadataImage, record: &MetadataRecord) {
    let offset = image.offset + 1;
    image.apply(offset, record).expect("record applies");
}

/// Brokers 1..=4 and topic `t` with one partition on replicas 1,2,3 led by 1.
fn cluster() -> (MetadataImage, Uuid) {
    let mut image = MetadataImage::default();
    for id in 1..=4 {
        apply(
            &mut image,
            &MetadataRecord::RegisterBroker {
                broker_id: id,
                incarnation: Uuid::new_v4(),
                rack: None,
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 1,
                }],
            },
        );
        apply(&mut image, &MetadataRecord::UnfenceBroker { broker_id: id });
    }
    let topic_id = Uuid::new_v4();
    apply(
        &mut image,
        &MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id,
            configs: BTreeMap::new(),
        },
    );
    apply(
        &mut image,
        &MetadataRecord::CreatePartition {
            topic_id,
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
        },
    );
    (image, topic_id)
}

fn partition(image: &MetadataImage, topic_id: Uuid) -> PartitionRegistration {
    image.topics[&topic_id].partitions[&0].clone()
}

fn set_isr(image: &mut MetadataImage, topic_id: Uuid, isr: Vec<i32>) {
    apply(
        image,
        &MetadataRecord::ChangePartition {
            topic_id,
            partition: 0,
            leader: None,
            isr: Some(isr),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        },
    );
}

#[test]
fn a_reassignment_widens_then_narrows_once_the_new_replica_is_in_sync() {
    let (mut image, id) = cluster();
    let start = record_for_reassignment(&image, id, 0, Some(&[2, 3, 4]))
        .unwrap()
        .unwrap();
    apply(&mut image, &start);
    let p = partition(&image, id);
    assert_eq!(p.replicas, vec![2, 3, 4, 1]);
    assert_eq!(p.adding_replicas, vec![4]);
    assert_eq!(p.removing_replicas, vec![1]);
    assert_eq!(p.leader, 1, "the old leader leads until the end");
    assert!(records_for_completed_reassignments(&image).is_empty());

    set_isr(&mut image, id, vec![1, 2, 3, 4]);
    let done = records_for_completed_reassignments(&image);
    assert_eq!(done.len(), 1);
    apply(&mut image, &done[0]);
    let p = partition(&image, id);
    assert_eq!(p.replicas, vec![2, 3, 4]);
    assert_eq!(p.isr, vec![2, 3, 4]);
    assert_eq!(
        p.leader, 2,
        "the removed leader hands over to the first target in sync"
    );
    assert!(!p.reassigning());
}

#[test]
fn a_cancelled_reassignment_returns_to_the_original_replicas() {
    let (mut image, id) = cluster();
    let start = record_for_reassignment(&image, id, 0, Some(&[2, 3, 4])).unwrap();
    apply(&mut image, &start.unwrap());
    let cancel = record_for_reassignment(&image, id, 0, None)
        .unwrap()
        .unwrap();
    apply(&mut image, &cancel);
    let p = partition(&image, id);
    // As in Kafka, the replicas come back in the order they had during the reassignment.
    assert_eq!(
        (p.replicas, p.isr, p.leader),
        (vec![2, 3, 1], vec![1, 2, 3], 1)
    );
    assert!(!partition(&image, id).reassigning());
    assert_eq!(
        record_for_reassignment(&image, id, 0, None),
        Err(MoveError::NoReassignment)
    );
}

#[test]
fn a_target_already_in_sync_completes_at_once_and_bad_targets_are_refused() {
    let (mut image, id) = cluster();
    let shrink = record_for_reassignment(&image, id, 0, Some(&[3, 2]))
        .unwrap()
        .unwrap();
    apply(&mut image, &shrink);
    let p = partition(&image, id);
    assert_eq!((p.replicas, p.isr, p.leader), (vec![3, 2], vec![2, 3], 3));
    assert!(!partition(&image, id).reassigning());
    assert_eq!(
        record_for_reassignment(&image, id, 0, Some(&[3, 2])),
        Ok(None)
    );
    for bad in [&[][..], &[2, 2][..], &[2, 9][..]] {
        assert!(matches!(
            record_for_reassignment(&image, id, 0, Some(bad)),
            Err(MoveError::InvalidAssignment(_))
        ));
    }
    assert_eq!(
        record_for_reassignment(&image, id, 7, Some(&[1])),
        Err(MoveError::UnknownPartition)
    );
}

#[test]
fn a_new_reassignment_replaces_the_one_in_progress() {
    let (mut image, id) = cluster();
    let first = record_for_reassignment(&image, id, 0, Some(&[2, 3, 4])).unwrap();
    apply(&mut image, &first.unwrap());
    let second = record_for_reassignment(&image, id, 0, Some(&[1, 2, 4])).unwrap();
    apply(&mut image, &second.unwrap());
    let p = partition(&image, id);
    assert_eq!(p.replicas, vec![1, 2, 4, 3]);
    assert_eq!((p.adding_replicas, p.removing_replicas), (vec![4], vec![3]));
}

#[test]
fn preferred_and_unclean_elections() {
    let (mut image, id) = cluster();
    assert_eq!(
        record_for_preferred_leader(&image, id, 0),
        Err(MoveError::ElectionNotNeeded)
    );
    apply(
        &mut image,
        &MetadataRecord::ChangePartition {
            topic_id: id,
            partition: 0,
            leader: Some(2),
            isr: Some(vec![2, 3]),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        },
    );
    assert!(matches!(
        record_for_preferred_leader(&image, id, 0),
        Err(MoveError::PreferredLeaderNotAvailable(_))
    ));
    assert!(
        imbalanced_partitions(&image, 10).is_empty(),
        "1 cannot lead yet"
    );
    set_isr(&mut image, id, vec![1, 2, 3]);
    assert_eq!(imbalanced_partitions(&image, 10), vec![(id, 0)]);
    let elect = record_for_preferred_leader(&image, id, 0).unwrap();
    apply(&mut image, &elect);
    assert_eq!(partition(&image, id).leader, 1);

    assert_eq!(
        record_for_unclean_leader(&image, id, 0),
        Err(MoveError::ElectionNotNeeded)
    );
    apply(
        &mut image,
        &MetadataRecord::ChangePartition {
            topic_id: id,
            partition: 0,
            leader: Some(-1),
            isr: Some(vec![1]),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        },
    );
    apply(&mut image, &MetadataRecord::FenceBroker { broker_id: 1 });
    let unclean = record_for_unclean_leader(&image, id, 0).unwrap();
    apply(&mut image, &unclean);
    let p = partition(&image, id);
    assert_eq!((p.leader, p.isr), (2, vec![2]));
}
