//! Clusters of combined nodes (broker + controller voter each) on loopback, for tests.

use std::path::Path;
use std::time::{Duration, Instant};

use super::BrokerProcess;

/// A free loopback address (bound and released: the controller listener binds it next).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Controller addresses for `n` voters and their `controller.quorum.voters` value.
pub fn voters(n: usize) -> (Vec<String>, String) {
    let controllers: Vec<String> = (0..n).map(|_| free_addr()).collect();
    let voters = controllers
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}@{a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    (controllers, voters)
}

/// The settings every node of a test cluster shares: its id, its listeners, the voters, and
/// timings short enough for tests.
pub fn node_settings(id: u64, controller: &str, voters: &str) -> Vec<String> {
    vec![
        format!("node.id={id}"),
        format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://{controller}"),
        format!("controller.quorum.voters={voters}"),
        "broker.session.timeout.ms=2000".into(),
        "broker.heartbeat.interval.ms=300".into(),
        "group.initial.rebalance.delay.ms=0".into(),
        "offsets.topic.num.partitions=3".into(),
    ]
}

/// Starts nodes `dirs[i]` with `settings[i]` at once (each waits for the quorum the others
/// complete).
pub fn start_nodes(
    dirs: Vec<std::path::PathBuf>,
    settings: Vec<Vec<String>>,
) -> Vec<BrokerProcess> {
    start_nodes_env(dirs, settings, &[])
}

/// [`start_nodes`] with environment variables for every node.
pub fn start_nodes_env(
    dirs: Vec<std::path::PathBuf>,
    settings: Vec<Vec<String>>,
    env: &[(String, String)],
) -> Vec<BrokerProcess> {
    let handles: Vec<_> = dirs
        .into_iter()
        .zip(settings)
        .map(|(dir, settings)| {
            let env = env.to_vec();
            std::thread::spawn(move || {
                let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
                BrokerProcess::start_env(&dir, &settings, &env)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Three combined nodes under `root` (`node1`..`node3`), with `extra` settings each; also
/// returns their `controller.quorum.voters`.
pub fn three_nodes(root: &Path, extra: &[String]) -> (Vec<BrokerProcess>, String) {
    three_nodes_env(root, extra, &[])
}

/// [`three_nodes`] with environment variables for every node.
pub fn three_nodes_env(
    root: &Path,
    extra: &[String],
    env: &[(String, String)],
) -> (Vec<BrokerProcess>, String) {
    std::fs::create_dir_all(root).unwrap();
    let (controllers, voters) = voters(3);
    let dirs = (1..=3).map(|n| root.join(format!("node{n}"))).collect();
    let settings = (0..3)
        .map(|n| {
            let mut s = node_settings(n as u64 + 1, &controllers[n], &voters);
            s.extend(extra.iter().cloned());
            s
        })
        .collect();
    (start_nodes_env(dirs, settings, env), voters)
}

/// Polls `check` every 100 ms until it gives a value; panics after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU seconds (user + system) a process of ours has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let per_second = nix_ticks_per_second();
    ticks / per_second
}

fn nix_ticks_per_second() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on; `getconf` confirms it.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// How many live brokers Metadata lists.
#[allow(dead_code)]
pub fn broker_count(bootstrap: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = super::client(bootstrap).create().unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .map_or(0, |m| m.brokers().len())
}

/// The bytes of partition 0 of `topic` on `node`: its segment files in order, concatenated
/// (roll points may differ between replicas; the batches may not). Empty without the replica.
#[allow(dead_code)]
pub fn log_bytes(node: &BrokerProcess, topic: &str) -> Vec<u8> {
    let dir = node.data_dir.join(format!("{topic}-0"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "log"));
    files.sort();
    files
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}
