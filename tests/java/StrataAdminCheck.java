// Exercises the admin APIs the Java AdminClient reaches for beyond topics and configs:
// describeMetadataQuorum (DescribeQuorum), describeTopics a few partitions per response
// (DescribeTopicPartitions with a cursor), listConfigResources (ListConfigResources),
// describeProducers (DescribeProducers) and deleteRecords (DeleteRecords). Exits non-zero with
// a message on the first thing wrong.
// Usage: java StrataAdminCheck <bootstrap> <voter ids, comma-separated> <observer ids>

import java.util.*;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataAdminCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static Set<Integer> ids(String list) {
        if (list.isEmpty()) return Set.of();
        return Arrays.stream(list.split(",")).map(Integer::parseInt).collect(Collectors.toSet());
    }

    // The quorum as the admin client sees it, once every voter and observer has reported.
    static void checkQuorum(Admin admin, Set<Integer> voters, Set<Integer> observers) throws Exception {
        QuorumInfo quorum = null;
        String last = "";
        for (int attempt = 0; attempt < 100; attempt++) {
            quorum = admin.describeMetadataQuorum().quorumInfo().get();
            Set<Integer> seenVoters = quorum.voters().stream()
                .filter(v -> v.logEndOffset() > 0).map(QuorumInfo.ReplicaState::replicaId)
                .collect(Collectors.toSet());
            Set<Integer> seenObservers = quorum.observers().stream()
                .filter(o -> o.logEndOffset() > 0 && o.lastFetchTimestamp().isPresent())
                .map(QuorumInfo.ReplicaState::replicaId).collect(Collectors.toSet());
            last = quorum.toString();
            if (seenVoters.equals(voters) && seenObservers.equals(observers)) break;
            Thread.sleep(200);
        }
        check(quorum.voters().size() == voters.size(), "voters " + last);
        check(voters.contains(quorum.leaderId()), "the leader is a voter: " + last);
        check(quorum.leaderEpoch() > 0, "leader epoch: " + last);
        check(quorum.highWatermark() > 0, "high watermark: " + last);
        Set<Integer> observerIds = quorum.observers().stream()
            .map(QuorumInfo.ReplicaState::replicaId).collect(Collectors.toSet());
        check(observerIds.equals(observers), "observers " + observers + ": " + last);
        for (QuorumInfo.ReplicaState voter : quorum.voters()) {
            check(voter.logEndOffset() > 0 && voter.logEndOffset() <= quorum.highWatermark() + 100,
                "voter log end offsets: " + last);
        }
        check(quorum.nodes().keySet().equals(voters), "a node per voter: " + quorum.nodes());
        for (QuorumInfo.Node node : quorum.nodes().values()) {
            check(node.endpoints().size() == 1 && node.endpoints().get(0).port() > 0,
                "voter endpoints: " + quorum.nodes());
        }
        System.out.println("quorum " + quorum);
    }

    // describeTopics three partitions per response: every partition once, in order.
    static void checkPaging(Admin admin) throws Exception {
        admin.createTopics(List.of(new NewTopic("paged", 10, (short) 1),
            new NewTopic("paged-too", 2, (short) 1))).all().get();
        Map<String, TopicDescription> described = admin.describeTopics(List.of("paged", "paged-too"),
            new DescribeTopicsOptions().partitionSizeLimitPerResponse(3)).allTopicNames().get();
        for (Map.Entry<String, Integer> expected : Map.of("paged", 10, "paged-too", 2).entrySet()) {
            List<Integer> indexes = described.get(expected.getKey()).partitions().stream()
                .map(TopicPartitionInfo::partition).collect(Collectors.toList());
            List<Integer> wanted = new ArrayList<>();
            for (int i = 0; i < expected.getValue(); i++) wanted.add(i);
            check(indexes.equals(wanted), expected.getKey() + " partitions " + indexes);
            for (TopicPartitionInfo p : described.get(expected.getKey()).partitions()) {
                check(p.leader() != null && !p.isr().isEmpty(), "leader and ISR of " + p);
            }
        }
        Set<String> all = admin.listTopics().names().get();
        Map<String, TopicDescription> everything = admin.describeTopics(all,
            new DescribeTopicsOptions().partitionSizeLimitPerResponse(1)).allTopicNames().get();
        check(everything.keySet().equals(all), "every topic described: " + everything.keySet());
        check(everything.get("paged").partitions().size() == 10, "paged, one partition per page");
        try {
            admin.describeTopics(List.of("no-such-topic")).allTopicNames().get();
            check(false, "an unknown topic is described");
        } catch (java.util.concurrent.ExecutionException e) {
            check(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException,
                "unknown topic: " + e.getCause());
        }
    }

    static void checkConfigResources(Admin admin, Set<Integer> brokers) throws Exception {
        Collection<ConfigResource> listed = admin.listConfigResources().all().get();
        check(listed.contains(new ConfigResource(ConfigResource.Type.TOPIC, "paged")), "topic listed: " + listed);
        for (int broker : brokers) {
            check(listed.contains(new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(broker))),
                "broker " + broker + " listed: " + listed);
        }
        Collection<ConfigResource> topics = admin.listConfigResources(
            Set.of(ConfigResource.Type.TOPIC), new ListConfigResourcesOptions()).all().get();
        check(!topics.isEmpty() && topics.stream().allMatch(r -> r.type() == ConfigResource.Type.TOPIC),
            "only topics: " + topics);
    }

    // An idempotent producer's five records, one batch each: its epoch and last sequence.
    static void checkProducers(Admin admin, String bootstrap) throws Exception {
        long before = System.currentTimeMillis();
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < 5; i++) {
                producer.send(new ProducerRecord<>("paged", 0, "k" + i, "v" + i)).get();
            }
        }
        TopicPartition partition = new TopicPartition("paged", 0);
        List<ProducerState> states = admin.describeProducers(List.of(partition))
            .partitionResult(partition).get().activeProducers();
        check(states.size() == 1, "one producer: " + states);
        ProducerState state = states.get(0);
        check(state.producerId() >= 0 && state.producerEpoch() == 0, "id and epoch: " + state);
        check(state.lastSequence() == 4, "last sequence: " + state);
        check(state.lastTimestamp() >= before, "last timestamp: " + state);
        check(state.currentTransactionStartOffset().isEmpty(), "no transaction: " + state);
        TopicPartition quiet = new TopicPartition("paged", 1);
        check(admin.describeProducers(List.of(quiet)).partitionResult(quiet).get().activeProducers().isEmpty(),
            "no producers on an unwritten partition");
    }

    // deleteRecords on a partition of three replicas: the low watermark is where every in-sync
    // replica's log now starts, and consumers start there.
    static void checkDeleteRecords(Admin admin, String bootstrap) throws Exception {
        admin.createTopics(List.of(new NewTopic("trimmed", Map.of(0, List.of(1, 2, 3))),
            new NewTopic("kept", 1, (short) 1).configs(Map.of("cleanup.policy", "compact")))).all().get();
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>("trimmed", 0, "k" + i, "v" + i)).get();
            }
            producer.send(new ProducerRecord<>("kept", 0, "k", "v")).get();
        }
        TopicPartition trimmed = new TopicPartition("trimmed", 0);
        DeletedRecords deleted = admin.deleteRecords(Map.of(trimmed, RecordsToDelete.beforeOffset(6)))
            .lowWatermarks().get(trimmed).get();
        check(deleted.lowWatermark() == 6, "low watermark " + deleted.lowWatermark());
        long earliest = admin.listOffsets(Map.of(trimmed, OffsetSpec.earliest())).partitionResult(trimmed).get().offset();
        check(earliest == 6, "earliest offset after deleteRecords: " + earliest);
        Properties consumerProps = new Properties();
        consumerProps.put("bootstrap.servers", bootstrap);
        consumerProps.put("key.deserializer", org.apache.kafka.common.serialization.StringDeserializer.class.getName());
        consumerProps.put("value.deserializer", org.apache.kafka.common.serialization.StringDeserializer.class.getName());
        try (org.apache.kafka.clients.consumer.KafkaConsumer<String, String> consumer =
                 new org.apache.kafka.clients.consumer.KafkaConsumer<>(consumerProps)) {
            consumer.assign(List.of(trimmed));
            consumer.seekToBeginning(List.of(trimmed));
            List<Long> offsets = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 20_000;
            while (offsets.size() < 4 && System.currentTimeMillis() < deadline) {
                consumer.poll(java.time.Duration.ofMillis(200)).forEach(r -> offsets.add(r.offset()));
            }
            check(offsets.equals(List.of(6L, 7L, 8L, 9L)), "consumed from the new start: " + offsets);
        }
        try {
            admin.deleteRecords(Map.of(trimmed, RecordsToDelete.beforeOffset(100))).all().get();
            check(false, "deleting past the high watermark");
        } catch (java.util.concurrent.ExecutionException e) {
            check(e.getCause() instanceof org.apache.kafka.common.errors.OffsetOutOfRangeException,
                "past the high watermark: " + e.getCause());
        }
        TopicPartition kept = new TopicPartition("kept", 0);
        try {
            admin.deleteRecords(Map.of(kept, RecordsToDelete.beforeOffset(1))).all().get();
            check(false, "deleting records of a compacted topic");
        } catch (java.util.concurrent.ExecutionException e) {
            check(e.getCause() instanceof org.apache.kafka.common.errors.PolicyViolationException,
                "compacted topic: " + e.getCause());
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Set<Integer> voters = ids(args[1]);
        Set<Integer> observers = ids(args.length > 2 ? args[2] : "");
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            checkQuorum(admin, voters, observers);
            checkPaging(admin);
            Set<Integer> brokers = new HashSet<>(voters);
            brokers.addAll(observers);
            checkConfigResources(admin, brokers);
            checkProducers(admin, bootstrap);
            if (brokers.size() >= 3) {
                checkDeleteRecords(admin, bootstrap);
            }
        }
        System.out.println("OK admin");
    }
}
