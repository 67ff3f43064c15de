//! Proves that the data a broker acknowledged stays safe when an operator or the machine gets
//! something wrong: a second process started on the same data directory is refused before it
//! touches anything.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BrokerProcess, client, consume_all, create_topic};
use rdkafka::producer::{FutureProducer, FutureRecord};

async fn produce(addr: &str, topic: &str, count: usize) {
    let producer: FutureProducer = client(addr).set("acks", "all").create().unwrap();
    let mut pending = Vec::new();
    for i in 0..count {
        let payload = format!("record-{i}");
        pending.push(
            producer
                .send_result(FutureRecord::<(), _>::to(topic).payload(&payload))
                .expect("queued"),
        );
    }
    for delivery in pending {
        delivery.await.unwrap().expect("acknowledged");
    }
}

/// Runs `strata` with `args` until it exits (it must, within `within`); returns its exit
/// success and stderr.
fn run_to_exit(args: &[&str], within: Duration) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.success(), stderr);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strata {args:?} still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_on_a_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    create_topic(&broker.addr, "locked", 1, &[]).await;
    produce(&broker.addr, "locked", 1000).await;

    let data_arg = data.display().to_string();
    let (ok, stderr) = run_to_exit(
        &["dev", "--data-dir", &data_arg, "--listen", "127.0.0.1:0"],
        Duration::from_secs(10),
    );
    assert!(!ok, "the second process must fail; stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one line, not a log or a backtrace:\n{stderr}"
    );
    assert!(
        lines[0].contains(&data_arg),
        "names the directory: {stderr}"
    );
    assert!(
        lines[0].contains(&format!("PID {}", broker.pid())),
        "names the holder: {stderr}"
    );
    // The same for a controller on a directory in use.
    let meta = dir.path().join("meta");
    let meta_arg = meta.display().to_string();
    let mut controller = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["controller", "--node-id", "1", "--listen", "127.0.0.1:0"])
        .args(["--data-dir", &meta_arg, "--voters", "1@127.0.0.1:1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = meta.join(".lock");
    for _ in 0..100 {
        if std::fs::read_to_string(&lock).is_ok_and(|t| !t.trim().is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, stderr) = run_to_exit(
        &["controller", "--node-id", "1", "--listen", "127.0.0.1:0"]
            .into_iter()
            .chain(["--data-dir", &meta_arg, "--voters", "1@127.0.0.1:1"])
            .collect::<Vec<_>>(),
        Duration::from_secs(10),
    );
    let _ = controller.kill();
    let _ = controller.wait();
    assert!(!ok, "the second controller must fail; stderr:\n{stderr}");
    assert!(
        stderr.contains(&meta_arg) && stderr.contains(&format!("PID {}", controller.id())),
        "{stderr}"
    );

    // The first broker's data is intact, through a restart.
    produce(&broker.addr, "locked", 1000).await;
    assert!(broker.stop(), "clean shutdown");
    broker.restart("127.0.0.1:0");
    let records = consume_all(&broker.addr, "locked", 1, 2000, Duration::from_secs(20));
    assert_eq!(records.len(), 2000);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as i64)
    );
}

/// Connections that hold file descriptors of the broker until dropped.
fn hog_connections(addr: &str, count: usize) -> Vec<std::net::TcpStream> {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    // Connections wait in the accept queue once the broker cannot accept more; a connect that
    // fails (the queue full) ends the hoarding. A SYN is sometimes lost and resent after 1 s.
    (0..count)
        .map_while(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metadata_log_storage_fault_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Few descriptors, no connection limit, short broker sessions: idle connections exhaust
    // the descriptors, the broker's heartbeats fail, and the controller's fencing of it must
    // write to the metadata log, which cannot open its files.
    let mut broker = BrokerProcess::start_with_files_limit(
        &data,
        &[
            "max.connections=100000",
            "broker.heartbeat.interval.ms=200",
            "broker.session.timeout.ms=1000",
        ],
        256,
    );
    create_topic(&broker.addr, "before", 1, &[]).await;
    let hogs = hog_connections(&broker.addr, 400);
    assert!(hogs.len() > 256, "only {} connections", hogs.len());
    let status = broker.wait_exit(Duration::from_secs(30));
    drop(hogs);
    let log = broker.log();
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running, half-alive, 30 s into a metadata log fault; log tail:\n{}",
            &log[log.len().saturating_sub(4000)..]
        )
    });
    assert!(!status.success(), "a fault is a failure exit");

    let fatal: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("metadata log") && l.contains("Too many open files"))
        .collect();
    assert!(
        !fatal.is_empty(),
        "one line names the metadata log and the cause; log tail:\n{}",
        &log[log.len().saturating_sub(4000)..]
    );
    // A supervisor's restart (with descriptors back) finds everything and takes writes.
    broker.files_limit = None;
    broker.restart("127.0.0.1:0");
    create_topic(&broker.addr, "after", 1, &[]).await;
    produce(&broker.addr, "before", 10).await;
    produce(&broker.addr, "after", 10).await;
}
