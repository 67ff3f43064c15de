// Manages ACLs with the Java AdminClient (CreateAcls, DescribeAcls, DeleteAcls) and checks that
// they take effect: a consumer of the named user reads a topic only once allowed to.
// Usage: StrataAclCheck <admin bootstrap> <sasl bootstrap> <user> <password>
import java.time.Duration;
import java.util.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.*;
import org.apache.kafka.common.serialization.StringDeserializer;

public class StrataAclCheck {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    /** Polls until a record arrives (true) or the broker refuses the topic (false). */
    static boolean reads(Properties props, String topic) {
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            TopicPartition p = new TopicPartition(topic, 0);
            consumer.assign(List.of(p));
            consumer.seek(p, 0);
            long deadline = System.currentTimeMillis() + 15_000;
            while (System.currentTimeMillis() < deadline) {
                if (!consumer.poll(Duration.ofMillis(500)).isEmpty()) return true;
            }
            throw new AssertionError("neither records nor a refusal in 15 s");
        } catch (TopicAuthorizationException e) {
            return false;
        }
    }

    public static void main(String[] args) throws Exception {
        Properties adminProps = new Properties();
        adminProps.put("bootstrap.servers", args[0]);
        String user = args[2];
        Properties client = new Properties();
        client.put("bootstrap.servers", args[1]);
        client.put("security.protocol", "SASL_PLAINTEXT");
        client.put("sasl.mechanism", "SCRAM-SHA-512");
        client.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
            + user + "\" password=\"" + args[3] + "\";");
        client.put("key.deserializer", StringDeserializer.class.getName());
        client.put("value.deserializer", StringDeserializer.class.getName());

        check(!reads(client, "audit"), "no ACL: refused");
        ResourcePattern topic = new ResourcePattern(ResourceType.TOPIC, "aud", PatternType.PREFIXED);
        AclBinding read = new AclBinding(topic,
            new AccessControlEntry("User:" + user, "*", AclOperation.READ, AclPermissionType.ALLOW));
        try (Admin admin = Admin.create(adminProps)) {
            admin.createAcls(List.of(read)).all().get();
            Collection<AclBinding> listed = admin.describeAcls(new AclBindingFilter(
                new ResourcePatternFilter(ResourceType.TOPIC, "audit", PatternType.MATCH),
                AccessControlEntryFilter.ANY)).values().get();
            check(listed.equals(List.of(read)), "describeAcls (MATCH) finds the prefixed ACL: " + listed);
        }
        check(reads(client, "audit"), "READ allowed: reads");
        try (Admin admin = Admin.create(adminProps)) {
            Collection<AclBinding> deleted = admin.deleteAcls(List.of(read.toFilter())).all().get();
            check(deleted.equals(List.of(read)), "deleteAcls removes it: " + deleted);
            check(admin.describeAcls(AclBindingFilter.ANY).values().get().isEmpty(), "none left");
        }
        check(!reads(client, "audit"), "ACL deleted: refused again");
        System.out.println("OK ACLs");
    }
}
