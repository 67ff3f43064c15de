//! Headless Chromium (Debian's package) for the console tests: a page's DOM after its
//! scripts ran, its console messages, screenshots.

use std::path::Path;
use std::process::Command;

/// Debian's Chromium (scripts/test.sh installs it).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Virtual time each page gets to load and refresh (timers run without waiting for it).
pub const BUDGET_MS: &str = "7000";

/// Runs Chromium headless on `url` with `args`: its stdout and its log (stderr).
pub fn chromium(profile: &Path, url: &str, args: &[&str]) -> (String, String) {
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--virtual-time-budget={BUDGET_MS}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("Chromium runs (scripts/test.sh installs Debian's chromium)");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The console messages of a Chromium log. The console writes none of its own, so each is a
/// fault: an uncaught exception, a failed request, an error logged (Chromium logs every
/// console message at one level, `INFO:CONSOLE`).
pub fn console_errors(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}
