//! The broker-level settings Strata knows besides the topic defaults (`log.*`,
//! `message.max.bytes`, …, which come from the topic config table): name, default, meaning.
//! DescribeConfigs and `strata config` list them; unknown names are refused.

/// Broker-level keys besides the topic defaults (`log.*`, `message.max.bytes`, ...).
pub const BROKER_KEYS: &[(&str, &str, &str)] = &[
    (
        "node.id",
        "1",
        "this node's id (broker id and controller id)",
    ),
    (
        "process.roles",
        "broker,controller",
        "broker, controller, or both (combined mode)",
    ),
    ("log.dirs", "./strata-data", "the data directory"),
    (
        "listeners",
        "PLAINTEXT://127.0.0.1:9092",
        "Kafka listeners (NAME://host:port, a bare host:port is PLAINTEXT), the controller \
         listener (CONTROLLER://host:port) and the admin HTTP API (ADMIN://host:port); the last \
         two default to the first Kafka listener's host and its port + 1 and + 552 (9093 and \
         9644 for 9092), or port 0 if that one is 0",
    ),
    (
        "listener.security.protocol.map",
        "",
        "NAME:PROTOCOL pairs giving each Kafka listener its security protocol (PLAINTEXT, SSL, \
         SASL_PLAINTEXT, SASL_SSL); a listener named after a protocol uses it; CONTROLLER:SSL \
         makes the controller listener mutual TLS",
    ),
    (
        "inter.broker.listener.name",
        "",
        "the listener brokers reach each other on; empty: the first Kafka listener",
    ),
    (
        "security.inter.broker.protocol",
        "",
        "accepted for Kafka compatibility when it agrees with inter.broker.listener.name",
    ),
    (
        "ssl.keystore.type",
        "PEM",
        "format of the key and certificates (PEM only; convert JKS and PKCS12)",
    ),
    (
        "ssl.keystore.location",
        "",
        "PEM file with the listener's private key and certificate chain (leaf first); \
         reloaded when it changes",
    ),
    (
        "ssl.keystore.certificate.chain",
        "",
        "the certificate chain as inline PEM, instead of ssl.keystore.location",
    ),
    (
        "ssl.keystore.key",
        "",
        "the private key as inline PEM (unencrypted), with ssl.keystore.certificate.chain",
    ),
    (
        "ssl.key.password",
        "",
        "refused: encrypted private keys are not read",
    ),
    (
        "ssl.truststore.type",
        "PEM",
        "format of the trusted CAs (PEM only)",
    ),
    (
        "ssl.truststore.location",
        "",
        "PEM file of the CAs client certificates must chain to",
    ),
    (
        "ssl.truststore.certificates",
        "",
        "the trusted CAs as inline PEM, instead of ssl.truststore.location",
    ),
    (
        "ssl.client.auth",
        "none",
        "client certificates: none, requested (clients without one are User:ANONYMOUS) or required",
    ),
    (
        "ssl.enabled.protocols",
        "TLSv1.2,TLSv1.3",
        "TLS versions accepted",
    ),
    (
        "ssl.cipher.suites",
        "",
        "cipher suites accepted, by IANA name; empty: rustls's defaults",
    ),
    (
        "ssl.principal.mapping.rules",
        "DEFAULT",
        "how a client certificate's subject becomes a user name: RULE:pattern/replacement/[LU] \
         rules, then DEFAULT (the subject as RFC 2253 writes it)",
    ),
    (
        "ssl.certificate.reload.interval.ms",
        "60000",
        "how often certificate and key files are checked for changes and reloaded; 0: never",
    ),
    (
        "authorizer.class.name",
        "",
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer (or standard) checks every \
         request against the ACLs; empty: everyone may do everything",
    ),
    (
        "super.users",
        "",
        "principals allowed everything, semicolon-separated: User:admin;User:broker",
    ),
    (
        "allow.everyone.if.no.acl.found",
        "false",
        "with an authorizer: whether a resource no ACL names is open to everyone",
    ),
    (
        "sasl.mechanism.inter.broker.protocol",
        "",
        "the SASL mechanism brokers log in to each other with on a SASL inter-broker listener; \
         empty: its first enabled one. The credentials: listener.name.<l>.<mechanism>.sasl.jaas.config",
    ),
    (
        "sasl.enabled.mechanisms",
        "SCRAM-SHA-512,SCRAM-SHA-256",
        "SASL mechanisms of SASL_PLAINTEXT and SASL_SSL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
    ),
    (
        "sasl.plain.users.file",
        "",
        "PLAIN's users, one name:password (or name:sha256:<hex of the password's SHA-256>) per line",
    ),
    (
        "connections.max.reauth.ms",
        "0",
        "a SASL session lasts this long, then the client must authenticate again on its \
         connection (KIP-368) or is disconnected; 0: for the connection's life",
    ),
    (
        "connection.failed.authentication.delay.ms",
        "100",
        "a failed authentication is answered, and the connection closed, after this delay (the \
         admin API's too)",
    ),
    (
        "bootstrap.scram.users.file",
        "",
        "SCRAM users a new cluster starts with (SCRAM-SHA-256 and -512, 4096 iterations), one \
         name:password per line; written with the cluster's first metadata (as kafka-storage \
         format --add-scram), later changes through strata user",
    ),
    (
        "admin.api.authentication",
        "none",
        "who may call the admin HTTP API and console: none, basic (a user's SCRAM password, or a \
         PLAIN user's), token (admin.api.tokens.file), or basic,token; /v1/health and /v1/ready \
         stay open. ADMIN:SSL in listener.security.protocol.map serves it over https",
    ),
    (
        "admin.api.tokens.file",
        "",
        "the admin API's bearer tokens, one `<sha256-hex of the token> <admin|viewer> <name>` \
         per line (strata admin-token makes them); read at startup",
    ),
    (
        "admin.api.admin.principals",
        "",
        "principals with the admin API's admin role, semicolon-separated; empty: super.users. \
         Every other authenticated user is a viewer, who only reads",
    ),
    (
        "sasl.server.max.receive.size",
        "524288",
        "largest request accepted before a SASL client has authenticated",
    ),
    (
        "ssl.handshake.timeout.ms",
        "10000",
        "a TLS handshake not finished in this time closes the connection",
    ),
    (
        "controller.quorum.voters",
        "",
        "every voter as id@host:port, comma-separated; empty: this node alone (needs the controller role)",
    ),
    (
        "broker.rack",
        "",
        "rack of this broker, for rack-aware replica placement",
    ),
    (
        "replica.lag.time.max.ms",
        "30000",
        "a follower that has not caught up with the leader for this long leaves the ISR",
    ),
    (
        "auto.leader.rebalance.enable",
        "true",
        "the active controller moves leadership back to preferred replicas (controller setting)",
    ),
    (
        "leader.imbalance.check.interval.seconds",
        "300",
        "how often the active controller checks the leader balance (controller setting)",
    ),
    (
        "leader.imbalance.per.broker.percentage",
        "10",
        "leadership is rebalanced when more than this share of a broker's preferred partitions is led elsewhere",
    ),
    (
        "broker.heartbeat.interval.ms",
        "2000",
        "how often a broker heartbeats to the active controller",
    ),
    (
        "broker.session.timeout.ms",
        "9000",
        "a broker without a heartbeat for this long is fenced (controller setting)",
    ),
    (
        "remote.log.storage.system.enable",
        "true",
        "tiered storage on this broker (topics opt in or out with remote.storage.enable)",
    ),
    (
        "remote.log.storage.url",
        "",
        "object store for closed segments: s3://bucket/prefix (AWS environment) or a directory; empty: <log.dirs>/objects",
    ),
    (
        "remote.log.storage.timeout.ms",
        "30000",
        "longest one object store operation may take, retries included; longer is a failure",
    ),
    (
        "max.incremental.fetch.session.cache.slots",
        "1000",
        "incremental fetch sessions (KIP-227) kept, broker-wide; 0 turns them off",
    ),
    (
        "min.incremental.fetch.session.eviction.ms",
        "120000",
        "how long a fetch session must be unused before a new one may take its slot",
    ),
    (
        "remote.fetch.max.wait.ms",
        "500",
        "longest a fetch waits for remote data before answering without it (the read goes on)",
    ),
    (
        "remote.log.restore.enable",
        "false",
        "at startup, recreate the topics the object store holds for this cluster id but the metadata lacks",
    ),
    (
        "remote.log.manager.task.interval.ms",
        "30000",
        "how often closed segments are looked for and uploaded",
    ),
    (
        "remote.log.max.lag.ms",
        "-1",
        "upload the acknowledged tail of each active segment at least this often, so the bucket alone is a copy at most this far behind; -1 = only closed segments",
    ),
    (
        "remote.log.manager.copier.thread.pool.size",
        "2",
        "partitions uploading at once",
    ),
    (
        "remote.log.manager.copy.max.bytes.per.second",
        "-1",
        "upload bandwidth limit; -1 = unlimited",
    ),
    (
        "remote.log.chunk.bytes",
        "4194304",
        "bytes of whole batches per independently compressed chunk",
    ),
    (
        "remote.log.chunk.compression.level",
        "3",
        "zstd level of uploaded chunks",
    ),
    (
        "remote.log.chunk.cache.bytes",
        "1073741824",
        "on-disk cache of chunks read back from the object store, decompressed",
    ),
    (
        "remote.log.chunk.memory.bytes",
        "268435456",
        "decompressed chunks held in memory for remote reads (read-ahead and just read)",
    ),
    (
        "metadata.log.max.snapshot.interval.entries",
        "20000",
        "the controller snapshots its metadata image after this many log entries",
    ),
    (
        "metadata.log.max.record.bytes.between.snapshots",
        "20971520",
        "... or once the log since the last snapshot holds this many bytes",
    ),
    (
        "advertised.listeners",
        "",
        "NAME://host:port per Kafka listener, sent to its clients in Metadata (a bare host:port \
         is the first listener's); defaults to where each listener binds",
    ),
    (
        "cluster.id",
        "",
        "cluster id; generated and stored on first start when empty",
    ),
    (
        "auto.create.topics.enable",
        "true",
        "create topics on Metadata requests for unknown names",
    ),
    (
        "metrics.per.partition",
        "true",
        "/metrics has series per partition (log sizes, offsets, group and mirror lag); false keeps per-topic sums only, for clusters with many partitions",
    ),
    (
        "num.partitions",
        "1",
        "partitions of auto-created topics and of CreateTopics without a count",
    ),
    (
        "default.replication.factor",
        "1",
        "replication factor when CreateTopics gives none",
    ),
    (
        "socket.request.max.bytes",
        "104857600",
        "largest request frame accepted",
    ),
    (
        "queued.max.request.bytes",
        "536870912",
        "bytes of requests being received or queued, broker-wide; a quarter is kept for requests of at most 2 MiB",
    ),
    (
        "request.receive.timeout.ms",
        "30000",
        "a request must arrive within this long of its first byte, or the connection is closed",
    ),
    (
        "connections.max.idle.ms",
        "600000",
        "a connection with nothing received and nothing in flight for this long is closed",
    ),
    (
        "max.connections",
        "",
        "Kafka connections served at once, more wait to be accepted; empty: half the file descriptor limit",
    ),
    (
        "max.connections.per.ip",
        "2147483647",
        "Kafka connections from one address; more are closed at once",
    ),
    (
        "fetch.max.bytes",
        "57671680",
        "most bytes of records one Fetch response returns (beyond the first batch), whatever the request asks",
    ),
    (
        "log.retention.check.interval.ms",
        "300000",
        "how often retention runs",
    ),
    (
        "log.flush.scheduler.interval.ms",
        "1000",
        "how often flush.ms/flush.messages are checked",
    ),
    (
        "log.cleaner.enable",
        "true",
        "run log compaction for topics with cleanup.policy=compact",
    ),
    (
        "log.cleaner.backoff.ms",
        "15000",
        "how often the cleaner looks for logs to compact",
    ),
    (
        "log.cleaner.dedupe.buffer.size",
        "134217728",
        "memory for one compaction pass's key map; larger logs take several passes",
    ),
    (
        "group.min.session.timeout.ms",
        "6000",
        "shortest session timeout a group member may ask for",
    ),
    (
        "group.max.session.timeout.ms",
        "1800000",
        "longest session timeout a group member may ask for",
    ),
    (
        "group.initial.rebalance.delay.ms",
        "3000",
        "how long the first rebalance of an empty group waits for more members",
    ),
    (
        "group.consumer.heartbeat.interval.ms",
        "5000",
        "how often members of consumer-protocol groups (KIP-848) heartbeat",
    ),
    (
        "group.consumer.session.timeout.ms",
        "45000",
        "a consumer-protocol group member silent this long is fenced and its partitions reassigned",
    ),
    (
        "group.consumer.max.size",
        "2147483647",
        "members per consumer-protocol group",
    ),
    (
        "group.consumer.migration.policy",
        "bidirectional",
        "whether groups in use change protocol: upgrade (classic to consumer when a consumer-protocol member joins), downgrade (back when the last one leaves), bidirectional or disabled",
    ),
    (
        "group.max.size",
        "2147483647",
        "most members one group may have",
    ),
    (
        "offsets.topic.replication.factor",
        "3",
        "replicas of each __consumer_offsets partition (fewer while the cluster has fewer live brokers)",
    ),
    (
        "offsets.topic.num.partitions",
        "50",
        "partitions of __consumer_offsets (fixed once it exists)",
    ),
    (
        "offset.metadata.max.bytes",
        "4096",
        "longest metadata string of a committed offset",
    ),
    (
        "offsets.retention.minutes",
        "10080",
        "how long offsets of an empty group are kept",
    ),
    (
        "offsets.retention.check.interval.ms",
        "600000",
        "how often offsets past retention are looked for",
    ),
    (
        "transaction.state.log.num.partitions",
        "50",
        "partitions of __transaction_state (fixed once it exists)",
    ),
    (
        "transaction.state.log.replication.factor",
        "3",
        "replicas of each __transaction_state partition (fewer while the cluster has fewer live brokers)",
    ),
    (
        "transaction.state.log.min.isr",
        "2",
        "min.insync.replicas of __transaction_state (at most its replication factor)",
    ),
    (
        "transaction.max.timeout.ms",
        "900000",
        "longest transaction.timeout.ms a producer may ask for",
    ),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
        "how often transactions past their timeout are looked for and aborted",
    ),
    (
        "transaction.partition.verification.enable",
        "true",
        "a transactional batch opening its producer's transaction on a partition is written only once the coordinator confirms the partition is in that transaction (KIP-890)",
    ),
    (
        "transactional.id.expiration.ms",
        "604800000",
        "a transactional id unused for this long (with no transaction open) is forgotten",
    ),
];
