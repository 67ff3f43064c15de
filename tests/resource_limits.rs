//! Proves that no single client or peer can take a node down or make it spin: a voter that is
//! down costs the active controller almost nothing.

mod common;

use std::time::Duration;

use common::cluster::{self, cpu_seconds, wait_until};

/// The node whose controller is active, as `strata cluster status` reports it.
fn active_controller(controllers: &str) -> Option<u64> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["cluster", "status", "--controllers", controllers])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("active controller: "))?;
    line["active controller: ".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_down_voter_costs_the_active_controller_almost_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut nodes, voters) = cluster::three_nodes(tmp.path(), &[]);
    let controllers: Vec<&str> = voters
        .split(',')
        .map(|v| v.split_once('@').unwrap().1)
        .collect();
    let all = controllers.join(",");
    let active = wait_until("an active controller", Duration::from_secs(20), || {
        active_controller(&all)
    });
    // kill -9 a voter that is not the active controller.
    let victim = (1..=3).find(|id| *id != active).unwrap();
    nodes[victim as usize - 1].kill();
    let leader = &nodes[active as usize - 1];
    // Let the failure be noticed and any retry loop settle into its steady state, then measure.
    std::thread::sleep(Duration::from_secs(10));
    let (cpu_before, log_before) = (cpu_seconds(leader.pid()), leader.log().len());
    let window = Duration::from_secs(20);
    std::thread::sleep(window);
    let cpu = cpu_seconds(leader.pid()) - cpu_before;
    let logged = leader.log().len() - log_before;
    let share = cpu / window.as_secs_f64();
    eprintln!("active controller with a voter down: {share:.3} of a core, {logged} bytes of log");
    assert!(
        share < 0.10,
        "the active controller used {share:.2} of a core with one voter down"
    );
    assert!(
        logged < 100_000,
        "the active controller wrote {logged} bytes of log in {window:?}; tail:\n{}",
        &leader.log()[leader.log().len().saturating_sub(3000)..]
    );
    // The quorum still commits (two of three voters).
    assert_eq!(active_controller(&all), Some(active));
}
