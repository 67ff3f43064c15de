//! Kafka request framing: a 4-byte big-endian length, then that many bytes.
//!
//! The length is checked against `socket.request.max.bytes`, then the whole frame is reserved
//! from the broker's request memory budget ([`RequestMemory`]) before anything is allocated;
//! the buffer grows with the bytes that actually arrive, so a peer that announces a large
//! frame and sends little costs little. Once a frame has started arriving it must arrive
//! within `request.receive.timeout.ms`.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::limits::INITIAL_FRAME_BUFFER;
use crate::memory::{RequestMemory, Reservation};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced size is negative or over the limit.
    #[error("request size {size} is outside 0..={max} (socket.request.max.bytes)")]
    BadSize {
        /// Announced size.
        size: i32,
        /// Limit.
        max: usize,
    },
    /// The request can never fit the request memory budget.
    #[error("request of {size} bytes exceeds what queued.max.request.bytes ({budget}) can hold")]
    OverBudget {
        /// Announced size.
        size: usize,
        /// The budget.
        budget: usize,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
    /// The frame started arriving but did not finish in time.
    #[error("request not received within {0:?} of its start (request.receive.timeout.ms)")]
    Timeout(Duration),
    /// A socket error.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// A request frame and the memory reserved for it (held until its response is written).
#[derive(Debug)]
pub struct Frame {
    /// The bytes after the length.
    pub body: Bytes,
    /// Returned to the budget when dropped.
    pub reservation: Reservation,
}

/// How frames are bounded.
#[derive(Debug, Clone)]
pub struct FrameLimits {
    /// Largest frame (`socket.request.max.bytes`).
    pub max_bytes: usize,
    /// The broker's budget (`queued.max.request.bytes`).
    pub memory: RequestMemory,
    /// Longest a frame may take to arrive once started (`request.receive.timeout.ms`); the
    /// wait for room in the budget does not count.
    pub receive_timeout: Duration,
}

async fn within<T>(
    limit: Duration,
    reading: impl Future<Output = Result<T, FrameError>>,
) -> Result<T, FrameError> {
    tokio::time::timeout(limit, reading)
        .await
        .map_err(|_| FrameError::Timeout(limit))?
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames. The wait for a frame's
/// first byte is not bounded here (idle connections are the caller's business).
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &FrameLimits,
) -> Result<Option<Frame>, FrameError> {
    let mut size = [0u8; 4];
    let n = reader.read(&mut size).await?;
    if n == 0 {
        return Ok(None);
    }
    let timeout = limits.receive_timeout;
    let started = tokio::time::Instant::now();
    within(timeout, async {
        let mut got = n;
        while got < 4 {
            let n = reader.read(&mut size[got..]).await?;
            if n == 0 {
                return Err(FrameError::Truncated { got, want: 4 });
            }
            got += n;
        }
        Ok(())
    })
    .await?;
    let header_took = started.elapsed();
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > limits.max_bytes {
        return Err(FrameError::BadSize {
            size,
            max: limits.max_bytes,
        });
    }
    let want = size as usize;
    let reservation = limits
        .memory
        .reserve(want)
        .await
        .ok_or(FrameError::OverBudget {
            size: want,
            budget: limits.memory.total_bytes(),
        })?;
    // Waiting for room in the budget is the broker's doing: it does not count against the peer.
    let body = within(timeout.saturating_sub(header_took), read_body(reader, want)).await?;
    Ok(Some(Frame { body, reservation }))
}

async fn read_body<R: AsyncRead + Unpin>(reader: &mut R, want: usize) -> Result<Bytes, FrameError> {
    let mut body: Vec<u8> = Vec::with_capacity(want.min(INITIAL_FRAME_BUFFER));
    while body.len() < want {
        if body.len() == body.capacity() {
            let target = (body.capacity() * 2).clamp(INITIAL_FRAME_BUFFER, want);
            body.reserve_exact(target - body.len());
        }
        let room = (body.capacity() - body.len()) as u64;
        let n = (&mut *reader).take(room).read_buf(&mut body).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got: body.len(),
                want,
            });
        }
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes: usize) -> FrameLimits {
        FrameLimits {
            max_bytes,
            memory: RequestMemory::new(64 << 20),
            receive_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn reads_frames_and_rejects_bad_sizes() {
        let mut input: &[u8] = &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0];
        assert_eq!(
            read_frame(&mut input, &limits(10))
                .await
                .unwrap()
                .unwrap()
                .body
                .as_ref(),
            &[1, 2, 3]
        );
        let empty = read_frame(&mut input, &limits(10)).await.unwrap().unwrap();
        assert_eq!(empty.body.len(), 0);
        assert!(read_frame(&mut input, &limits(10)).await.unwrap().is_none());
        let mut huge: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut huge, &limits(100)).await,
            Err(FrameError::BadSize { .. })
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut negative, &limits(100)).await,
            Err(FrameError::BadSize { .. })
        ));
        let mut short: &[u8] = &[0, 0, 0, 9, 1];
        assert!(matches!(
            read_frame(&mut short, &limits(100)).await,
            Err(FrameError::Truncated { got: 1, want: 9 })
        ));
    }

    #[tokio::test]
    async fn a_frame_holds_its_reservation_and_grows_with_what_arrives() {
        let limits = limits(100 << 20);
        let frame_bytes = 3 * INITIAL_FRAME_BUFFER + 5;
        let mut input = (frame_bytes as i32).to_be_bytes().to_vec();
        input.extend(std::iter::repeat_n(9u8, frame_bytes));
        let frame = read_frame(&mut input.as_slice(), &limits)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(frame.body.len(), frame_bytes);
        assert!(limits.memory.available_bytes() <= (64 << 20) - frame_bytes);
        drop(frame);
        assert_eq!(limits.memory.available_bytes(), 64 << 20);
    }

    #[tokio::test]
    async fn a_stalled_frame_times_out() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        use tokio::io::AsyncWriteExt;
        client.write_all(&[0, 0, 1, 0, 1, 2]).await.unwrap();
        let result = read_frame(&mut server, &limits(1000)).await;
        assert!(matches!(result, Err(FrameError::Timeout(_))), "{result:?}");
        drop(client);
    }
}
