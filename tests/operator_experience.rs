//! Proves that Strata tells an operator the truth in plain words. The cluster CLI: `strata
//! cluster status` finds the whole quorum from one address, shows a dead voter as unreachable
//! in a narrow table and fails without an active controller; adding and removing voters answer
//! with a sentence (and a warning for an even count); a removed voter stops and says what to
//! do; no CLI error carries a backtrace. The log: no colours when not on a terminal, no ERROR
//! on a normal start, stop and restart, no dumps, openraft quiet, and JSON on request.
//! `/v1/health` reports each check of the node's real state (a store that stops answering, a
//! quorum without a majority) and `/v1/ready` whether it serves Kafka clients. Startup errors
//! name their cause: the path that cannot be written, the credentials that are missing.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use common::cluster::{free_addr, wait_until};
use common::controller::ControllerProcess;

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("strata runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The row of `id` in the status table.
fn row(status: &str, id: u64) -> Option<&str> {
    status
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
}

#[test]
fn the_cluster_cli_speaks_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = (0..4).map(|_| free_addr()).collect();
    let voters = (0..3)
        .map(|n| format!("{}@{}", n + 1, addrs[n]))
        .collect::<Vec<_>>()
        .join(",");
    let mut controllers: Vec<Option<ControllerProcess>> = (0..3)
        .map(|n| {
            Some(ControllerProcess::start(
                n as u64 + 1,
                &addrs[n],
                tmp.path(),
                &voters,
                &[],
            ))
        })
        .collect();
    let mut joining = ControllerProcess::start(4, &addrs[3], tmp.path(), &voters, &["--join"]);

    // One address is enough to find the whole quorum and its leader.
    let status = wait_until("an active controller", Duration::from_secs(20), || {
        let output = strata(&["cluster", "status", "--controllers", &addrs[0]]);
        output.status.success().then(|| text(&output).0)
    });
    for id in 1..=3 {
        assert!(row(&status, id).is_some(), "voter {id} listed:\n{status}");
    }
    let leader: u64 = status["active controller: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // Adding a voter answers with a sentence, and warns that four voters are no better than
    // three.
    let added = strata(&[
        "cluster",
        "add-voter",
        "--controllers",
        &addrs[0],
        "--id",
        "4",
        "--addr",
        &addrs[3],
    ]);
    let (out, err) = text(&added);
    assert!(added.status.success(), "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "controller 4 ({}) is a voter now; the quorum has 4 voters (1, 2, 3, 4).",
            addrs[3]
        )),
        "{out}"
    );
    assert!(
        out.contains("warning: 4 voters tolerate no more failures than 3"),
        "{out}"
    );
    assert!(!out.contains('{'), "no debug output: {out}");

    // Removing it: a sentence, and the removed voter stops by itself, saying what to do.
    let removed = strata(&[
        "cluster",
        "remove-voter",
        "--controllers",
        &addrs[1],
        "--id",
        "4",
    ]);
    let (out, err) = text(&removed);
    assert!(removed.status.success(), "{out}{err}");
    assert!(
        out.starts_with("controller 4 is no longer a voter and has stopped taking part; the quorum has 3 voters (1, 2, 3)."),
        "{out}"
    );
    let exit = joining.wait_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "the removed voter stopped: {exit:?}\n{}",
        joining.log()
    );
    assert!(
        joining.log().contains("removed from the metadata quorum"),
        "{}",
        joining.log()
    );

    // A dead voter is shown as unreachable, not as a voter with no lag; the table stays narrow.
    let victim = (1..=3u64).find(|id| *id != leader).unwrap();
    controllers[victim as usize - 1].take().unwrap().kill();
    let asked = addrs[leader as usize - 1].clone();
    let output = strata(&["cluster", "status", "--controllers", &asked]);
    let (out, err) = text(&output);
    assert!(output.status.success(), "{out}{err}");
    let dead = row(&out, victim).unwrap_or_else(|| panic!("voter {victim} listed:\n{out}"));
    assert!(dead.contains("unreachable"), "{out}");
    let widest = out.lines().map(str::len).max().unwrap_or(0);
    assert!(widest <= 100, "a {widest}-column line:\n{out}");

    // Without a majority there is no active controller: the status says so and fails.
    let second = (1..=3u64)
        .find(|id| *id != leader && *id != victim)
        .unwrap();
    controllers[second as usize - 1].take().unwrap().kill();
    let output = wait_until("the leader to step down", Duration::from_secs(20), || {
        let output = strata(&["cluster", "status", "--controllers", &asked]);
        (!output.status.success()).then_some(output)
    });
    let (out, err) = text(&output);
    assert!(out.contains("active controller: none"), "{out}");
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(err.starts_with("error: no active controller"), "{err}");

    // A CLI error is one line, never a backtrace, even with RUST_BACKTRACE=1.
    let closed = free_addr();
    let output = strata(&["tiering", "--admin", &closed, "status"]);
    let (_, err) = text(&output);
    assert!(!output.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("backtrace"), "{err}");
    drop(controllers);
}

/// Starts `strata dev` on a new directory with `args`, stops it with SIGTERM, starts it
/// again, stops it: returns the two logs.
fn two_runs(data: &std::path::Path, args: &[&str]) -> String {
    let mut log = String::new();
    for _ in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "dev",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        use std::io::BufRead;
        let listening = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.starts_with("strata listening on"));
        assert!(listening, "strata dev started");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "a clean stop exits 0");
        log.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    log
}

#[test]
fn the_log_is_plain_quiet_and_machine_readable_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let log = two_runs(&tmp.path().join("text"), &[]);
    assert!(
        !log.contains('\x1b'),
        "ANSI colours in a log that is not a terminal:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.contains("ERROR"),
            "an ERROR on a normal start and stop: {line}"
        );
        assert!(
            !line.contains("WARN"),
            "a WARN on a normal start and stop: {line}"
        );
        assert!(line.len() < 400, "a {}-byte line: {line}", line.len());
        assert!(
            !line.contains(" openraft"),
            "openraft's internals at INFO: {line}"
        );
        assert!(
            !line.contains("unclean"),
            "a new or cleanly stopped directory: {line}"
        );
        assert!(!line.contains("(\""), "Debug formatting: {line}");
    }
    let log = two_runs(&tmp.path().join("json"), &["--log-format", "json"]);
    let mut lines = 0;
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
        lines += 1;
    }
    assert!(lines > 5, "{log}");
}

/// The `/v1/health` answer: HTTP status, and each check as (ok, detail).
fn health(admin: &str) -> (u16, BTreeMap<String, (bool, String)>) {
    let (status, body) = common::http_get(admin, "/v1/health");
    let value: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let checks = value["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("checks in {body}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                (
                    c["ok"].as_bool().unwrap(),
                    c["detail"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    (status, checks)
}

#[test]
fn health_reports_the_real_state_of_the_node() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let server = runtime.block_on(strata_tiering::testing::start(
        &tmp.path().join("s3"),
        "health",
    ));
    let broker = common::BrokerProcess::start_env(
        &tmp.path().join("data"),
        &["remote.log.storage.url=s3://health/node"],
        &common::s3_env(&server),
    );
    // Healthy: every check passes, and the broker is ready.
    let (status, checks) = wait_until("a healthy node", Duration::from_secs(20), || {
        let (status, checks) = health(&broker.admin_addr);
        (status == 200).then_some((status, checks))
    });
    assert_eq!(status, 200);
    for name in [
        "controller",
        "metadata_quorum",
        "broker",
        "log_dir",
        "object_store",
    ] {
        assert!(checks[name].0, "{name}: {checks:?}");
    }
    assert_eq!(common::http_get(&broker.admin_addr, "/v1/ready").0, 200);
    // The object store stops answering: health fails naming it; Kafka clients are still served.
    server
        .refusing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let checks = wait_until(
        "the store failure in health",
        Duration::from_secs(30),
        || {
            let (status, checks) = health(&broker.admin_addr);
            (status == 503).then_some(checks)
        },
    );
    assert!(!checks["object_store"].0, "{checks:?}");
    assert!(checks["broker"].0 && checks["log_dir"].0, "{checks:?}");
    assert_eq!(common::http_get(&broker.admin_addr, "/v1/ready").0, 200);
    server
        .refusing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    wait_until("recovery", Duration::from_secs(30), || {
        (health(&broker.admin_addr).0 == 200).then_some(())
    });
    drop(broker);

    // A node of a cluster that lost its majority: the quorum and the broker checks fail, and
    // the broker is no longer ready.
    let (mut nodes, _) = common::cluster::three_nodes(&tmp.path().join("cluster"), &[]);
    let admin = nodes[0].admin_addr.clone();
    wait_until("a healthy cluster node", Duration::from_secs(20), || {
        (health(&admin).0 == 200).then_some(())
    });
    nodes[1].kill();
    nodes[2].kill();
    let checks = wait_until(
        "the lost majority in health",
        Duration::from_secs(30),
        || {
            let (status, checks) = health(&admin);
            (status == 503 && !checks["broker"].0 && !checks["metadata_quorum"].0).then_some(checks)
        },
    );
    assert!(
        checks["controller"].0,
        "its own raft core still runs: {checks:?}"
    );
    let (status, body) = common::http_get(&admin, "/v1/ready");
    assert_eq!(status, 503, "{body}");
}

/// Runs `strata dev` with `args` and `env` until it exits (within 20 s): its stderr.
fn failed_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .arg("dev")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn");
    for name in strata_tiering::store::AWS_CREDENTIAL_SOURCES {
        command.env_remove(name);
    }
    let mut child = command
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "strata {args:?} kept running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn startup_errors_name_their_cause() {
    let tmp = tempfile::tempdir().unwrap();
    // The controller's storage cannot be created: the error names the path, and its cause once.
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("__cluster_metadata"), b"not a directory").unwrap();
    let stderr = failed_start(&["--data-dir", data.to_str().unwrap()], &[]);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("error: "), "{stderr}");
    assert!(
        line.contains("__cluster_metadata"),
        "names the path: {line}"
    );
    let cause = "Not a directory";
    assert_eq!(line.matches(cause).count(), 1, "the cause once: {line}");

    // A listener's port in use stops the node before it joins the quorum (no voter that
    // then dies), naming the listener and the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let early = tmp.path().join("early");
    let stderr = failed_start(
        &[
            "--data-dir",
            early.to_str().unwrap(),
            "--set",
            &format!("listeners=PLAINTEXT://127.0.0.1:0,ADMIN://{taken_addr}"),
        ],
        &[],
    );
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains("cannot bind the admin listener") && line.contains(&taken_addr),
        "{line}"
    );
    assert!(
        !early.join("__cluster_metadata").exists(),
        "the controller started before every listener was bound"
    );
    drop(taken);

    // An S3 bucket without credentials: says none were found and where they are looked for.
    let closed = common::cluster::free_addr();
    let stderr = failed_start(
        &[
            "--data-dir",
            tmp.path().join("s3").to_str().unwrap(),
            "--set",
            "remote.log.storage.url=s3://some-bucket/strata",
            "--set",
            "remote.log.storage.timeout.ms=5000",
        ],
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_METADATA_ENDPOINT", &format!("http://{closed}")),
        ],
    );
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.contains("no AWS credentials were found"), "{line}");
    assert!(
        line.contains("AWS_ACCESS_KEY_ID") && line.contains("instance metadata"),
        "{line}"
    );
}
