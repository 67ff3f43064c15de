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

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// NUL-terminated JSON, fd 3 into Chromium and fd 4 out of it), for pages that need typing
/// and clicking. Chromium is closed and reaped on drop.
pub struct Devtools {
    child: std::process::Child,
    to: std::fs::File,
    from: std::sync::mpsc::Receiver<serde_json::Value>,
    session: String,
    next: u64,
}

impl Devtools {
    /// Chromium with a fresh tab on `url`.
    pub fn open(profile: &Path, url: &str) -> Self {
        use nix::fcntl::OFlag;
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (in_read, in_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let (out_read, out_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let (child_in, child_out) = (in_read.as_raw_fd(), out_write.as_raw_fd());
        assert!(
            child_in > 4 && child_out > 4,
            "pipes above the descriptors they become"
        );
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                "--hide-scrollbars",
                "--window-size=1366,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: dup2 is async-signal-safe, as pre_exec requires; the copies lose CLOEXEC.
        unsafe {
            command.pre_exec(move || {
                if nix::libc::dup2(child_in, 3) < 0 || nix::libc::dup2(child_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("Chromium runs (scripts/test.sh installs it)");
        drop((in_read, out_write));
        let (tx, from) = std::sync::mpsc::channel();
        let reader = std::fs::File::from(out_read);
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut reader = std::io::BufReader::new(reader);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).unwrap_or(0) > 0 {
                message.pop();
                if let Ok(value) = serde_json::from_slice(&message)
                    && tx.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut devtools = Self {
            child,
            to: std::fs::File::from(in_write),
            from,
            session: String::new(),
            next: 0,
        };
        let target = devtools.call("Target.createTarget", serde_json::json!({ "url": url }));
        let attached = devtools.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target["targetId"], "flatten": true }),
        );
        devtools.session = attached["sessionId"].as_str().unwrap().to_owned();
        devtools
    }

    /// Calls `method` (on the tab, once attached): its result.
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::Write;
        self.next += 1;
        let mut message =
            serde_json::json!({ "id": self.next, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let answer = self
                .from
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("Chromium did not answer {method}"));
            if answer["id"] == self.next {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the tab (promises awaited).
    pub fn eval(&mut self, expression: &str) -> serde_json::Value {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (JavaScript) is true; panics with `what` after 20 s.
    pub fn wait_for(&mut self, what: &str, condition: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.eval(&format!("!!({condition})")) != serde_json::Value::Bool(true) {
            let text = self.eval("document.body ? document.body.innerText : ''");
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; the page shows:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// A PNG of the tab.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self.call(
            "Page.captureScreenshot",
            serde_json::json!({ "format": "png" }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Devtools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
