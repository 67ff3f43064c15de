//! This machine's own limits, measured in the same run as the broker: what a broker on this
//! machine could reach at best, so that broker figures read as ratios.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use crate::report::Row;

/// Buffer size of the socket and disk probes: large, as a broker's writes are.
const CHUNK: usize = 1 << 20;

/// Measured limits, in MB/s (10^6 bytes per second).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One TCP stream over loopback, write(2) on one side and read(2) on the other.
    pub loopback_read_write: f64,
    /// The same with the sender using sendfile(2) from a cached file: a null broker's fetch.
    pub loopback_sendfile: f64,
    /// A null broker's produce: loopback TCP into a receiver that appends to a file.
    pub null_broker_append: f64,
    /// Sequential file writes with fdatasync after every MiB.
    pub disk_fdatasync_per_mib: f64,
    /// Sequential file writes, one fdatasync at the end.
    pub disk_buffered: f64,
    /// memcpy of large buffers.
    pub memcpy: f64,
    /// zstd level 3 compression of JSON-like records on one core (input MB/s).
    pub zstd_compress: f64,
    /// zstd decompression of the same on one core (output MB/s).
    pub zstd_decompress: f64,
}

/// Runs every probe, each moving about `bytes`.
pub fn measure(bytes: u64, scratch: &Path) -> anyhow::Result<Limits> {
    let (compress, decompress) = zstd_speed(bytes / 4)?;
    Ok(Limits {
        loopback_read_write: loopback(bytes, None, None)?,
        loopback_sendfile: loopback(bytes, Some(scratch), None)?,
        null_broker_append: loopback(bytes, None, Some(&scratch.join("null-broker.log")))?,
        disk_fdatasync_per_mib: disk(bytes.min(256 << 20), scratch, true)?,
        disk_buffered: disk(bytes, scratch, false)?,
        memcpy: memcpy(bytes * 4),
        zstd_compress: compress,
        zstd_decompress: decompress,
    })
}

/// Compresses and decompresses about `bytes` of JSON-like records, one core, level 3 (the
/// level tiering will use), returning input and output MB/s.
fn zstd_speed(bytes: u64) -> anyhow::Result<(f64, f64)> {
    const BLOCK: usize = 4 << 20;
    let mut block = Vec::with_capacity(BLOCK + 256);
    let mut n = 0u64;
    while block.len() < BLOCK {
        let record = format!(
            "{{\"id\":{n},\"user\":\"user-{}\",\"event\":\"{}\",\"ts\":{},\"amount\":{}.{:02}}}\n",
            n % 9973,
            ["view", "click", "purchase", "search"][(n % 4) as usize],
            1_700_000_000_000 + n * 37,
            n % 500,
            n % 100
        );
        block.extend_from_slice(record.as_bytes());
        n += 1;
    }
    let rounds = (bytes / BLOCK as u64).max(1);
    let started = Instant::now();
    let mut compressed = Vec::new();
    for _ in 0..rounds {
        compressed = zstd::bulk::compress(&block, 3)?;
    }
    let compress = mb_per_s(rounds * block.len() as u64, started);
    let started = Instant::now();
    for _ in 0..rounds {
        let out = zstd::bulk::decompress(&compressed, block.len())?;
        std::hint::black_box(out);
    }
    Ok((compress, mb_per_s(rounds * block.len() as u64, started)))
}

fn mb_per_s(bytes: u64, started: Instant) -> f64 {
    bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// Streams `bytes` over loopback. With `sendfile_from`, the sender uses sendfile from a file
/// there; with `append_to`, the receiver appends what it reads to that file.
fn loopback(
    bytes: u64,
    sendfile_from: Option<&Path>,
    append_to: Option<&Path>,
) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut sink = append_to.map(File::create).transpose()?;
    let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut socket, _) = listener.accept()?;
        let mut buffer = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            match socket.read(&mut buffer)? {
                0 => return Ok(total),
                n => {
                    if let Some(file) = sink.as_mut() {
                        file.write_all(&buffer[..n])?;
                    }
                    total += n as u64;
                }
            }
        }
    });
    let source = match sendfile_from {
        Some(dir) => {
            let path = dir.join("sendfile-source");
            let mut file = File::create(&path)?;
            let chunk = vec![7u8; CHUNK];
            for _ in 0..(bytes.min(256 << 20) / CHUNK as u64).max(1) {
                file.write_all(&chunk)?;
            }
            Some(File::open(&path)?)
        }
        None => None,
    };
    let mut socket = TcpStream::connect(addr)?;
    let started = Instant::now();
    let mut sent = 0u64;
    match &source {
        Some(file) => {
            let len = file.metadata()?.len();
            while sent < bytes {
                let mut offset = 0i64;
                while (offset as u64) < len && sent < bytes {
                    let want = ((len - offset as u64).min(bytes - sent)) as usize;
                    let n = nix::sys::sendfile::sendfile(
                        socket.as_fd(),
                        file.as_fd(),
                        Some(&mut offset),
                        want,
                    )?;
                    sent += n as u64;
                }
            }
        }
        None => {
            let chunk = vec![7u8; CHUNK];
            while sent < bytes {
                socket.write_all(&chunk)?;
                sent += CHUNK as u64;
            }
        }
    }
    drop(socket);
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    anyhow::ensure!(
        received == sent,
        "loopback probe lost bytes: sent {sent}, received {received}"
    );
    let rate = mb_per_s(sent, started);
    if let Some(path) = append_to {
        std::fs::remove_file(path)?;
    }
    Ok(rate)
}

/// Writes `bytes` sequentially; with `sync_each`, fdatasync after every chunk.
fn disk(bytes: u64, dir: &Path, sync_each: bool) -> anyhow::Result<f64> {
    let path = dir.join("disk-probe");
    let mut file = File::create(&path)?;
    let chunk = vec![3u8; CHUNK];
    let started = Instant::now();
    let mut written = 0;
    while written < bytes {
        file.write_all(&chunk)?;
        written += CHUNK as u64;
        if sync_each {
            file.sync_data()?;
        }
    }
    file.sync_data()?;
    let rate = mb_per_s(written, started);
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Copies `bytes` between two 64 MiB buffers.
fn memcpy(bytes: u64) -> f64 {
    let size = 64 << 20;
    let source = vec![5u8; size];
    let mut target = vec![0u8; size];
    let started = Instant::now();
    let mut copied = 0;
    while copied < bytes {
        target.copy_from_slice(&source);
        std::hint::black_box(&mut target);
        copied += size as u64;
    }
    mb_per_s(copied, started)
}

impl Limits {
    /// The limits as report rows.
    pub fn rows(&self) -> Vec<Row> {
        vec![
            Row::limit("loopback TCP, write/read", self.loopback_read_write),
            Row::limit(
                "loopback TCP, sendfile/read (null broker fetch)",
                self.loopback_sendfile,
            ),
            Row::limit(
                "loopback TCP into a file append (null broker produce)",
                self.null_broker_append,
            ),
            Row::limit(
                "disk sequential write, fdatasync per MiB",
                self.disk_fdatasync_per_mib,
            ),
            Row::limit("disk sequential write, buffered", self.disk_buffered),
            Row::limit("memory copy", self.memcpy),
            Row::limit(
                "zstd level 3 compress, one core, JSON-like",
                self.zstd_compress,
            ),
            Row::limit("zstd decompress, one core, JSON-like", self.zstd_decompress),
        ]
    }
}
