//! Test harness: runs the real `strata` binary on an ephemeral port and a temporary directory,
//! and stops it (by its own pid) when the test ends.
#![allow(dead_code)]

pub mod browser;
pub mod certs;
pub mod cluster;
pub mod controller;
pub mod eos;
pub mod java;
pub mod link;
pub mod metrics;
pub mod proxy;
pub mod wire;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// How long a broker may take to open its data directory and bind.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `strata dev` process.
pub struct BrokerProcess {
    child: Option<Child>,
    /// `host:port` of its Kafka listener.
    pub addr: String,
    /// The data directory.
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    /// Environment variables given to the process.
    pub env: Vec<(String, String)>,
    /// `host:port` of its admin API.
    pub admin_addr: String,
    /// Its file descriptor limit (`RLIMIT_NOFILE`, soft and hard), when not inherited.
    pub files_limit: Option<u64>,
    /// `host:port` of each Kafka listener, by name.
    pub listeners: std::collections::BTreeMap<String, String>,
}

impl BrokerProcess {
    /// Starts a broker on `data_dir` with `--set` overrides.
    pub fn start(data_dir: &Path, settings: &[&str]) -> Self {
        Self::start_with(data_dir, "127.0.0.1:0", None, settings)
    }

    /// Starts a broker with an explicit listener and advertised address.
    pub fn start_with(
        data_dir: &Path,
        listen: &str,
        advertised: Option<&str>,
        settings: &[&str],
    ) -> Self {
        let mut extra_args = Vec::new();
        if let Some(advertised) = advertised {
            extra_args.push("--advertised-listener".to_owned());
            extra_args.push(advertised.to_owned());
        }
        for setting in settings {
            extra_args.push("--set".to_owned());
            extra_args.push((*setting).to_owned());
        }
        let mut broker = Self {
            child: None,
            addr: String::new(),
            data_dir: data_dir.to_owned(),
            extra_args,
            env: Vec::new(),
            admin_addr: String::new(),
            files_limit: None,
            listeners: Default::default(),
        };
        broker.spawn(listen);
        broker
    }

    /// Starts a broker with `--set` overrides and at most `files` file descriptors.
    pub fn start_with_files_limit(data_dir: &Path, settings: &[&str], files: u64) -> Self {
        Self::launch(data_dir, settings, Vec::new(), Some(files))
    }

    /// Starts a broker with `--set` overrides and environment variables.
    pub fn start_env(data_dir: &Path, settings: &[&str], env: &[(String, String)]) -> Self {
        Self::launch(data_dir, settings, env.to_vec(), None)
    }

    fn launch(
        data_dir: &Path,
        settings: &[&str],
        env: Vec<(String, String)>,
        files_limit: Option<u64>,
    ) -> Self {
        let mut broker = Self {
            child: None,
            addr: String::new(),
            data_dir: data_dir.to_owned(),
            extra_args: settings
                .iter()
                .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
                .collect(),
            env,
            admin_addr: String::new(),
            files_limit,
            listeners: Default::default(),
        };
        broker.spawn("127.0.0.1:0");
        broker
    }

    fn spawn(&mut self, listen: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("broker log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
        if let Some(files) = self.files_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
            unsafe {
                command.pre_exec(move || {
                    nix::sys::resource::setrlimit(
                        nix::sys::resource::Resource::RLIMIT_NOFILE,
                        files,
                        files,
                    )
                    .map_err(std::io::Error::from)
                });
            }
        }
        let mut child = command
            .arg("dev")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(listen)
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("strata binary starts");
        let rx = listening(&mut child);
        self.child = Some(child);
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((addr, admin, listeners)) => {
                self.addr = addr;
                self.admin_addr = admin;
                self.listeners = listeners;
            }
            Err(_) => {
                let log = std::fs::read_to_string(self.data_dir.with_extension("log"))
                    .unwrap_or_default();
                self.kill();
                panic!("broker did not start within {START_TIMEOUT:?}; log:\n{log}");
            }
        }
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, then waits; returns whether it exited with status 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Waits up to `timeout` for the process to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL (kill -9), then waits.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same data directory (a new port unless `listen` is set).
    pub fn restart(&mut self, listen: &str) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        self.spawn(listen);
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `strata` process started with any arguments (`run --config node.toml`), stopped (by its
/// pid) when dropped.
pub struct RunningNode {
    child: Child,
    /// `host:port` of its Kafka listener.
    pub addr: String,
    /// `host:port` of its admin API.
    pub admin: String,
}

impl RunningNode {
    /// Starts `strata <args>` with its log in `log`; waits until it serves Kafka clients.
    pub fn start(args: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .expect("strata starts");
        let rx = listening(&mut child);
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((addr, admin, _)) => Self { child, addr, admin },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "strata {args:?} did not start within {START_TIMEOUT:?}; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AWS environment that points a broker at the test S3 server.
pub fn s3_env(server: &strata_tiering::testing::TestS3) -> Vec<(String, String)> {
    use strata_tiering::testing::{ACCESS_KEY, SECRET_KEY};
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", server.endpoint()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `GET http://<addr><path>`: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_request(addr, "GET", path, &[], "");
    (status, body)
}

/// An HTTP/1.1 request to `addr` with `headers` and `body` (JSON when not empty): the status
/// code, the response headers and the body.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("admin API reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let rest = &body[line + 2..];
        match size {
            Some(size) if size > 0 && rest.len() >= size => {
                out.extend_from_slice(&rest[..size]);
                body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
            }
            _ => break,
        }
    }
    out
}

/// What a `strata` process serves on.
type Listening = (String, String, std::collections::BTreeMap<String, String>);

/// The (Kafka, admin, named Kafka listeners) addresses a `strata` process prints once it serves
/// clients, read from its piped stdout on a thread of their own.
fn listening(child: &mut Child) -> mpsc::Receiver<Listening> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut admin = String::new();
        let mut listeners = std::collections::BTreeMap::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("strata admin listening on ") {
                admin = addr.to_owned();
            }
            // `strata listener NAME (PROTOCOL) on host:port`
            if let Some(rest) = line.strip_prefix("strata listener ")
                && let Some((name, addr)) = rest.split_once(" (").and_then(|(name, rest)| {
                    rest.split_once(") on ")
                        .map(|(_, addr)| (name.to_owned(), addr.to_owned()))
                })
            {
                listeners.insert(name, addr);
            }
            // A controller-only node serves no Kafka clients: its controller listener stands in.
            let served = line
                .strip_prefix("strata listening on ")
                .or_else(|| line.strip_prefix("strata controller listening on "));
            if let Some(addr) = served {
                let _ = tx.send((addr.to_owned(), admin.clone(), listeners.clone()));
            }
        }
    });
    rx
}

/// Runs a `strata` Kafka-protocol tool against `bootstrap`, `stdin` as its input.
pub fn strata_tool(bootstrap: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .arg("--bootstrap")
        .arg(bootstrap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strata runs");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("stdin written");
    drop(input);
    child.wait_with_output().expect("strata ends")
}

/// A client config pointing at `addr`.
pub fn client(addr: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", addr);
    config
}

/// Creates a topic through the Admin API (CreateTopics).
pub async fn create_topic(addr: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = client(addr).create().expect("admin client");
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = admin
        .create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("CreateTopics answered");
    for result in results {
        result.expect("topic created");
    }
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers as (key, value).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Timestamp in ms.
    pub timestamp: Option<i64>,
}

/// The records' values read as numbers, in the order read (tests write numbers).
pub fn numbers(consumed: &[Consumed]) -> Vec<u32> {
    consumed
        .iter()
        .map(|c| {
            String::from_utf8_lossy(c.value.as_deref().unwrap())
                .parse()
                .unwrap()
        })
        .collect()
}

/// Reads every partition of `topic` from the beginning until `expected` records arrived or
/// `timeout` passed; returns what was read.
pub fn consume_all(
    addr: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::{Offset, TopicPartitionList};

    let consumer: BaseConsumer = client(addr)
        .set("group.id", "strata-tests")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < expected && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => out.push(Consumed {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: message.timestamp().to_millis(),
            }),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

/// Reads partition 0 of `topic` (records whose values are numbers) and checks that every
/// acknowledged value is there exactly once, at increasing offsets.
pub fn check_acked_once(bootstrap: &str, topic: &str, acked: &[u32]) {
    let consumed = consume_all(bootstrap, topic, 1, acked.len(), Duration::from_secs(60));
    assert!(
        consumed.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets in order"
    );
    let mut values: Vec<u32> = numbers(&consumed);
    values.sort_unstable();
    let read = values.len();
    values.dedup();
    assert_eq!(read, values.len(), "no record twice");
    for v in acked {
        assert!(
            values.binary_search(v).is_ok(),
            "acknowledged record {v} lost"
        );
    }
}
