// A consume-transform-produce loop with exactly-once semantics, as Kafka Streams runs one: a
// read_committed consumer of the input, a transactional producer writing each record's result
// to the output and committing the consumer's offsets in the same transaction
// (sendOffsetsToTransaction). It survives the broker being killed under it: a commit that
// timed out is retried, a transaction that failed is aborted and the consumer rewound to the
// last committed offsets, a fenced producer is replaced. Exits 0 once every input record is
// consumed and committed.
// Usage: java StrataEosCheck <bootstrap> <input> <output> <records>

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataEosCheck {
    static KafkaProducer<String, String> producer(String bootstrap) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        props.put("transactional.id", "eos-transform");
        props.put("transaction.timeout.ms", "30000");
        props.put("max.block.ms", "10000");
        props.put("delivery.timeout.ms", "60000");
        props.put("request.timeout.ms", "10000");
        KafkaProducer<String, String> producer = new KafkaProducer<>(props);
        while (true) {
            try {
                producer.initTransactions();
                return producer;
            } catch (TimeoutException e) {
                System.out.println("initTransactions timed out, retrying");
            }
        }
    }

    // Back to the last committed offsets: what the aborted transaction consumed is consumed
    // again.
    static void rewind(KafkaConsumer<String, String> consumer) {
        Set<TopicPartition> assigned = consumer.assignment();
        Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(assigned);
        for (TopicPartition tp : assigned) {
            OffsetAndMetadata at = committed.get(tp);
            if (at == null) consumer.seekToBeginning(List.of(tp));
            else consumer.seek(tp, at.offset());
        }
    }

    static boolean caughtUp(KafkaConsumer<String, String> consumer, String input) {
        Set<TopicPartition> all = new HashSet<>();
        consumer.partitionsFor(input).forEach(p -> all.add(new TopicPartition(input, p.partition())));
        if (!consumer.assignment().containsAll(all)) return false;
        Map<TopicPartition, Long> ends = consumer.endOffsets(all);
        Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(all);
        for (TopicPartition tp : all) {
            OffsetAndMetadata at = committed.get(tp);
            if (at == null || at.offset() < ends.get(tp)) return false;
        }
        return true;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String input = args[1];
        String output = args[2];
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", "eos-transform");
        props.put("isolation.level", "read_committed");
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        props.put("default.api.timeout.ms", "10000");
        // Small transactions, so that the broker's deaths fall in the middle of the run.
        props.put("max.poll.records", "20");
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        consumer.subscribe(List.of(input));
        KafkaProducer<String, String> producer = producer(bootstrap);
        long deadline = System.currentTimeMillis() + 240_000;
        int transactions = 0;
        int failures = 0;
        while (System.currentTimeMillis() < deadline) {
            ConsumerRecords<String, String> records;
            try {
                records = consumer.poll(Duration.ofMillis(500));
                if (records.isEmpty()) {
                    if (caughtUp(consumer, input)) {
                        System.out.println("OK eos " + transactions + " transactions, " + failures + " failed");
                        producer.close();
                        consumer.close();
                        return;
                    }
                    continue;
                }
            } catch (KafkaException e) {
                System.out.println("consumer: " + e);
                continue;
            }
            try {
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    producer.send(new ProducerRecord<>(output, r.key(), "out-" + r.value()));
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(next, consumer.groupMetadata());
                while (true) {
                    try {
                        producer.commitTransaction();
                        break;
                    } catch (TimeoutException e) {
                        // The outcome is unknown: only retrying the commit is allowed.
                        System.out.println("commit timed out, retrying");
                    }
                }
                transactions++;
                Thread.sleep(10);
            } catch (ProducerFencedException e) {
                throw e;
            } catch (KafkaException e) {
                failures++;
                System.out.println("transaction failed: " + e);
                try {
                    producer.abortTransaction();
                } catch (KafkaException abortFailed) {
                    System.out.println("abort failed, new producer: " + abortFailed);
                    producer.close(Duration.ZERO);
                    producer = producer(bootstrap);
                }
                rewind(consumer);
            }
        }
        System.err.println("FAILED: not done within 240 s");
        System.exit(1);
    }
}
