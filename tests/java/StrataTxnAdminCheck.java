// The Java AdminClient's transaction tools (KIP-664) against a hanging transaction: a
// transactional producer leaves one open; describeTransactions, listTransactions and
// describeProducers show it, read_committed listOffsets stops at it, and abortTransaction
// (WriteTxnMarkers from the admin) ends it on its partition so read_committed readers move on.
// Exits non-zero with a message on the first thing wrong.
// Usage: java StrataTxnAdminCheck <bootstrap> <topic>

import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;

public class StrataTxnAdminCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static long committedEnd(Admin admin, TopicPartition tp) throws Exception {
        return admin.listOffsets(Map.of(tp, OffsetSpec.latest()),
                new ListOffsetsOptions(IsolationLevel.READ_COMMITTED))
            .partitionResult(tp).get().offset();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        TopicPartition tp = new TopicPartition(args[1], 0);
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        Properties props = new Properties();
        props.putAll(common);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        props.put("transactional.id", "hanging-tx");
        KafkaProducer<String, String> producer = new KafkaProducer<>(props);
        producer.initTransactions();
        producer.beginTransaction();
        for (int i = 0; i < 3; i++) {
            producer.send(new ProducerRecord<>(tp.topic(), tp.partition(), "k", "v" + i)).get();
        }
        try (Admin admin = Admin.create(common)) {
            TransactionDescription described = admin.describeTransactions(List.of("hanging-tx"))
                .description("hanging-tx").get();
            check(described.state() == TransactionState.ONGOING, "ongoing: " + described);
            check(described.topicPartitions().equals(Set.of(tp)), "its partition: " + described);
            check(described.transactionStartTimeMs().isPresent(), "start time: " + described);
            Collection<TransactionListing> listed = admin.listTransactions(
                new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING))).all().get();
            check(listed.stream().anyMatch(l -> l.transactionalId().equals("hanging-tx")), "listed: " + listed);
            ProducerState state = admin.describeProducers(List.of(tp)).partitionResult(tp).get()
                .activeProducers().get(0);
            check(state.currentTransactionStartOffset().orElse(-1) == 0, "transaction start: " + state);
            check(state.producerId() == described.producerId(), "the same producer: " + state);
            check(committedEnd(admin, tp) == 0, "read_committed stops at the open transaction");
            admin.abortTransaction(new AbortTransactionSpec(tp, state.producerId(),
                (short) state.producerEpoch(), state.coordinatorEpoch().orElse(0))).all().get();
            long end = committedEnd(admin, tp);
            check(end == 4, "read_committed end after the abort (3 records and a marker): " + end);
        }
        producer.close(java.time.Duration.ZERO);
        System.out.println("OK transaction admin");
    }
}
