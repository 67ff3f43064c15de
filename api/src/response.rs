//! Response frames: encoded bytes interleaved with file regions sent by `sendfile(2)`.
//!
//! A Fetch response is its encoded head with the record bytes spliced in as file regions, so
//! on plain TCP record data goes from the page cache to the socket without passing through
//! user space. On TLS the regions are read into the buffer that is encrypted, in chunks large
//! enough that rustls writes full 16 KiB records.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;

use crate::broker::FileRegion;
use crate::transport::WriteHalf;

/// Encoded pieces up to this size are copied into one buffer and written together; larger ones
/// are written on their own to avoid the copy.
const SMALL_PART_BYTES: usize = 16 * 1024;
/// On streams without zero copy, bytes are gathered into writes of about this size.
const COPY_CHUNK_BYTES: usize = 64 * 1024;

/// One piece of a response frame.
#[derive(Debug, Clone)]
pub enum Part {
    /// Encoded bytes.
    Bytes(Bytes),
    /// Record bytes to send straight from a file.
    File(FileRegion),
}

/// A complete response, without its length prefix.
#[derive(Debug, Clone, Default)]
pub struct ResponseFrame {
    /// The pieces, in order.
    pub parts: Vec<Part>,
}

impl ResponseFrame {
    /// A response made of encoded bytes only.
    pub fn bytes(bytes: Bytes) -> Self {
        Self {
            parts: vec![Part::Bytes(bytes)],
        }
    }

    /// Total size of the frame body.
    pub fn len(&self) -> u64 {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Bytes(bytes) => bytes.len() as u64,
                Part::File(region) => region.len,
            })
            .sum()
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the length prefix and the frame, and flushes it.
    pub async fn write_to(&self, stream: &mut WriteHalf) -> io::Result<()> {
        let len = self.len();
        let len = i32::try_from(len)
            .map_err(|_| io::Error::other(format!("response of {len} bytes is too large")))?;
        if stream.zero_copy().is_none() {
            return self.write_copied(stream, len).await;
        }
        let head = match self.parts.first() {
            Some(Part::Bytes(bytes)) => bytes.len().min(SMALL_PART_BYTES),
            _ => 0,
        };
        let mut pending = BytesMut::with_capacity(4 + head);
        pending.put_i32(len);
        for part in &self.parts {
            match part {
                Part::Bytes(bytes) => {
                    // Small pieces are gathered so that a response is one write where possible.
                    if bytes.len() <= SMALL_PART_BYTES {
                        pending.extend_from_slice(bytes);
                    } else {
                        flush_pending(stream, &mut pending).await?;
                        stream.write_all(bytes).await?;
                    }
                }
                Part::File(region) => {
                    flush_pending(stream, &mut pending).await?;
                    if let Some(socket) = stream.zero_copy() {
                        send_file(socket, region).await?;
                    }
                }
            }
        }
        flush_pending(stream, &mut pending).await
    }

    /// Writes the frame through a stream that transforms the bytes (TLS): file regions are
    /// read into the write buffer with `pread(2)` (from the page cache, like `sendfile`).
    async fn write_copied(&self, stream: &mut WriteHalf, len: i32) -> io::Result<()> {
        let mut pending = BytesMut::with_capacity(COPY_CHUNK_BYTES.min(4 + self.len() as usize));
        pending.put_i32(len);
        for part in &self.parts {
            match part {
                Part::Bytes(bytes) if bytes.len() > COPY_CHUNK_BYTES => {
                    flush_pending(stream, &mut pending).await?;
                    stream.write_all(bytes).await?;
                }
                Part::Bytes(bytes) => {
                    if pending.len() + bytes.len() > COPY_CHUNK_BYTES {
                        flush_pending(stream, &mut pending).await?;
                    }
                    pending.extend_from_slice(bytes);
                }
                Part::File(region) => {
                    let mut position = region.position;
                    let mut remaining = region.len as usize;
                    while remaining > 0 {
                        let room = COPY_CHUNK_BYTES.saturating_sub(pending.len());
                        if room == 0 {
                            flush_pending(stream, &mut pending).await?;
                            continue;
                        }
                        let start = pending.len();
                        let want = room.min(remaining);
                        pending.resize(start + want, 0);
                        let got = region.file.read_at(&mut pending[start..], position)?;
                        pending.truncate(start + got);
                        // As with sendfile: a file that shrank cannot complete the frame.
                        if got == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file region shrank during a read",
                            ));
                        }
                        position += got as u64;
                        remaining -= got;
                    }
                }
            }
        }
        flush_pending(stream, &mut pending).await?;
        stream.flush().await
    }
}

async fn flush_pending(stream: &mut WriteHalf, pending: &mut BytesMut) -> io::Result<()> {
    if !pending.is_empty() {
        stream.write_all(pending).await?;
        pending.clear();
    }
    Ok(())
}

/// Sends a file region on the socket with `sendfile(2)`, waiting for writability between calls.
///
/// On a cold page the call reads from disk on the reactor thread; the log tail that consumers
/// read is normally in the page cache, which is the case this path is built for.
async fn send_file(stream: &OwnedWriteHalf, region: &FileRegion) -> io::Result<()> {
    let socket = stream.as_ref();
    let mut offset = region.position as i64;
    let mut remaining = region.len as usize;
    while remaining > 0 {
        socket.writable().await?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile(
                socket.as_fd(),
                region.file.as_fd(),
                Some(&mut offset),
                remaining,
            )
            .map_err(io::Error::from)
        });
        match sent {
            // The file shrank under us (truncated or deleted and reused): the frame cannot be
            // completed, so the connection must be dropped rather than send a short frame.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file region shrank during sendfile",
                ));
            }
            Ok(n) => remaining -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
