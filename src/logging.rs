//! The process log: to stderr, as text (ANSI colours only on a terminal) or as JSON lines for
//! log shippers, at a level set by `--log-level` or `RUST_LOG` (which wins, with the full
//! `tracing` directive syntax, e.g. `RUST_LOG=info,strata::cluster=debug`).
//!
//! openraft's internals log at WARN and above unless a directive names `openraft`: its INFO is
//! a running commentary of the consensus core that tells an operator nothing actionable. Its
//! WARNs that describe a normal election race (a vote response arriving after the node moved
//! on to a later term, which a slow fsync of the vote causes on a loaded machine) are dropped
//! too: they are not faults, and a WARN an operator learns to ignore hides the ones that count.
//!
//! A line repeated in a loop never floods the log: each call site may write [`BURST`] lines
//! per [`WINDOW`]; the rest are counted and reported in one line when the window ends. A dead
//! peer once made the active controller log 33,000 lines a second.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Lines one call site may write per [`WINDOW`] at INFO and above.
pub const BURST: u32 = 20;
/// The rate limiting window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// Installs the process-wide logger. `level` is the default directive (`info`, `debug`, …);
/// `RUST_LOG`, when set, replaces it.
pub fn init(level: &str, format: LogFormat) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| level.to_owned());
    let quiet_openraft = if directives.contains("openraft") {
        String::new()
    } else {
        ",openraft=warn".to_owned()
    };
    let filter = EnvFilter::try_new(format!("{directives}{quiet_openraft}")).unwrap_or_else(|e| {
        eprintln!("ignoring the log level '{directives}': {e}; logging at info");
        EnvFilter::new(format!("info{quiet_openraft}"))
    });
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with((!quiet_openraft.is_empty()).then_some(BenignRaftChatter))
        .with(RateLimit::default());
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

/// Per call site: when its window started, lines written in it, lines suppressed.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
}

/// Drops a call site's lines beyond [`BURST`] per [`WINDOW`] (INFO and above: DEBUG and TRACE
/// are only on when asked for, and then wanted in full).
#[derive(Debug, Default)]
pub struct RateLimit {
    windows: Mutex<HashMap<Identifier, Window>>,
}

impl RateLimit {
    /// Whether a line of `callsite` may be written at `now`; also returns the count suppressed
    /// in the window that just ended, to be reported.
    fn admit(&self, callsite: Identifier, now: Instant) -> (bool, u64) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let window = windows.entry(callsite).or_insert(Window {
            started: now,
            written: 0,
            suppressed: 0,
        });
        let mut reported = 0;
        if now.duration_since(window.started) >= WINDOW {
            reported = window.suppressed;
            *window = Window {
                started: now,
                written: 0,
                suppressed: 0,
            };
        }
        if window.written < BURST {
            window.written += 1;
            (true, reported)
        } else {
            window.suppressed += 1;
            (false, reported)
        }
    }
}

impl<S: Subscriber> Layer<S> for RateLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() > Level::INFO || metadata.target() == module_path!() {
            return true;
        }
        let (admit, suppressed) = self.admit(metadata.callsite(), Instant::now());
        if suppressed > 0 {
            // Outside the lock: this line passes through the layers again.
            tracing::warn!(
                target: module_path!(),
                suppressed,
                of = format!("{}:{}", metadata.file().unwrap_or("?"), metadata.line().unwrap_or(0)),
                "similar log lines were suppressed in the last {WINDOW:?}"
            );
        }
        admit
    }
}

/// openraft WARNs that are part of a normal election, by the start of their message.
const BENIGN_RAFT_WARNINGS: &[&str] = &["A message will be ignored because vote changed"];

/// Drops [`BENIGN_RAFT_WARNINGS`] unless openraft's own logging was asked for.
struct BenignRaftChatter;

/// Whether an event's `message` field starts with one of `prefixes`.
struct MessageStartsWith<'a> {
    prefixes: &'a [&'a str],
    found: bool,
}

impl tracing::field::Visit for MessageStartsWith<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let text = format!("{value:?}");
            self.found = self.prefixes.iter().any(|p| text.starts_with(p));
        }
    }
}

impl<S: Subscriber> Layer<S> for BenignRaftChatter {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if !metadata.target().starts_with("openraft") || *metadata.level() != Level::WARN {
            return true;
        }
        let mut visit = MessageStartsWith {
            prefixes: BENIGN_RAFT_WARNINGS,
            found: false,
        };
        event.record(&mut visit);
        !visit.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Site;
    impl tracing::Callsite for Site {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!()
        }
    }
    static SITE: Site = Site;

    #[test]
    fn benign_election_warnings_of_openraft_are_dropped_and_others_kept() {
        let written = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let subscriber = tracing_subscriber::registry().with(BenignRaftChatter).with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone())),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                target: "openraft::core::raft_core",
                "A message will be ignored because vote changed: msg sent by vote: T1-N1"
            );
            tracing::warn!(target: "openraft::core::raft_core", "a storage error");
            tracing::warn!(target: "strata", "A message will be ignored because vote changed");
        });
        let log = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert_eq!(log.lines().count(), 2, "{log}");
        assert!(log.contains("a storage error"), "{log}");
        assert!(!log.contains("T1-N1"), "{log}");
    }

    struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_call_site_writes_a_burst_per_window_and_reports_the_rest() {
        let limit = RateLimit::default();
        let start = Instant::now();
        let id = || Identifier(&SITE);
        for n in 0..BURST {
            assert_eq!(limit.admit(id(), start), (true, 0), "line {n}");
        }
        for _ in 0..1000 {
            assert_eq!(limit.admit(id(), start + WINDOW / 2), (false, 0));
        }
        assert_eq!(limit.admit(id(), start + WINDOW), (true, 1000));
        assert_eq!(limit.admit(id(), start + WINDOW), (true, 0));
    }
}
