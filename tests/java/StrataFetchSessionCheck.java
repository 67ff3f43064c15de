// The Java consumer over many partitions, which opens an incremental fetch session (KIP-227)
// on its own: it reads every record of every partition, and while it polls the broker's
// metrics show one session holding all of them. Exits non-zero with a message on the first
// thing that is wrong.
// Usage: java StrataFetchSessionCheck <bootstrap> <topic> <metrics url>

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataFetchSessionCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    // The value of an unlabelled gauge in Prometheus text.
    static double gauge(String url, String name) throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString());
        for (String line : response.body().split("\n")) {
            if (line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(name.length() + 1).trim());
            }
        }
        return -1;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String metrics = args[2];
        Properties producerProps = new Properties();
        producerProps.put("bootstrap.servers", bootstrap);
        producerProps.put("key.serializer", StringSerializer.class.getName());
        producerProps.put("value.serializer", StringSerializer.class.getName());
        int partitions;
        int records = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps)) {
            partitions = producer.partitionsFor(topic).size();
            for (int p = 0; p < partitions; p++) {
                for (int i = 0; i < 5; i++) {
                    producer.send(new ProducerRecord<>(topic, p, null, p + "-" + i));
                    records++;
                }
            }
            producer.flush();
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        props.put("fetch.max.wait.ms", "100");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> all = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic)) {
                all.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(all);
            consumer.seekToBeginning(all);
            Set<String> seen = new HashSet<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen.size() < records && System.currentTimeMillis() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(r -> seen.add(r.value()));
            }
            check(seen.size() == records, "read " + seen.size() + " of " + records + " records");
            // Incremental fetches go on while it polls: one session holds every partition.
            double sessions = -1;
            double held = -1;
            long until = System.currentTimeMillis() + 10_000;
            while (System.currentTimeMillis() < until) {
                consumer.poll(Duration.ofMillis(100));
                sessions = gauge(metrics, "strata_kafka_fetch_sessions");
                held = gauge(metrics, "strata_kafka_fetch_session_partitions");
                if (sessions >= 1 && held >= partitions) break;
            }
            check(sessions >= 1 && held >= partitions,
                "a session of " + partitions + " partitions: " + sessions + " sessions, " + held + " partitions");
        }
        System.out.println("OK sessions");
    }
}
