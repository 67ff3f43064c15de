//! The Java Kafka client for tests: its jars fetched by Maven once per target directory, and the
//! `tests/java/Strata*Check.java` programs compiled against them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `command`, panicking with its output if it fails; returns stdout and stderr.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?} could not start (java, javac and mvn are installed by scripts/test.sh): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// Checks that use APIs new in the 4.x client (listConfigResources).
const NEEDS_4: &[&str] = &[
    "StrataAdminCheck.java",
    "StrataConsumerProtocolCheck.java",
    "StrataMixedGroupCheck.java",
];

/// The classpath of client `version` with every check compiled against it.
pub fn classpath(version: &str) -> String {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java");
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("java-client-{version}"));
    let lib = base.join("lib");
    if !lib.join(format!("kafka-clients-{version}.jar")).exists() {
        run(Command::new("mvn")
            .args(["-q", "-B", "-f"])
            .arg(sources.join("pom.xml"))
            .arg("dependency:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", lib.display()))
            .arg(format!("-Dkafka.version={version}")));
    }
    let mut checks: Vec<PathBuf> = std::fs::read_dir(&sources)
        .expect("tests/java")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let file = p
                .file_name()
                .map_or(String::new(), |f| f.to_string_lossy().into_owned());
            file.starts_with("Strata")
                && file.ends_with("Check.java")
                && (version.starts_with("4.") || !NEEDS_4.contains(&file.as_str()))
        })
        .collect();
    checks.sort();
    let classes = base.join("classes");
    let jars = format!("{}/*", lib.display());
    run(Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg("-cp")
        .arg(&jars)
        .args(&checks));
    format!("{}:{jars}", classes.display())
}
