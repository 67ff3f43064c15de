//! Proves that an older librdkafka — Debian's kcat, built on librdkafka 2.0.2 — parses
//! Strata's ApiVersions answer and can list metadata, produce compressed batches and consume.
//! `scripts/test.sh` installs kcat; without it this test fails and says so.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::BrokerProcess;

fn kcat(args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed (scripts/test.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn kcat_with_librdkafka_2_0_produces_and_consumes() {
    let version = kcat(&["-V"], None);
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let addr = broker.addr.as_str();
    let lines: Vec<String> = (0..200)
        .map(|i| format!("key{}:value {i}", i % 7))
        .collect();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("legacy-{codec}");
        kcat(
            &[
                "-P", "-b", addr, "-t", &topic, "-K:", "-z", codec, "-X", "acks=all",
            ],
            Some(&(lines.join("\n") + "\n")),
        );
        let read = kcat(
            &[
                "-C",
                "-b",
                addr,
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k:%s\n",
            ],
            None,
        );
        assert_eq!(
            read.lines().collect::<Vec<_>>(),
            lines,
            "round trip with {codec} ({version})"
        );
    }
    let metadata = kcat(&["-L", "-b", addr], None);
    assert!(
        metadata.contains("legacy-zstd") && metadata.contains("1 brokers"),
        "{metadata}"
    );
}
