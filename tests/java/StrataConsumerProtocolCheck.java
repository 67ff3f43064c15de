// The Java consumer with group.protocol=consumer (KIP-848): the broker assigns. Two members
// share a topic's partitions, a third joins, one leaves; after each change the partitions are
// split evenly without overlap, and every record produced is read exactly once across the
// members (each commits after every poll, so whoever takes a partition over continues at its
// committed offset). The Admin client then describes the group (ConsumerGroupDescribe).
// Exits non-zero with a message on the first thing that is wrong.
// Usage: java StrataConsumerProtocolCheck <bootstrap> <topic> <assignor>

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataConsumerProtocolCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static String bootstrap;
    static String topic;
    static String assignor;
    static String GROUP;
    static final Set<String> read = new HashSet<>();
    static final List<String> duplicates = new ArrayList<>();
    static int produced = 0;

    static KafkaConsumer<String, String> member(String name) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", GROUP);
        props.put("group.protocol", "consumer");
        props.put("group.remote.assignor", assignor);
        props.put("client.id", name);
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        consumer.subscribe(List.of(topic));
        return consumer;
    }

    static void produce(int count) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, null, "v-" + produced++));
            }
            producer.flush();
        }
    }

    // Polls every member (committing after each poll) until `done` holds and every record
    // produced so far is read.
    static void pollUntil(List<KafkaConsumer<String, String>> members, String what,
                          java.util.function.BooleanSupplier done) {
        long deadline = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < deadline) {
            for (KafkaConsumer<String, String> c : members) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(100));
                for (ConsumerRecord<String, String> r : records) {
                    if (!read.add(r.value())) {
                        duplicates.add(r.value() + "@" + r.partition() + ":" + r.offset());
                    }
                }
                if (!records.isEmpty()) {
                    c.commitSync();
                }
            }
            if (done.getAsBoolean() && read.size() == produced) {
                return;
            }
        }
        StringBuilder state = new StringBuilder();
        for (KafkaConsumer<String, String> c : members) {
            state.append(" ").append(c.assignment());
        }
        check(false, what + ": read " + read.size() + " of " + produced + ", assignments" + state);
    }

    // Each member holds `sizes[i]` partitions and together they hold all, once.
    static boolean split(List<KafkaConsumer<String, String>> members, int partitions, int each) {
        Set<TopicPartition> all = new HashSet<>();
        for (KafkaConsumer<String, String> c : members) {
            Set<TopicPartition> mine = c.assignment();
            if (mine.size() != each) {
                return false;
            }
            all.addAll(mine);
        }
        return all.size() == partitions;
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        topic = args[1];
        assignor = args[2];
        GROUP = "kip848-" + assignor;
        int partitions = 6;
        produce(60);
        KafkaConsumer<String, String> a = member("member-a");
        pollUntil(List.of(a), "one member", () -> a.assignment().size() == partitions);
        KafkaConsumer<String, String> b = member("member-b");
        produce(60);
        pollUntil(List.of(a, b), "two members", () -> split(List.of(a, b), partitions, 3));
        KafkaConsumer<String, String> c = member("member-c");
        produce(60);
        pollUntil(List.of(a, b, c), "three members", () -> split(List.of(a, b, c), partitions, 2));
        if (assignor.equals("range")) {
            // Range hands out contiguous blocks.
            for (KafkaConsumer<String, String> m : List.of(a, b, c)) {
                List<Integer> ids = new ArrayList<>();
                for (TopicPartition tp : m.assignment()) ids.add(tp.partition());
                Collections.sort(ids);
                check(ids.get(1) == ids.get(0) + 1, "range gives blocks: " + ids);
            }
        }
        b.close();
        produce(60);
        pollUntil(List.of(a, c), "after one left", () -> split(List.of(a, c), partitions, 3));
        check(duplicates.isEmpty(), "records read twice: " + duplicates);

        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            ConsumerGroupDescription group = admin.describeConsumerGroups(List.of(GROUP))
                .describedGroups().get(GROUP).get();
            check(group.type() == GroupType.CONSUMER, "described as a consumer group: " + group);
            check(group.members().size() == 2, "two members described: " + group);
            check(group.partitionAssignor().equals(assignor), "assignor " + group.partitionAssignor());
            int assigned = 0;
            for (MemberDescription m : group.members()) {
                assigned += m.assignment().topicPartitions().size();
            }
            check(assigned == partitions, "members hold every partition: " + group);
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(GROUP)
                .partitionsToOffsetAndMetadata().get();
            long committed = 0;
            for (OffsetAndMetadata o : offsets.values()) committed += o.offset();
            check(committed == produced, "committed offsets add up to " + produced + ": " + offsets);
        }
        a.close();
        c.close();

        // A regular-expression subscription (ConsumerGroupHeartbeat v1), resolved by the broker.
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", GROUP + "-regex");
        props.put("group.protocol", "consumer");
        props.put("auto.offset.reset", "earliest");
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> regex = new KafkaConsumer<>(props)) {
            regex.subscribe(new SubscriptionPattern(topic.substring(0, 3) + ".*-" + assignor));
            Set<String> seen = new HashSet<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen.size() < produced && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : regex.poll(Duration.ofMillis(100))) {
                    seen.add(r.value());
                }
            }
            check(seen.size() == produced, "the pattern's consumer read " + seen.size()
                + " of " + produced + ", assigned " + regex.assignment());
        }
        System.out.println("OK consumer protocol " + assignor + ": " + read.size() + " records");
    }
}
