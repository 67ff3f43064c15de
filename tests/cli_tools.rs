//! Proves that the `strata` CLI's Kafka tools work as `kafka-topics.sh`, `kafka-console-*`
//! and `kafka-consumer-groups.sh` users expect, over the Kafka protocol, against `strata dev`
//! and a three-node cluster (whose admin API and console, on any node, show it whole):
//! `topic create|list|describe|alter-config|add-partitions|delete`,
//! `produce` (keys, headers, acks, every codec), `consume` (from the beginning, the end, an
//! offset or a time; `-n`; `--group`; `--format`), `groups reset-offsets|delete`; `--output
//! json` for scripts; a non-zero exit and a message naming the problem on errors. Records
//! cross between the CLI and librdkafka both ways.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::cluster::{three_nodes, wait_until};
use common::{BrokerProcess, consume_all};
use serde_json::Value;

fn strata(bootstrap: &str, args: &[&str], stdin: Option<&str>) -> Output {
    common::strata_tool(bootstrap, args, stdin.unwrap_or_default())
}

fn ok(bootstrap: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = strata(bootstrap, args, stdin);
    assert!(
        out.status.success(),
        "strata {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(bootstrap: &str, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(bootstrap, &all, None)).expect("JSON output")
}

/// The JSON a `strata` command without `--bootstrap` prints.
fn json_of(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Fails with a message containing `message`.
fn fails(bootstrap: &str, args: &[&str], message: &str) {
    let out = strata(bootstrap, args, Some(""));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "strata {args:?} succeeded");
    assert!(stderr.contains(message), "strata {args:?}: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_records_and_groups_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();

    // Topics.
    let created = ok(
        b,
        &[
            "topic",
            "create",
            "events",
            "-p",
            "3",
            "-c",
            "retention.ms=7200000",
        ],
        None,
    );
    assert!(
        created.contains("created topic events: 3 partitions"),
        "{created}"
    );
    assert!(ok(b, &["topic", "list"], None).contains("events  3"));
    let listed = json(b, &["topic", "list"]);
    assert_eq!(listed[0]["name"], "events");
    fails(b, &["topic", "create", "events"], "TOPIC_ALREADY_EXISTS");
    fails(
        b,
        &["topic", "create", "x", "-c", "novalue"],
        "'novalue' is not KEY=VALUE",
    );
    ok(
        b,
        &[
            "topic",
            "alter-config",
            "events",
            "--set",
            "retention.ms=3600000",
            "--set",
            "cleanup.policy=delete",
        ],
        None,
    );
    let described = json(b, &["topic", "describe", "events"]);
    let config = |name: &str| {
        described["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(config("retention.ms")["value"], "3600000");
    assert_eq!(config("retention.ms")["source"], "DYNAMIC_TOPIC_CONFIG");
    ok(
        b,
        &[
            "topic",
            "alter-config",
            "events",
            "--delete",
            "retention.ms",
        ],
        None,
    );
    let described = json(b, &["topic", "describe", "events"]);
    assert!(
        described["configs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "retention.ms" && c["source"] == "DEFAULT_CONFIG")
    );
    fails(
        b,
        &[
            "topic",
            "alter-config",
            "events",
            "--set",
            "retention.ms=soon",
        ],
        "INVALID_CONFIG",
    );
    ok(
        b,
        &["topic", "add-partitions", "events", "--count", "4"],
        None,
    );
    fails(
        b,
        &["topic", "add-partitions", "events", "--count", "2"],
        "INVALID_PARTITIONS",
    );
    fails(
        b,
        &["topic", "describe", "nope"],
        "UNKNOWN_TOPIC_OR_PARTITION",
    );

    // Produce: keys, headers, each codec; partitions follow the keys.
    let lines: String = (0..40)
        .map(|n| format!("key{}|value-{n}\n", n % 4))
        .collect();
    let summary: Value = serde_json::from_str(&ok(
        b,
        &[
            "--output",
            "json",
            "produce",
            "events",
            "-K",
            "|",
            "-H",
            "origin=cli",
            "--acks",
            "all",
        ],
        Some(&lines),
    ))
    .unwrap();
    assert_eq!(summary["records"], 40);
    ok(b, &["topic", "create", "codecs", "-p", "1"], None);
    for codec in ["gzip", "snappy", "lz4", "zstd", "none"] {
        let out = ok(
            b,
            &["produce", "codecs", "-p", "0", "-z", codec, "--acks", "1"],
            Some(&format!("{codec}-a\n{codec}-b\n")),
        );
        assert!(out.contains("produced 2 records to codecs"), "{out}");
    }
    fails(b, &["produce", "nope"], "UNKNOWN_TOPIC_OR_PARTITION");
    fails(
        b,
        &["produce", "events", "-z", "brotli"],
        "--compression brotli",
    );
    fails(b, &["produce", "events", "-p", "9"], "no partition 9");

    // Consume what was produced, in every way.
    let all = ok(
        b,
        &["consume", "events", "-e", "-f", "%p %k %v %h\\n"],
        None,
    );
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 40, "{all}");
    for key in 0..4 {
        let partitions: std::collections::BTreeSet<&str> = lines
            .iter()
            .filter(|l| l.contains(&format!(" key{key} ")))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(partitions.len(), 1, "one partition per key: {all}");
    }
    assert!(all.contains("value-7 origin=cli"), "{all}");
    let compressed = ok(b, &["consume", "codecs", "-e"], None);
    for codec in ["gzip", "snappy", "lz4", "zstd", "none"] {
        assert!(
            compressed.contains(&format!("{codec}-a\n{codec}-b\n")),
            "{compressed}"
        );
    }
    assert_eq!(
        ok(b, &["consume", "events", "-n", "3"], None)
            .lines()
            .count(),
        3
    );
    assert_eq!(
        ok(b, &["consume", "events", "--from", "end", "-e"], None),
        ""
    );
    let from_offset = ok(b, &["consume", "codecs", "--from", "8", "-e"], None);
    assert_eq!(from_offset, "none-a\nnone-b\n");
    let future = format!("@{}", 4_000_000_000_000u64);
    assert_eq!(
        ok(b, &["consume", "events", "--from", &future, "-e"], None),
        ""
    );
    assert_eq!(
        ok(b, &["consume", "events", "--from", "@0", "-e"], None)
            .lines()
            .count(),
        40
    );
    fails(
        b,
        &["consume", "events", "-p", "0", "--from", "999", "-e"],
        "OFFSET_OUT_OF_RANGE",
    );
    fails(
        b,
        &["consume", "events", "--from", "yesterday"],
        "--from yesterday",
    );
    let records: Vec<Value> = ok(
        b,
        &["--output", "json", "consume", "codecs", "-n", "2"],
        None,
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(records[0]["value"], "gzip-a");
    assert_eq!(records[1]["offset"], 1);

    // librdkafka reads what the CLI wrote; the CLI reads what librdkafka wrote.
    let read = consume_all(b, "events", 4, 40, Duration::from_secs(30));
    assert_eq!(read.len(), 40);
    common::link::produce_numbers(b, "events", 100..103, Some(1)).await;
    let tail = ok(
        b,
        &["consume", "events", "-p", "1", "-e", "-f", "%k=%v,"],
        None,
    );
    assert!(tail.ends_with("100=100,101=101,102=102,"), "{tail}");

    // A group: consume commits, reset-offsets moves, delete removes.
    let first = ok(b, &["consume", "codecs", "-n", "4", "--group", "cli"], None);
    assert_eq!(first.lines().count(), 4);
    let group = json(b, &["groups", "describe", "cli"]);
    assert_eq!(group["offsets"][0]["committed"], 4, "{group}");
    let next = ok(b, &["consume", "codecs", "-n", "1", "--group", "cli"], None);
    assert_eq!(next, "lz4-a\n", "a group continues where it committed");
    let dry = ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "cli",
            "--topic",
            "codecs",
            "--to-earliest",
        ],
        None,
    );
    assert!(dry.contains("dry run"), "{dry}");
    assert_eq!(
        json(b, &["groups", "describe", "cli"])["offsets"][0]["committed"],
        5
    );
    ok(
        b,
        &[
            "groups",
            "reset-offsets",
            "cli",
            "--topic",
            "codecs",
            "--partition",
            "0",
            "--shift-by",
            "-2",
            "--execute",
        ],
        None,
    );
    assert_eq!(
        json(b, &["groups", "describe", "cli"])["offsets"][0]["committed"],
        3
    );
    fails(
        b,
        &["groups", "reset-offsets", "cli", "--topic", "codecs"],
        "say where to",
    );
    assert!(ok(b, &["groups", "list"], None).contains("cli"));
    ok(b, &["groups", "delete", "cli"], None);
    fails(b, &["groups", "describe", "cli"], "does not exist");

    // --output json everywhere: settings, tiering, links, partitions.
    let settings = json_of(&["--output", "json", "config", "list"]);
    assert!(
        settings
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "node.id"),
        "{settings}"
    );
    let tiering = json_of(&[
        "--output",
        "json",
        "tiering",
        "status",
        "--admin",
        &broker.admin_addr,
    ]);
    assert!(
        tiering
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["topic"] == "events"),
        "{tiering}"
    );
    assert_eq!(
        json_of(&[
            "--output",
            "json",
            "link",
            "list",
            "--admin",
            &broker.admin_addr
        ]),
        Value::Array(Vec::new())
    );
    assert_eq!(
        json(b, &["partitions", "under-replicated"]),
        Value::Array(Vec::new())
    );

    ok(b, &["topic", "delete", "events", "codecs"], None);
    assert_eq!(json(b, &["topic", "list"]), Value::Array(Vec::new()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tools_and_the_admin_api_see_a_three_node_cluster_whole() {
    let root = tempfile::tempdir().unwrap();
    let (nodes, voters) = three_nodes(root.path(), &[]);
    let bootstrap = nodes[0].addr.as_str();
    wait_until("three brokers", Duration::from_secs(30), || {
        (common::cluster::broker_count(bootstrap) == 3).then_some(())
    });
    ok(
        bootstrap,
        &[
            "topic",
            "create",
            "replicated",
            "-p",
            "3",
            "-r",
            "3",
            "-c",
            "min.insync.replicas=2",
        ],
        None,
    );
    let lines: String = (0..30).map(|n| format!("{n}\n")).collect();
    ok(
        &nodes[1].addr,
        &["produce", "replicated", "--acks", "all"],
        Some(&lines),
    );
    let described = wait_until("every replica in sync", Duration::from_secs(30), || {
        let d = json(&nodes[2].addr, &["topic", "describe", "replicated"]);
        let synced = d["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["isr"].as_array().unwrap().len() == 3);
        synced.then_some(d)
    });
    let ends: i64 = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_i64().unwrap())
        .sum();
    assert_eq!(ends, 30);
    assert_eq!(
        ok(&nodes[2].addr, &["consume", "replicated", "-e"], None)
            .lines()
            .count(),
        30
    );
    let controller = voters.split(',').next().unwrap().split_once('@').unwrap().1;
    let quorum = json_of(&[
        "--output",
        "json",
        "cluster",
        "status",
        "--controllers",
        controller,
    ]);
    assert!(quorum["active_controller"].is_number(), "{quorum}");
    assert_eq!(
        quorum["controllers"].as_array().unwrap().len(),
        3,
        "{quorum}"
    );

    // Any node's admin API answers for the whole cluster.
    let (status, body) = common::http_get(&nodes[1].admin_addr, "/v1/cluster");
    assert_eq!(status, 200, "{body}");
    let cluster: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cluster["brokers"].as_array().unwrap().len(), 3, "{cluster}");
    assert_eq!(
        cluster["controllers"].as_array().unwrap().len(),
        3,
        "{cluster}"
    );
    assert!(cluster["active_controller"].as_i64().is_some(), "{cluster}");
    assert!(
        cluster["brokers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["admin"].is_string())
    );
    let (status, body) = common::http_get(&nodes[2].admin_addr, "/v1/topics/replicated");
    assert_eq!(status, 200, "{body}");
    let topic: Value = serde_json::from_str(&body).unwrap();
    let led: std::collections::BTreeSet<i64> = topic["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["leader"].as_i64().unwrap())
        .collect();
    assert!(
        led.len() > 1,
        "partitions are led by several brokers: {topic}"
    );

    // The console of any node shows the whole cluster.
    let profile = root.path().join("chromium");
    let url = format!("http://{}/#/", nodes[2].admin_addr);
    let (dom, log) = common::browser::chromium(&profile, &url, &["--dump-dom"]);
    assert!(
        dom.contains("3 / 3"),
        "three active brokers on the overview:\n{dom}"
    );
    let errors = common::browser::console_errors(&log);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert!(
        topic["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["local_bytes"].as_i64().unwrap() > 0)
    );
}
