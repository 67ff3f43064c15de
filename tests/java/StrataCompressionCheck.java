// Exercises topics that store batches in their own codec (compression.type) with the Java
// client: its uncompressed batches are stored recompressed, and it reads back every record,
// its own and those librdkafka wrote before. Then per-record errors (KIP-467): a batch of a
// compacted topic with one keyless record fails that record with the reason, the others as
// part of a refused batch. Exits non-zero with a message on the first thing that is wrong.
// Usage: java StrataCompressionCheck <bootstrap> <compacted topic> <topic>...

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataCompressionCheck {
    static final int EACH = 50;

    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static Properties producerProps(String bootstrap) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        props.put("compression.type", "none");
        return props;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String compacted = args[1];
        List<String> topics = Arrays.asList(args).subList(2, args.length);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap))) {
            for (String topic : topics) {
                for (int i = EACH; i < 2 * EACH; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k" + i, topic + "-" + i));
                }
            }
            producer.flush();
        }
        Properties consumerProps = new Properties();
        consumerProps.put("bootstrap.servers", bootstrap);
        consumerProps.put("key.deserializer", StringDeserializer.class.getName());
        consumerProps.put("value.deserializer", StringDeserializer.class.getName());
        for (String topic : topics) {
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps)) {
                TopicPartition partition = new TopicPartition(topic, 0);
                consumer.assign(List.of(partition));
                consumer.seekToBeginning(List.of(partition));
                List<String> values = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 20_000;
                while (values.size() < 2 * EACH && System.currentTimeMillis() < deadline) {
                    consumer.poll(Duration.ofMillis(200)).forEach(r -> values.add(r.value()));
                }
                List<String> expected = new ArrayList<>();
                for (int i = 0; i < 2 * EACH; i++) expected.add(topic + "-" + i);
                check(values.equals(expected), topic + ": read " + values);
            }
        }

        // One batch of three records, the middle one without a key.
        Properties batching = producerProps(bootstrap);
        batching.put("linger.ms", "1000");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(batching)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            sent.add(producer.send(new ProducerRecord<>(compacted, 0, "a", "1")));
            sent.add(producer.send(new ProducerRecord<>(compacted, 0, null, "2")));
            sent.add(producer.send(new ProducerRecord<>(compacted, 0, "c", "3")));
            producer.flush();
            List<Throwable> causes = new ArrayList<>();
            for (Future<RecordMetadata> f : sent) {
                try {
                    f.get();
                    causes.add(null);
                } catch (ExecutionException e) {
                    causes.add(e.getCause());
                }
            }
            check(causes.stream().allMatch(Objects::nonNull), "the whole batch is refused: " + causes);
            check(causes.get(1) instanceof InvalidRecordException
                    && causes.get(1).getMessage().contains("without key"),
                "the keyless record is named: " + causes.get(1));
            for (int i : new int[] {0, 2}) {
                check(!(causes.get(i) instanceof InvalidRecordException)
                        && causes.get(i).getMessage().contains("part of a batch"),
                    "record " + i + " failed with its batch: " + causes.get(i));
            }
            // The producer goes on: the next batch is accepted.
            producer.send(new ProducerRecord<>(compacted, 0, "d", "4")).get();
        }
        System.out.println("OK compression");
    }
}
