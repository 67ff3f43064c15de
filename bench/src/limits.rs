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
    /// The same with the sender using sendfile(2) from a cached file.
    pub loopback_sendfile: f64,
    /// Sequential file writes with fdatasync after every MiB.
    pub disk_fdatasync_per_mib: f64,
    /// Sequential file writes, one fdatasync at the end.
    pub disk_buffered: f64,
    /// memcpy of large buffers.
    pub memcpy: f64,
}

/// Runs every probe, each moving about `bytes`.
pub fn measure(bytes: u64, scratch: &Path) -> anyhow::Result<Limits> {
    Ok(Limits {
        loopback_read_write: loopback(bytes, None)?,
        loopback_sendfile: loopback(bytes, Some(scratch))?,
        disk_fdatasync_per_mib: disk(bytes.min(256 << 20), scratch, true)?,
        disk_buffered: disk(bytes, scratch, false)?,
        memcpy: memcpy(bytes * 4),
    })
}

fn mb_per_s(bytes: u64, started: Instant) -> f64 {
    bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// Streams `bytes` over loopback; with a scratch dir, the sender uses sendfile from a file there.
fn loopback(bytes: u64, sendfile_from: Option<&Path>) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut socket, _) = listener.accept()?;
        let mut buffer = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            match socket.read(&mut buffer)? {
                0 => return Ok(total),
                n => total += n as u64,
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
    Ok(mb_per_s(sent, started))
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
            Row::limit("loopback TCP, sendfile/read", self.loopback_sendfile),
            Row::limit(
                "disk sequential write, fdatasync per MiB",
                self.disk_fdatasync_per_mib,
            ),
            Row::limit("disk sequential write, buffered", self.disk_buffered),
            Row::limit("memory copy", self.memcpy),
        ]
    }
}
