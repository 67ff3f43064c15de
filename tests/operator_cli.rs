//! Proves that the cluster CLI tells an operator the truth in plain words: `strata cluster
//! status` finds the whole quorum from one address, shows a dead voter as unreachable in a
//! narrow table and fails without an active controller; adding and removing voters answer with
//! a sentence (and a warning for an even count); a removed voter stops and says what to do;
//! no CLI error carries a backtrace.

mod common;

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
