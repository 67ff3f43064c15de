//! The node's health, as `/v1/health` and `/v1/ready` report it.
//!
//! Checks come from what the node does anyway (heartbeats to the active controller, the
//! controller's raft metrics) and from probes a background task runs every
//! [`PROBE_INTERVAL`]: a small file written and fsynced in the data directory, and a HEAD of
//! the object store. A probe that has not reported within [`STALE_AFTER`] counts as failing:
//! a probe stuck on a hung disk or store is itself the news.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use strata_api::admin::{Check, Health, Readiness};
use strata_controller::raft::ControllerProbe;

/// How often the log directory and the object store are probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// A probe whose last report is older than this counts as failing.
pub const STALE_AFTER: Duration = Duration::from_secs(45);
/// Longest one object store probe may take.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The file the log directory probe writes (and removes).
const PROBE_FILE: &str = ".health-probe";

/// The outcome of a check, and when it was made.
#[derive(Debug, Clone)]
struct Outcome {
    result: Result<String, String>,
    at: Instant,
}

/// What the broker's heartbeats last told.
#[derive(Debug, Clone)]
struct Heartbeats {
    /// The last answered heartbeat, and whether it left the broker fenced.
    answered: Option<(Instant, bool)>,
    /// The last failure, if after the last answer.
    failure: Option<String>,
}

/// The health state of one node.
#[derive(Debug)]
pub struct NodeHealth {
    joined: AtomicBool,
    stopping: AtomicBool,
    heartbeats: Mutex<Heartbeats>,
    log_dir: Mutex<Option<Outcome>>,
    object_store: Mutex<Option<Outcome>>,
    controller: OnceLock<ControllerProbe>,
}

impl Default for NodeHealth {
    fn default() -> Self {
        Self {
            joined: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            heartbeats: Mutex::new(Heartbeats {
                answered: None,
                failure: None,
            }),
            log_dir: Mutex::new(None),
            object_store: Mutex::new(None),
            controller: OnceLock::new(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn check(name: &str, result: Result<String, String>) -> Check {
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    Check {
        name: name.to_owned(),
        ok,
        detail,
    }
}

impl NodeHealth {
    /// The node's controller, if it has that role.
    pub fn controller(&self) -> Option<&ControllerProbe> {
        self.controller.get()
    }

    /// The controller of this node, for nodes with that role.
    pub fn set_controller(&self, probe: ControllerProbe) {
        let _ = self.controller.set(probe);
    }

    /// The broker has joined the cluster and serves.
    pub fn set_joined(&self) {
        self.joined.store(true, Ordering::Release);
    }

    /// Shutdown began: no longer ready.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// A heartbeat was answered.
    pub fn heartbeat_answered(&self, fenced: bool) {
        let mut beats = lock(&self.heartbeats);
        beats.answered = Some((Instant::now(), fenced));
        beats.failure = None;
    }

    /// A heartbeat failed.
    pub fn heartbeat_failed(&self, error: String) {
        lock(&self.heartbeats).failure = Some(error);
    }

    /// Records a log directory probe.
    pub fn log_dir_probed(&self, result: Result<String, String>) {
        *lock(&self.log_dir) = Some(Outcome {
            result,
            at: Instant::now(),
        });
    }

    /// Records an object store probe.
    pub fn object_store_probed(&self, result: Result<String, String>) {
        *lock(&self.object_store) = Some(Outcome {
            result,
            at: Instant::now(),
        });
    }

    fn probed(outcome: &Mutex<Option<Outcome>>, what: &str) -> Result<String, String> {
        match &*lock(outcome) {
            None => Err(format!("{what} not probed yet")),
            Some(o) if o.at.elapsed() > STALE_AFTER => Err(format!(
                "the last {what} probe reported {:.0} s ago: the probe is stuck",
                o.at.elapsed().as_secs_f64()
            )),
            Some(o) => o.result.clone(),
        }
    }

    fn broker(&self, session_timeout: Duration) -> Result<String, String> {
        if !self.joined.load(Ordering::Acquire) {
            return Err("joining the cluster".into());
        }
        let beats = lock(&self.heartbeats).clone();
        match (beats.answered, beats.failure) {
            (Some((at, _)), failure) if at.elapsed() > session_timeout => Err(format!(
                "no heartbeat answered by the active controller for {:.1} s{}",
                at.elapsed().as_secs_f64(),
                failure.map_or(String::new(), |f| format!(": {f}"))
            )),
            (Some((_, true)), _) => Err("fenced by the active controller".into()),
            (Some((at, false)), _) => Ok(format!(
                "registered and unfenced; last heartbeat answered {} ms ago",
                at.elapsed().as_millis()
            )),
            (None, failure) => Err(failure.unwrap_or_else(|| "no heartbeat answered yet".into())),
        }
    }

    /// The node's checks. `session_timeout` is `broker.session.timeout.ms`; `tiered` whether
    /// the node has an object store.
    pub fn report(&self, node_id: i32, session_timeout: Duration, tiered: bool) -> Health {
        let mut checks = Vec::new();
        if let Some(controller) = self.controller.get() {
            checks.push(check("controller", controller.core()));
            checks.push(check("metadata_quorum", controller.quorum()));
        }
        checks.push(check("broker", self.broker(session_timeout)));
        checks.push(check(
            "log_dir",
            Self::probed(&self.log_dir, "log directory"),
        ));
        if tiered {
            checks.push(check(
                "object_store",
                Self::probed(&self.object_store, "object store"),
            ));
        }
        Health::of(node_id, checks)
    }

    /// Whether the broker serves Kafka clients.
    pub fn readiness(&self, session_timeout: Duration, listener: &str) -> Readiness {
        let (ready, detail) = if self.stopping.load(Ordering::Acquire) {
            (false, "shutting down".to_owned())
        } else {
            match self.broker(session_timeout) {
                Ok(_) => (true, format!("serving Kafka clients on {listener}")),
                Err(why) => (false, why),
            }
        };
        Readiness { ready, detail }
    }
}

/// Writes, fsyncs and removes a small file in `dir`: the directory takes writes.
pub fn probe_dir(dir: &Path) -> Result<String, String> {
    use std::io::Write;
    let path = dir.join(PROBE_FILE);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(b"strata")?;
        file.sync_all()?;
        std::fs::remove_file(&path)
    };
    match write() {
        Ok(()) => Ok(format!("{} takes writes", dir.display())),
        Err(e) => Err(format!("{} does not take writes: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_that_refuses_writes_fails_its_probe_by_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(probe_dir(dir.path()).is_ok());
        assert!(!dir.path().join(PROBE_FILE).exists());
        // Even root cannot create files in /proc.
        let refused = probe_dir(Path::new("/proc")).unwrap_err();
        assert!(refused.contains("/proc/.health-probe"), "{refused}");
    }

    #[test]
    fn a_broker_is_healthy_once_joined_unfenced_and_heard_from() {
        let health = NodeHealth::default();
        let session = Duration::from_secs(9);
        assert!(!health.readiness(session, "x").ready, "joining");
        health.set_joined();
        health.heartbeat_answered(false);
        health.log_dir_probed(Ok("fine".into()));
        assert!(health.report(1, session, false).ok());
        assert!(health.readiness(session, "x").ready);
        health.heartbeat_answered(true);
        let report = health.report(1, session, false);
        assert!(!report.ok());
        assert_eq!(report.status, "failing");
        assert!(!health.readiness(session, "x").ready, "fenced");
        health.heartbeat_answered(false);
        assert!(
            !health.report(1, session, true).ok(),
            "store not probed yet"
        );
        health.object_store_probed(Ok("reachable".into()));
        assert!(health.report(1, session, true).ok());
        health.set_stopping();
        assert!(!health.readiness(session, "x").ready);
    }
}
