//! The image and the controller's decisions, driven with records.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::placement::{
    PlacementError, elect_leader, place_replicas, records_for_fenced, records_for_new_incarnation,
    records_for_new_topic,
};
use crate::{
    ApplyError, Change, ConfigResource, Endpoint, MetadataImage, MetadataRecord,
    PartitionRegistration,
};

fn register(image: &mut MetadataImage, id: i32, rack: Option<&str>) {
    let offset = image.offset + 1;
    image
        .apply(
            offset,
            &MetadataRecord::RegisterBroker {
                broker_id: id,
                incarnation: Uuid::new_v4(),
                rack: rack.map(str::to_owned),
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: format!("broker{id}"),
                    port: 9092,
                }],
            },
        )
        .unwrap();
    image
        .apply(offset + 1, &MetadataRecord::UnfenceBroker { broker_id: id })
        .unwrap();
}

fn apply_all(image: &mut MetadataImage, records: &[MetadataRecord]) -> Vec<Change> {
    records
        .iter()
        .map(|r| {
            let offset = image.offset + 1;
            image.apply(offset, r).unwrap()
        })
        .collect()
}

#[test]
fn records_build_the_image_and_report_changes() {
    let mut image = MetadataImage::default();
    for id in 1..=3 {
        register(&mut image, id, None);
    }
    let topic_id = Uuid::new_v4();
    let records = records_for_new_topic(&image, "orders", topic_id, 6, 2, BTreeMap::new()).unwrap();
    let changes = apply_all(&mut image, &records);
    assert_eq!(
        changes[0],
        Change::TopicCreated {
            name: "orders".into(),
            id: topic_id
        }
    );
    assert_eq!(image.partition_count(), 6);
    let topic = image.topic("orders").unwrap();
    assert_eq!(topic.id, topic_id);

    // A leader change bumps both epochs; an ISR change only the partition epoch.
    let p0 = topic.partitions[&0].clone();
    let follower = p0.replicas[1];
    let change = MetadataRecord::ChangePartition {
        topic_id,
        partition: 0,
        leader: Some(follower),
        isr: None,
        replicas: None,
        adding_replicas: None,
        removing_replicas: None,
    };
    let offset = image.offset + 1;
    assert_eq!(
        image.apply(offset, &change).unwrap(),
        Change::PartitionChanged {
            topic_id,
            partition: 0,
            leader_changed: true
        }
    );
    let p0 = &image.topics[&topic_id].partitions[&0];
    assert_eq!(
        (p0.leader, p0.leader_epoch, p0.partition_epoch),
        (follower, 1, 1)
    );
    let shrink = MetadataRecord::ChangePartition {
        topic_id,
        partition: 0,
        leader: None,
        isr: Some(vec![follower]),
        replicas: None,
        adding_replicas: None,
        removing_replicas: None,
    };
    image.apply(image.offset + 1, &shrink).unwrap();
    let p0 = &image.topics[&topic_id].partitions[&0];
    assert_eq!((p0.leader_epoch, p0.partition_epoch), (1, 2));

    // Configs of every kind.
    for resource in [
        ConfigResource::Topic("orders".into()),
        ConfigResource::Broker(1),
        ConfigResource::Cluster,
    ] {
        let set = MetadataRecord::SetConfig {
            resource,
            name: "retention.ms".into(),
            value: Some("1000".into()),
        };
        image.apply(image.offset + 1, &set).unwrap();
    }
    assert_eq!(
        image.topic("orders").unwrap().configs["retention.ms"],
        "1000"
    );
    assert_eq!(image.broker_configs[&1]["retention.ms"], "1000");
    assert_eq!(image.cluster_configs["retention.ms"], "1000");

    // Deleting the topic removes its partitions and its name.
    image
        .apply(image.offset + 1, &MetadataRecord::DeleteTopic { topic_id })
        .unwrap();
    assert!(image.topic("orders").is_none());
    assert_eq!(image.partition_count(), 0);
}

#[test]
fn records_that_do_not_fit_change_nothing_but_the_offset() {
    let mut image = MetadataImage::default();
    register(&mut image, 1, None);
    let topic_id = Uuid::new_v4();
    let before = image.clone();
    let bad = [
        MetadataRecord::FenceBroker { broker_id: 9 },
        MetadataRecord::DeleteTopic { topic_id },
        MetadataRecord::CreatePartition {
            topic_id,
            partition: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
        },
        MetadataRecord::ChangePartition {
            topic_id,
            partition: 0,
            leader: Some(1),
            isr: None,
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        },
    ];
    for (n, record) in bad.iter().enumerate() {
        assert!(image.apply(100 + n as u64, record).is_err(), "{record:?}");
    }
    assert_eq!(image.offset, 103);
    assert_eq!(
        MetadataImage {
            offset: before.offset,
            ..image.clone()
        },
        before
    );
    // Assignments must hang together.
    image
        .apply(
            200,
            &MetadataRecord::CreateTopic {
                name: "t".into(),
                topic_id,
                configs: BTreeMap::new(),
            },
        )
        .unwrap();
    let leader_outside_isr = MetadataRecord::CreatePartition {
        topic_id,
        partition: 0,
        replicas: vec![1, 2],
        isr: vec![2],
        leader: 1,
    };
    assert!(matches!(
        image.apply(201, &leader_outside_isr),
        Err(ApplyError::InvalidAssignment(_))
    ));
    let duplicate = MetadataRecord::CreateTopic {
        name: "t".into(),
        topic_id: Uuid::new_v4(),
        configs: BTreeMap::new(),
    };
    assert!(matches!(
        image.apply(202, &duplicate),
        Err(ApplyError::DuplicateTopic(_))
    ));
}

#[test]
fn replicas_spread_evenly_and_across_racks() {
    let mut image = MetadataImage::default();
    for (id, rack) in [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")] {
        register(&mut image, id, Some(rack));
    }
    let placed = place_replicas(&image, 60, 3).unwrap();
    let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for partition in &placed {
        let racks: std::collections::BTreeSet<_> = partition
            .iter()
            .map(|id| image.brokers[id].rack.clone())
            .collect();
        assert_eq!(racks.len(), 3, "{partition:?} on one rack twice");
        *leaders.entry(partition[0]).or_default() += 1;
        for r in partition {
            *replicas.entry(*r).or_default() += 1;
        }
    }
    assert!(replicas.values().all(|&n| n == 30), "{replicas:?}");
    assert!(leaders.values().all(|&n| n == 10), "{leaders:?}");
    // Fenced brokers get nothing; too few active brokers is an error.
    image
        .apply(
            image.offset + 1,
            &MetadataRecord::FenceBroker { broker_id: 6 },
        )
        .unwrap();
    assert!(
        place_replicas(&image, 10, 3)
            .unwrap()
            .iter()
            .flatten()
            .all(|r| *r != 6)
    );
    assert_eq!(
        place_replicas(&image, 1, 6),
        Err(PlacementError::NotEnoughBrokers {
            wanted: 6,
            active: 5
        })
    );
}

#[test]
fn leaders_come_from_the_isr_unless_unclean_election_is_on() {
    let partition = PartitionRegistration {
        replicas: vec![1, 2, 3],
        isr: vec![1, 3],
        leader: 1,
        leader_epoch: 4,
        partition_epoch: 9,
        adding_replicas: vec![],
        removing_replicas: vec![],
    };
    assert_eq!(elect_leader(&partition, |b| b != 1, false), 3);
    assert_eq!(elect_leader(&partition, |b| b == 2, false), -1);
    assert_eq!(elect_leader(&partition, |b| b == 2, true), 2);
    assert_eq!(
        elect_leader(&partition, |_| true, false),
        1,
        "keeps a live leader"
    );
}

#[test]
fn fencing_a_broker_moves_its_leadership_and_shrinks_isrs() {
    let mut image = MetadataImage::default();
    for id in 1..=3 {
        register(&mut image, id, None);
    }
    let topic_id = Uuid::new_v4();
    let records = records_for_new_topic(&image, "t", topic_id, 3, 2, BTreeMap::new()).unwrap();
    apply_all(&mut image, &records);
    let solo = Uuid::new_v4();
    let records = records_for_new_topic(&image, "solo", solo, 3, 1, BTreeMap::new()).unwrap();
    apply_all(&mut image, &records);

    image
        .apply(
            image.offset + 1,
            &MetadataRecord::FenceBroker { broker_id: 1 },
        )
        .unwrap();
    let moves = records_for_fenced(&image, 1);
    apply_all(&mut image, &moves);
    for topic in image.topics.values() {
        for partition in topic.partitions.values() {
            if topic.id == solo && partition.replicas == vec![1] {
                // Its only replica is gone: offline, ISR kept.
                assert_eq!((partition.leader, partition.isr.clone()), (-1, vec![1]));
            } else {
                assert_ne!(partition.leader, 1, "{partition:?}");
                assert!(!partition.isr.contains(&1), "{partition:?}");
                assert!(partition.isr.contains(&partition.leader));
            }
        }
    }
}

#[test]
fn a_new_incarnation_leaves_every_isr_at_once() {
    let mut image = MetadataImage::default();
    for id in 1..=3 {
        register(&mut image, id, None);
    }
    let topic_id = Uuid::new_v4();
    let records = records_for_new_topic(&image, "t", topic_id, 3, 3, BTreeMap::new()).unwrap();
    apply_all(&mut image, &records);
    // Broker 2 restarts (perhaps with a wiped disk) before its lease ran out.
    let register = MetadataRecord::RegisterBroker {
        broker_id: 2,
        incarnation: Uuid::new_v4(),
        rack: None,
        listeners: vec![],
    };
    let records = records_for_new_incarnation(&image, &register);
    assert_eq!(
        records.len(),
        3,
        "every partition's ISR changes: {records:?}"
    );
    apply_all(&mut image, &[vec![register], records].concat());
    for partition in image.topics[&topic_id].partitions.values() {
        assert!(!partition.isr.contains(&2), "{partition:?}");
        assert_ne!(partition.leader, 2);
        assert_eq!(partition.replicas.len(), 3, "it stays a replica");
    }
}

#[test]
fn records_and_images_round_trip_as_bytes() {
    let mut image = MetadataImage::default();
    register(&mut image, 1, Some("r1"));
    let topic_id = Uuid::new_v4();
    let records = records_for_new_topic(&image, "t", topic_id, 4, 1, BTreeMap::new()).unwrap();
    for record in &records {
        assert_eq!(&MetadataRecord::decode(&record.encode()).unwrap(), record);
    }
    apply_all(&mut image, &records);
    image
        .apply(
            image.offset + 1,
            &MetadataRecord::SetConfig {
                resource: ConfigResource::Broker(1),
                name: "x".into(),
                value: Some("y".into()),
            },
        )
        .unwrap();
    let restored = MetadataImage::from_snapshot(&image.to_snapshot()).unwrap();
    assert_eq!(restored, image);
}

#[test]
fn links_mirrors_epoch_raises_and_reserved_producer_ids_apply() {
    use crate::{ClusterLink, LinkConfig, LinkStart, MirrorOf, MirrorState, StopReason};
    let mut image = MetadataImage::default();
    register(&mut image, 1, None);
    let topic_id = Uuid::new_v4();
    let link = ClusterLink {
        name: "east".into(),
        id: Uuid::new_v4(),
        config: LinkConfig {
            source: "127.0.0.1:9092".into(),
            topics: Some("ord.*".into()),
            exclude_topics: None,
            groups: None,
            start: LinkStart::Earliest,
            prefix: String::new(),
            offset_sync_ms: 5_000,
            source_security: Default::default(),
        },
        paused: false,
    };
    let mirror = MirrorOf {
        link: "east".into(),
        source_topic: "orders".into(),
        state: MirrorState::Mirroring,
    };
    let changes = apply_all(
        &mut image,
        &[
            MetadataRecord::CreateLink { link: link.clone() },
            MetadataRecord::PauseLink {
                name: "east".into(),
                paused: true,
            },
            MetadataRecord::CreateTopic {
                name: "orders".into(),
                topic_id,
                configs: BTreeMap::new(),
            },
            MetadataRecord::SetMirror {
                topic_id,
                mirror: Some(mirror.clone()),
            },
            MetadataRecord::CreatePartition {
                topic_id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
            },
        ],
    );
    assert_eq!(changes[0], Change::LinkChanged("east".into()));
    assert!(image.links["east"].paused);
    assert!(image.topics[&topic_id].is_mirroring());
    // Stopping: the mirror remembers its link; the epoch is raised only upwards.
    apply_all(
        &mut image,
        &[
            MetadataRecord::SetMirror {
                topic_id,
                mirror: Some(MirrorOf {
                    state: MirrorState::Stopped(StopReason::Failover),
                    ..mirror
                }),
            },
            MetadataRecord::RaiseLeaderEpoch {
                topic_id,
                partition: 0,
                leader_epoch: 7,
            },
            MetadataRecord::RaiseLeaderEpoch {
                topic_id,
                partition: 0,
                leader_epoch: 3,
            },
        ],
    );
    let topic = &image.topics[&topic_id];
    assert!(!topic.is_mirroring() && topic.mirror.is_some());
    assert_eq!(topic.partitions[&0].leader_epoch, 7);
    assert_eq!(topic.partitions[&0].partition_epoch, 1);
    // A broker's block moves only the next id; a reservation moves the floor too.
    apply_all(
        &mut image,
        &[
            MetadataRecord::AllocateProducerIds {
                broker_id: 1,
                next_producer_id: 1000,
            },
            MetadataRecord::AllocateProducerIds {
                broker_id: -1,
                next_producer_id: 5000,
            },
        ],
    );
    assert_eq!(
        (image.next_producer_id, image.producer_id_floor),
        (5000, 5000)
    );
    let refused = image.apply(
        image.offset + 1,
        &MetadataRecord::DeleteLink {
            name: "west".into(),
        },
    );
    assert_eq!(refused, Err(ApplyError::UnknownLink("west".into())));
    apply_all(
        &mut image,
        &[MetadataRecord::DeleteLink {
            name: "east".into(),
        }],
    );
    assert!(image.links.is_empty());
}

#[test]
fn scram_credentials_are_kept_per_user_and_mechanism_and_survive_a_snapshot() {
    use crate::record::ScramCredential;
    let credential = |n: u8| ScramCredential {
        salt: vec![n; 16],
        stored_key: vec![n; 32],
        server_key: vec![n + 1; 32],
        iterations: 4096,
    };
    let set = |mechanism: &str, c: Option<ScramCredential>| MetadataRecord::SetScramCredential {
        user: "alice".into(),
        mechanism: mechanism.into(),
        credential: c,
    };
    let mut image = MetadataImage::default();
    let changes = apply_all(
        &mut image,
        &[
            set("SCRAM-SHA-256", Some(credential(1))),
            set("SCRAM-SHA-512", Some(credential(2))),
            set("SCRAM-SHA-256", Some(credential(3))),
        ],
    );
    assert_eq!(changes[0], Change::ScramChanged("alice".into()));
    assert_eq!(image.scram["alice"]["SCRAM-SHA-256"], credential(3));
    assert_eq!(image.scram["alice"].len(), 2);
    // A snapshot is the image serialized: credentials come back from it, and an image of an
    // older snapshot without them reads as having none.
    let restored: MetadataImage =
        serde_json::from_slice(&serde_json::to_vec(&image).unwrap()).unwrap();
    assert_eq!(restored.scram, image.scram);
    let mut old = serde_json::to_value(&image).unwrap();
    old.as_object_mut().unwrap().remove("scram");
    assert!(
        serde_json::from_value::<MetadataImage>(old)
            .unwrap()
            .scram
            .is_empty()
    );
    apply_all(
        &mut image,
        &[set("SCRAM-SHA-256", None), set("SCRAM-SHA-512", None)],
    );
    assert!(image.scram.is_empty(), "a user without credentials is gone");
}
