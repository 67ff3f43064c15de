//! Proves that README.md cannot rot: every TOML example passes `strata config check`, the
//! three-node cluster runs from the README's own node configs (addresses moved to free ports,
//! directories to temporary ones) and `strata cluster status` answers in the shape shown, the
//! kcat walk-through, the metrics example and the command-line tools run against `strata dev`
//! with the output shown, every setting `strata config list` knows is documented, and every
//! link points into the repository.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::cluster::{free_addr, wait_until};
use common::link::{end_offset, produce_numbers};
use common::{BrokerProcess, RunningNode};

/// A fenced code block of the README.
struct Block {
    lang: String,
    lines: Vec<String>,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for line in readme().lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_owned(),
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(block), None) => block.lines.push(line.to_owned()),
            (None, None) => {}
        }
    }
    out
}

/// The block whose lines include one starting with `marker`.
fn block_with(marker: &str) -> Block {
    blocks()
        .into_iter()
        .find(|b| b.lines.iter().any(|l| l.starts_with(marker)))
        .unwrap_or_else(|| panic!("README has a block with `{marker}`"))
}

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("strata runs")
}

fn sh(line: &str) -> Output {
    Command::new("sh").args(["-c", line]).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The output a command block shows: its `# ` lines after `command`, up to the next command.
fn shown_output(block: &Block, command: &str) -> Vec<String> {
    block
        .lines
        .iter()
        .skip_while(|l| !l.starts_with(command))
        .skip(1)
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim_start().to_owned())
        .collect()
}

/// Words of a line with every number replaced, to compare lines in shape.
fn shape(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                "N".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect()
}

#[test]
fn every_toml_example_is_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let tomls: Vec<Block> = blocks().into_iter().filter(|b| b.lang == "toml").collect();
    assert!(tomls.len() >= 4, "the README's TOML examples");
    for (n, block) in tomls.iter().enumerate() {
        let path = dir.path().join(format!("example{n}.toml"));
        let mut text = block.lines.join("\n");
        // The security example names certificate files: made here, where it says they are.
        if text.contains("/etc/strata/") {
            let ca = common::certs::Ca::new(dir.path(), "clients-ca");
            let broker = ca.issue(&common::certs::Request {
                name: "broker",
                subject: &[("CN", "kafka1.example.com")],
                server: true,
                days: 30,
                serial: 1,
            });
            let tokens = dir.path().join("admin-tokens");
            std::fs::write(
                &tokens,
                strata_api::security::admin_auth::token_line(
                    "t",
                    strata_api::security::admin_auth::Role::Viewer,
                    "grafana",
                ),
            )
            .unwrap();
            text = text
                .replace("/etc/strata/admin-tokens", tokens.to_str().unwrap())
                .replace("/etc/strata/broker.pem", broker.keystore.to_str().unwrap())
                .replace("/etc/strata/clients-ca.pem", ca.pem.to_str().unwrap());
        }
        std::fs::write(&path, text).unwrap();
        let output = strata(&["config", "check", "--config", path.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "README TOML example {n} is refused:\n{}\n{}",
            block.lines.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn every_link_points_into_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = readme();
    let mut rest = text.as_str();
    let mut links = 0;
    while let Some(at) = rest.find("](") {
        let tail = &rest[at + 2..];
        let end = tail.find(')').unwrap();
        let target = &tail[..end];
        rest = &tail[end..];
        links += 1;
        if target.starts_with('#') || target.starts_with("http") {
            continue;
        }
        let path = root.join(target.split('#').next().unwrap());
        assert!(
            path.starts_with(root) && !target.contains("..") && path.exists(),
            "README links to {target}, which is not a file of the repository"
        );
    }
    assert!(links > 0, "the README's links were found");
}

#[test]
fn the_three_node_cluster_runs_from_its_readme_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes: Vec<Block> = (1..=3)
        .map(|n| block_with(&format!("# node{n}.toml")))
        .collect();
    // Every address the examples use moves to a free port, every directory to a temporary one.
    let mut ports: BTreeMap<String, String> = BTreeMap::new();
    let mut configs = Vec::new();
    for (n, block) in nodes.iter().enumerate() {
        let mut text = block.lines.join("\n");
        for word in text.clone().split(['"', ',', '@', ' ', '/']) {
            if word.starts_with("127.0.0.1:") && !ports.contains_key(word) {
                ports.insert(word.to_owned(), free_addr());
            }
        }
        for (from, to) in &ports {
            text = text.replace(from, to);
        }
        let data = tmp.path().join(format!("node{}", n + 1));
        text = text.replace(
            &format!("/var/lib/strata/node{}", n + 1),
            data.to_str().unwrap(),
        );
        let path = tmp.path().join(format!("node{}.toml", n + 1));
        std::fs::write(&path, &text).unwrap();
        configs.push(path);
    }
    // `strata run --config nodeN.toml &` for each, as the README's command line does.
    let run = block_with("strata run --config node1.toml");
    assert!(run.lines[0].contains("node2.toml") && run.lines[0].contains("node3.toml"));
    let handles: Vec<_> = configs
        .iter()
        .map(|path| {
            let path = path.clone();
            std::thread::spawn(move || {
                let log = path.with_extension("log");
                RunningNode::start(&["run", "--config", path.to_str().unwrap()], &log)
            })
        })
        .collect();
    let running: Vec<RunningNode> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Each node's admin API is up, on its own port.
    for node in &running {
        assert!(!node.admin.is_empty());
    }
    let mut admins: Vec<&str> = running.iter().map(|n| n.admin.as_str()).collect();
    admins.dedup();
    assert_eq!(admins.len(), 3);

    let command = run
        .lines
        .iter()
        .find(|l| l.starts_with("strata cluster status"))
        .unwrap();
    let mut moved = command.clone();
    for (from, to) in &ports {
        moved = moved.replace(from, to);
    }
    let args: Vec<&str> = moved.split_whitespace().skip(1).collect();
    let shown = shown_output(&run, "strata cluster status");
    let status = wait_until("three voters and brokers", Duration::from_secs(30), || {
        let output = strata(&args);
        let text = stdout(&output);
        (output.status.success() && text.lines().filter(|l| l.contains("active")).count() >= 4)
            .then_some(text)
    });
    let got: Vec<&str> = status.lines().collect();
    assert_eq!(
        got.len(),
        shown.len(),
        "status:\n{status}\nREADME:\n{shown:#?}"
    );
    for (got, shown) in got.iter().zip(&shown) {
        let (got, shown) = (shape(got), shape(shown));
        // Which voter leads varies: the roles column is compared as a set below.
        let roles = ["leader", "follower"];
        let normalize = |words: Vec<String>| -> Vec<String> {
            words
                .into_iter()
                .map(|w| {
                    if roles.contains(&w.as_str()) {
                        "ROLE".into()
                    } else {
                        w
                    }
                })
                .collect()
        };
        assert_eq!(normalize(got), normalize(shown), "status:\n{status}");
    }
    assert_eq!(status.matches(" leader ").count(), 1, "{status}");

    // The replication walk-through: `kill %1` stops the leader of the topic (the hardest case
    // of "any one node") with a clean shutdown, as `kill` sends SIGTERM.
    let mut running = running;
    let walkthrough = block_with("printf 'o1:paid");
    let kafka: Vec<String> = running.iter().map(|n| n.addr.clone()).collect();
    for line in walkthrough.lines.iter().filter(|l| !l.starts_with('#')) {
        if line == "kill %1" {
            let leader = wait_until("the topic's leader", Duration::from_secs(10), || {
                leader_of(&kafka.join(","), "orders")
            });
            let node = running
                .iter()
                .position(|n| leader_addr_is(&kafka, leader, &n.addr))
                .expect("the leader is one of the nodes");
            let stopped = running.remove(node);
            let status = Command::new("kill")
                .arg(stopped.pid().to_string())
                .status()
                .unwrap();
            assert!(status.success());
            drop(stopped);
            continue;
        }
        let mut command = line.clone();
        for (from, to) in &ports {
            command = command.replace(from, to);
        }
        let output = sh(&command);
        assert!(
            output.status.success(),
            "`{line}` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let shown = shown_output(&walkthrough, line);
        if !shown.is_empty() {
            let got: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
            assert_eq!(got, shown, "`{line}`");
        }
    }
    drop(running);
}

/// The node id leading partition 0 of `topic`, from Metadata.
fn leader_of(bootstrap: &str, topic: &str) -> Option<i32> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = common::client(bootstrap).create().ok()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let leader = metadata.topics().first()?.partitions().first()?.leader();
    (leader > 0).then_some(leader)
}

/// Whether broker `id` (node `id` of the README's configs, in order) listens on `addr`.
fn leader_addr_is(kafka: &[String], id: i32, addr: &str) -> bool {
    kafka.get(id as usize - 1).is_some_and(|a| a == addr)
}

#[test]
fn the_kcat_walkthrough_prints_what_it_shows() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        None,
        &["group.initial.rebalance.delay.ms=0"],
    );
    let walkthrough = block_with("cargo run --release -- dev &");
    let groups = block_with("kcat -b 127.0.0.1:9092 -G readers");
    let metrics = block_with("curl -s 127.0.0.1:9644/metrics |");
    let tools = block_with("strata topic create payments");
    for block in [&walkthrough, &groups, &metrics, &tools] {
        for line in block.lines.iter().filter(|l| !l.starts_with('#')) {
            if line.starts_with("cargo run") {
                continue; // the broker the test started
            }
            let command = line
                .replace("127.0.0.1:9092", &broker.addr)
                .replace("127.0.0.1:9644", &broker.admin_addr);
            let command = format!("export STRATA_BOOTSTRAP={}; {command}", broker.addr)
                .replace("strata ", &format!("{} ", env!("CARGO_BIN_EXE_strata")));
            let output = sh(&command);
            assert!(
                output.status.success(),
                "`{line}` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let shown = shown_output(block, line);
            if shown.is_empty() {
                continue;
            }
            let got: Vec<Vec<String>> = stdout(&output)
                .lines()
                .map(|l| l.split_whitespace().map(str::to_owned).collect())
                .collect();
            let shown: Vec<Vec<String>> = shown
                .iter()
                .map(|l| l.split_whitespace().map(str::to_owned).collect())
                .collect();
            assert_eq!(got, shown, "`{line}` printed other than the README shows");
        }
    }
}

#[test]
fn every_setting_is_documented() {
    let output = strata(&["config", "list"]);
    assert!(output.status.success());
    let text = readme();
    let listed = stdout(&output);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() > 60, "{listed}");
    let missing: Vec<&&str> = names
        .iter()
        .filter(|name| !text.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "settings the README does not document: {missing:?}"
    );
}

/// The lines of the runbook's step `n` (those after `# n.` up to the next step).
fn runbook_step(block: &Block, n: u32) -> Vec<String> {
    block
        .lines
        .iter()
        .skip_while(|l| !l.starts_with(&format!("# {n}.")))
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disaster_recovery_runbook_runs_as_written() {
    let root = tempfile::tempdir().unwrap();
    let mut east = BrokerProcess::start(&root.path().join("east"), &[]);
    let west = BrokerProcess::start(&root.path().join("west"), &[]);
    let runbook = block_with("strata link create dr");
    let run_step = |n: u32, east: &BrokerProcess| -> String {
        let mut out = String::new();
        for line in runbook_step(&runbook, n) {
            let output = Command::new("sh")
                .args(["-c", &line])
                .env("EAST", &east.addr)
                .env("WEST", &west.addr)
                .env("EAST_ADMIN", &east.admin_addr)
                .env("WEST_ADMIN", &west.admin_addr)
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        Path::new(env!("CARGO_BIN_EXE_strata"))
                            .parent()
                            .unwrap()
                            .display(),
                        std::env::var("PATH").unwrap_or_default()
                    ),
                )
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "step {n}: `{line}` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            out.push_str(&stdout(&output));
        }
        out
    };
    common::create_topic(&east.addr, "orders", 1, &[]).await;
    produce_numbers(&east.addr, "orders", 0..500, None).await;

    run_step(1, &east);
    wait_until("west caught up", Duration::from_secs(30), || {
        (end_offset(&west.addr, "orders", 0)? == 500).then_some(())
    });
    let status = run_step(2, &east);
    assert!(status.contains("0 records behind"), "{status}");

    east.kill();
    let failed_over = run_step(3, &east);
    assert!(failed_over.contains("orders: writable"), "{failed_over}");
    produce_numbers(&west.addr, "orders", 500..600, None).await;

    east.restart("127.0.0.1:0");
    run_step(4, &east);
    wait_until("east follows west", Duration::from_secs(30), || {
        (end_offset(&east.addr, "orders", 0)? == 600).then_some(())
    });

    let reversed = run_step(5, &east);
    assert!(reversed.contains("writable here"), "{reversed}");
    produce_numbers(&east.addr, "orders", 600..700, None).await;
    wait_until("west follows east again", Duration::from_secs(30), || {
        (end_offset(&west.addr, "orders", 0)? == 700).then_some(())
    });
}
