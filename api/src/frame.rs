//! Kafka request framing: a 4-byte big-endian length, then that many bytes.
//!
//! The length is checked against `socket.request.max.bytes` before anything is allocated, and
//! the buffer grows with the bytes that actually arrive, so a peer that announces a large frame
//! and sends nothing costs no memory.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// First reservation for a frame body; it grows only as bytes arrive.
const INITIAL_FRAME_BUFFER: usize = 64 * 1024;

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
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
    /// A socket error.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut size = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut size[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated { got, want: 4 })
            };
        }
        got += n;
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > max_bytes {
        return Err(FrameError::BadSize {
            size,
            max: max_bytes,
        });
    }
    let want = size as usize;
    let mut body = BytesMut::with_capacity(want.min(INITIAL_FRAME_BUFFER));
    while body.len() < want {
        body.reserve((want - body.len()).min(INITIAL_FRAME_BUFFER));
        let n = (&mut *reader)
            .take((want - body.len()) as u64)
            .read_buf(&mut body)
            .await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got: body.len(),
                want,
            });
        }
    }
    Ok(Some(body.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_frames_and_rejects_bad_sizes() {
        let mut input: &[u8] = &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0];
        assert_eq!(
            read_frame(&mut input, 10).await.unwrap().unwrap().as_ref(),
            &[1, 2, 3]
        );
        assert_eq!(read_frame(&mut input, 10).await.unwrap().unwrap().len(), 0);
        assert!(read_frame(&mut input, 10).await.unwrap().is_none());
        let mut huge: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut huge, 100).await,
            Err(FrameError::BadSize { .. })
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut negative, 100).await,
            Err(FrameError::BadSize { .. })
        ));
        let mut short: &[u8] = &[0, 0, 0, 9, 1];
        assert!(matches!(
            read_frame(&mut short, 100).await,
            Err(FrameError::Truncated { got: 1, want: 9 })
        ));
    }
}
