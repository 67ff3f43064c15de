// Exercises Strata with the Java Kafka client the way applications use it: the admin client,
// a producer on its defaults (idempotent, acks=all) with compression, a consumer by
// assignment and a consumer group. Exits non-zero with a message on the first thing that is wrong.
// Usage: java StrataClientCheck <bootstrap> <topic>

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataClientCheck {
    static final int PARTITIONS = 3;
    static final int RECORDS = 3000;

    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    // Two members of one group split the topic, consume it all, commit, and leave; the admin
    // client then sees the group and its committed offsets.
    static void checkGroup(Properties common, Properties consumerProps, String topic) throws Exception {
        String group = "java-group";
        Properties props = new Properties();
        props.putAll(consumerProps);
        props.put("group.id", group);
        props.put("auto.offset.reset", "earliest");
        Set<String> seen = Collections.synchronizedSet(new HashSet<>());
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
        for (int m = 0; m < 2; m++) {
            Thread thread = new Thread(() -> {
                try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
                    consumer.subscribe(List.of(topic));
                    long deadline = System.currentTimeMillis() + 60_000;
                    while (seen.size() < RECORDS && System.currentTimeMillis() < deadline) {
                        for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                            seen.add(record.value());
                        }
                        consumer.commitSync();
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            });
            thread.start();
            threads.add(thread);
        }
        for (Thread thread : threads) thread.join();
        check(failures.isEmpty(), "group consumers failed: " + failures);
        check(seen.size() == RECORDS, "the group consumed " + seen.size() + " of " + RECORDS);
        try (Admin admin = Admin.create(common)) {
            boolean listed = admin.listConsumerGroups().all().get().stream()
                .anyMatch(g -> g.groupId().equals(group));
            check(listed, "listConsumerGroups shows the group");
            ConsumerGroupDescription description =
                admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            check(description.members().isEmpty(), "both members left: " + description.members());
            Map<TopicPartition, OffsetAndMetadata> offsets =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            long committed = offsets.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            check(committed == RECORDS, "committed offsets add up to " + committed);
            admin.deleteConsumerGroups(List.of(group)).all().get();
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        // Security settings (security.protocol, ssl.*, sasl.*) for every client, when given.
        if (args.length > 2) {
            try (java.io.FileReader reader = new java.io.FileReader(args[2])) {
                common.load(reader);
            }
        }

        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1)
                .configs(Map.of("retention.ms", "86400000")))).all().get();
            DescribeClusterResult cluster = admin.describeCluster();
            check(cluster.nodes().get().size() == 1, "describeCluster lists one broker");
            check(cluster.clusterId().get() != null, "cluster id");
            check(admin.listTopics().names().get().contains(topic), "listTopics");
            TopicDescription described = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(described.partitions().size() == PARTITIONS, "describeTopics partitions");
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                new ConfigEntry("segment.bytes", "1048576"), AlterConfigOp.OpType.SET)))).all().get();
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            check("1048576".equals(config.get("segment.bytes").value()), "incrementalAlterConfigs applied");
            check("86400000".equals(config.get("retention.ms").value()), "create-time config kept");
        }

        Properties producerProps = new Properties();
        producerProps.putAll(common);
        producerProps.put("key.serializer", StringSerializer.class.getName());
        producerProps.put("value.serializer", StringSerializer.class.getName());
        producerProps.put("compression.type", "zstd");
        producerProps.put("linger.ms", "5");
        long baseTimestamp = System.currentTimeMillis() - 60_000;
        Map<String, RecordMetadata> sent = new HashMap<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps)) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                ProducerRecord<String, String> record = new ProducerRecord<>(topic, null, baseTimestamp + i,
                    "key-" + (i % 50), "value-" + i);
                record.headers().add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                futures.add(producer.send(record));
            }
            producer.flush();
            for (int i = 0; i < RECORDS; i++) {
                sent.put("value-" + i, futures.get(i).get());
            }
        }

        Properties consumerProps = new Properties();
        consumerProps.putAll(common);
        consumerProps.put("key.deserializer", StringDeserializer.class.getName());
        consumerProps.put("value.deserializer", StringDeserializer.class.getName());
        consumerProps.put("enable.auto.commit", "false");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps)) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) partitions.add(new TopicPartition(topic, p));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
            check(ends.values().stream().mapToLong(Long::longValue).sum() == RECORDS, "end offsets count every record once");
            int read = 0;
            Map<Integer, Long> lastOffset = new HashMap<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (read < RECORDS && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(500))) {
                    RecordMetadata meta = sent.get(record.value());
                    check(meta != null, "unknown record " + record.value());
                    check(meta.partition() == record.partition() && meta.offset() == record.offset(), "offset of " + record.value());
                    int n = Integer.parseInt(record.value().substring("value-".length()));
                    check(record.key().equals("key-" + (n % 50)), "key of " + record.value());
                    check(record.timestamp() == baseTimestamp + n, "timestamp of " + record.value());
                    Header header = record.headers().lastHeader("n");
                    check(header != null && new String(header.value(), StandardCharsets.UTF_8).equals(Integer.toString(n)), "header");
                    Long previous = lastOffset.put(record.partition(), record.offset());
                    check(previous == null || previous < record.offset(), "order within a partition");
                    read++;
                }
            }
            check(read == RECORDS, "read " + read + " of " + RECORDS);
            Map<TopicPartition, Long> query = new HashMap<>();
            for (TopicPartition tp : partitions) query.put(tp, baseTimestamp + RECORDS / 2);
            Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(query);
            for (TopicPartition tp : partitions) {
                OffsetAndTimestamp at = found.get(tp);
                check(at != null && at.timestamp() >= baseTimestamp + RECORDS / 2, "offsetsForTimes on " + tp);
            }
        }
        checkGroup(common, consumerProps, topic);
        System.out.println("OK " + RECORDS + " records");
    }
}
