// The Java consumer with isolation.level=read_committed: from the beginning of partition 0 it
// reads exactly the expected values (the committed ones, up to the last stable offset), in
// order, and nothing more. Exits non-zero with a message if it reads anything else.
// Usage: java StrataReadCommittedCheck <bootstrap> <topic> <value,value,...>

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class StrataReadCommittedCheck {
    public static void main(String[] args) throws Exception {
        List<String> expected = Arrays.asList(args[2].split(","));
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        props.put("isolation.level", "read_committed");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            TopicPartition partition = new TopicPartition(args[1], 0);
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            List<String> values = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 10_000;
            while (values.size() < expected.size() && System.currentTimeMillis() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(r -> values.add(r.value()));
            }
            // Whatever else would arrive now is a record it must not see.
            consumer.poll(Duration.ofMillis(1000)).forEach(r -> values.add(r.value()));
            if (!values.equals(expected)) {
                System.err.println("FAILED: read " + values + ", expected " + expected);
                System.exit(1);
            }
            long end = consumer.endOffsets(List.of(partition)).get(partition);
            System.out.println("end offset (last stable) " + end);
        }
        System.out.println("OK read_committed");
    }
}
