// A group upgraded and downgraded while in use (KIP-848's online migration), with the Java
// client. A classic consumer (group.protocol=classic, cooperative-sticky) owns every partition;
// a consumer-protocol member joins, which turns the group into a consumer group with both;
// a second classic consumer (eager range) joins; the consumer-protocol member leaves, which
// turns the group back into a classic one. After each change the partitions are split evenly
// without overlap and every record produced so far is read. A record may be read twice only
// if the poll that read it could not commit (a commit refused during a rebalance); none is
// lost. The Admin client sees a CONSUMER group with classic and upgraded members while the
// consumer-protocol member is in, and a CLASSIC group after it left.
// Exits non-zero with a message on the first thing that is wrong.
// Usage: java StrataMixedGroupCheck <bootstrap> <topic>

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataMixedGroupCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static final String GROUP = "mixed-protocols";
    static String bootstrap;
    static String topic;
    static final Set<String> read = new HashSet<>();
    static final Set<String> uncommitted = new HashSet<>();
    static final List<String> duplicates = new ArrayList<>();
    static int produced = 0;
    static int failedCommits = 0;

    static KafkaConsumer<String, String> member(String name, String protocol, String strategy) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", GROUP);
        props.put("group.protocol", protocol);
        if (strategy != null) {
            props.put("partition.assignment.strategy", strategy);
            props.put("heartbeat.interval.ms", "300");
        }
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

    // Members whose last commit was refused: they commit again on their next poll.
    static final Set<KafkaConsumer<String, String>> dirty = new HashSet<>();

    // Polls every member (committing after each poll that read something) until `done` holds,
    // every record produced so far is read and every member's position is committed.
    static void pollUntil(List<KafkaConsumer<String, String>> members, String what,
                          java.util.function.BooleanSupplier done) {
        long deadline = System.currentTimeMillis() + 90_000;
        while (System.currentTimeMillis() < deadline) {
            for (KafkaConsumer<String, String> c : members) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(100));
                List<String> values = new ArrayList<>();
                for (ConsumerRecord<String, String> r : records) {
                    values.add(r.value());
                    if (!read.add(r.value())) {
                        duplicates.add(r.value() + "@" + r.partition() + ":" + r.offset());
                    }
                }
                if (!records.isEmpty() || dirty.contains(c)) {
                    try {
                        c.commitSync();
                        dirty.remove(c);
                    } catch (KafkaException e) {
                        // The client refuses to commit while it rebalances (or the group
                        // refused a stale generation): whoever takes these partitions over
                        // may read these records again.
                        failedCommits++;
                        uncommitted.addAll(values);
                        dirty.add(c);
                    }
                }
            }
            if (done.getAsBoolean() && read.size() == produced && dirty.isEmpty()) {
                return;
            }
        }
        StringBuilder state = new StringBuilder();
        for (KafkaConsumer<String, String> c : members) {
            state.append(" ").append(c.assignment());
        }
        check(false, what + ": read " + read.size() + " of " + produced + ", assignments" + state);
    }

    // Each member holds `each` partitions and together they hold all, once.
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

    static ConsumerGroupDescription describe(Admin admin) throws Exception {
        return admin.describeConsumerGroups(List.of(GROUP)).describedGroups().get(GROUP).get();
    }

    // The group's type as ListGroups (v5) reports it.
    static GroupType listedType(Admin admin) throws Exception {
        for (GroupListing g : admin.listGroups().all().get()) {
            if (g.groupId().equals(GROUP)) {
                check(g.protocol().equals("consumer"), "listed with protocol consumer: " + g);
                return g.type().orElse(GroupType.UNKNOWN);
            }
        }
        check(false, "the group is listed");
        return null;
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        topic = args[1];
        int partitions = 6;
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            produce(60);
            KafkaConsumer<String, String> a = member("classic-a", "classic",
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
            pollUntil(List.of(a), "one classic member", () -> a.assignment().size() == partitions);
            check(describe(admin).type() == GroupType.CLASSIC, "a classic group first: " + describe(admin));

            // The upgrade: a consumer-protocol member joins the classic group in use.
            KafkaConsumer<String, String> b = member("consumer-b", "consumer", null);
            produce(60);
            pollUntil(List.of(a, b), "classic and consumer members", () -> split(List.of(a, b), partitions, 3));
            ConsumerGroupDescription mixed = describe(admin);
            check(mixed.type() == GroupType.CONSUMER, "upgraded to a consumer group: " + mixed);
            int classic = 0;
            int upgraded = 0;
            for (MemberDescription m : mixed.members()) {
                if (m.upgraded().orElse(false)) upgraded++; else classic++;
            }
            check(classic == 1 && upgraded == 1, "one classic and one upgraded member: " + mixed);
            check(listedType(admin) == GroupType.CONSUMER, "listed as a consumer group");

            // A classic member joins the consumer group.
            KafkaConsumer<String, String> c = member("classic-c", "classic",
                "org.apache.kafka.clients.consumer.RangeAssignor,org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
            produce(60);
            pollUntil(List.of(a, b, c), "three members", () -> split(List.of(a, b, c), partitions, 2));
            check(describe(admin).members().size() == 3, "three members described: " + describe(admin));

            // The downgrade: the only consumer-protocol member leaves.
            b.close();
            produce(60);
            pollUntil(List.of(a, c), "after the consumer member left", () -> split(List.of(a, c), partitions, 3));
            ConsumerGroupDescription back = describe(admin);
            check(back.type() == GroupType.CLASSIC, "downgraded to a classic group: " + back);
            check(back.members().size() == 2, "two classic members: " + back);
            check(listedType(admin) == GroupType.CLASSIC, "listed as a classic group again");

            List<String> unexpected = new ArrayList<>();
            for (String d : duplicates) {
                if (!uncommitted.contains(d.substring(0, d.indexOf('@')))) unexpected.add(d);
            }
            check(unexpected.isEmpty(), "records read twice although committed: " + unexpected);
            a.close();
            c.close();
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(GROUP)
                .partitionsToOffsetAndMetadata().get();
            long committed = 0;
            for (OffsetAndMetadata o : offsets.values()) committed += o.offset();
            check(committed == produced, "committed offsets add up to " + produced + ": " + offsets
                + " after " + failedCommits + " refused commits, " + duplicates.size() + " read twice");
        }
        System.out.println("OK mixed group: " + read.size() + " records, " + duplicates.size()
            + " read again after " + failedCommits + " refused commits");
    }
}
