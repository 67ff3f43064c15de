//! Starts and stops the `strata` nodes a run measures (one `strata dev`, or a cluster of
//! combined nodes on loopback), and reads their CPU time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::workload::Phase;

/// How long the broker may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `strata dev` process owned by the bench.
pub struct Broker {
    child: Child,
    /// Its Kafka listener.
    pub addr: String,
    /// Its admin HTTP API.
    pub admin: String,
    /// Each Kafka listener's address, by name.
    pub listeners: std::collections::BTreeMap<String, String>,
}

impl Broker {
    /// Starts `strata dev` on `data_dir` with an ephemeral port.
    pub fn start(binary: Option<PathBuf>, data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, data_dir, &[])
    }

    /// Starts a cluster of `nodes` combined nodes (broker and controller voter each) under
    /// `root`, with `settings` (`key=value`) on every node; all on this machine's one disk.
    pub fn start_cluster(
        binary: Option<PathBuf>,
        root: &Path,
        nodes: usize,
        settings: &[String],
    ) -> anyhow::Result<Vec<Self>> {
        // Controller ports are picked free and bound by the nodes a moment later; another
        // socket may take one in between, so a failed start is tried again on new ports.
        let mut last = None;
        for attempt in 1..=3 {
            let dir = root.join(format!("attempt{attempt}"));
            match Self::try_start_cluster(binary.clone(), &dir, nodes, settings) {
                Ok(started) => return Ok(started),
                Err(e) => {
                    eprintln!("starting the cluster failed ({e:#}); trying again");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("three attempts"))
    }

    fn try_start_cluster(
        binary: Option<PathBuf>,
        root: &Path,
        nodes: usize,
        settings: &[String],
    ) -> anyhow::Result<Vec<Self>> {
        let controllers: Vec<String> = (0..nodes)
            .map(|_| {
                let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                Ok(listener.local_addr()?.to_string())
            })
            .collect::<anyhow::Result<_>>()?;
        let voters = controllers
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}@{a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let starts: Vec<_> = controllers
            .iter()
            .enumerate()
            .map(|(i, controller)| {
                let mut args = vec![
                    format!("node.id={}", i + 1),
                    format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://{controller}"),
                    format!("controller.quorum.voters={voters}"),
                ];
                args.extend(settings.iter().cloned());
                let (binary, dir) = (binary.clone(), root.join(format!("node{}", i + 1)));
                std::thread::spawn(move || Self::start_with(binary, &dir, &args))
            })
            .collect();
        starts
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("starting a node panicked"))?
            })
            .collect()
    }

    /// The `strata` binary: `binary`, or the one beside this program.
    pub fn binary(binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
        let binary = match binary {
            Some(path) => path,
            None => std::env::current_exe()?.with_file_name("strata"),
        };
        if !binary.exists() {
            bail!(
                "no strata binary at {}: build it with `cargo build --release --bin strata`, or pass --strata or --bootstrap",
                binary.display()
            );
        }
        Ok(binary)
    }

    /// Starts `strata dev` on `data_dir` with an ephemeral port and `settings` (`key=value`).
    pub fn start_with(
        binary: Option<PathBuf>,
        data_dir: &Path,
        settings: &[String],
    ) -> anyhow::Result<Self> {
        let binary = Self::binary(binary)?;
        let mut child = Command::new(&binary)
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(settings.iter().flat_map(|s| ["--set", s.as_str()]))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("broker stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut admin = String::new();
            let mut listeners = std::collections::BTreeMap::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The admin line comes first, then one per listener.
                if let Some(addr) = line.strip_prefix("strata admin listening on ") {
                    admin = addr.to_owned();
                }
                // `strata listener NAME (PROTOCOL) on host:port`
                if let Some((name, addr)) = line
                    .strip_prefix("strata listener ")
                    .and_then(|rest| rest.split_once(" ("))
                    .and_then(|(name, rest)| Some((name, rest.split_once(") on ")?.1)))
                {
                    listeners.insert(name.to_owned(), addr.to_owned());
                }
                if let Some(addr) = line.strip_prefix("strata listening on ") {
                    let _ = tx.send((addr.to_owned(), admin.clone(), listeners.clone()));
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((addr, admin, listeners)) => Ok(Self {
                child,
                addr,
                admin,
                listeners,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("strata did not start listening within {START_TIMEOUT:?}")
            }
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("strata exited with {status}");
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User plus system CPU seconds of a process (`self` for this one), from /proc.
fn process_cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100) as f64;
    Ok(ticks / per_second)
}

/// CPU seconds used so far by the brokers (if the bench runs them) and by this process.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    broker: Option<f64>,
    client: f64,
}

/// Samples the CPU time of both sides of a workload.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    broker_pids: Vec<u32>,
}

impl CpuMeter {
    /// Meters `brokers` (those the bench started; none otherwise), summed, and this process,
    /// where librdkafka runs.
    pub fn new(brokers: &[Broker]) -> Self {
        Self {
            broker_pids: brokers.iter().map(|b| b.child.id()).collect(),
        }
    }

    /// CPU seconds of each side so far.
    pub fn sample(&self) -> anyhow::Result<CpuSample> {
        let broker = if self.broker_pids.is_empty() {
            None
        } else {
            let mut sum = 0.0;
            for pid in &self.broker_pids {
                sum += process_cpu_seconds(&pid.to_string())?;
            }
            Some(sum)
        };
        Ok(CpuSample {
            broker,
            client: process_cpu_seconds("self")?,
        })
    }

    /// The phase that began (in wall-clock time) at `started` and (in CPU time) at `before`.
    pub fn phase(&self, started: Instant, before: CpuSample) -> anyhow::Result<Phase> {
        let secs = started.elapsed().as_secs_f64();
        let now = self.sample()?;
        Ok(Phase {
            secs,
            broker_cpu: now.broker.zip(before.broker).map(|(n, b)| n - b),
            client_cpu: now.client - before.client,
        })
    }
}
