//! The broker-wide budget of request bytes being received or queued
//! (`queued.max.request.bytes`).
//!
//! As in Kafka's memory pool, a request's whole size is reserved once its 4-byte length has
//! arrived and before any of its body is read; a connection that finds no room waits (and stops
//! reading its socket, which pushes back through TCP) instead of allocating. Reserving the whole
//! frame at once means a reserved request can always be received to the end, so requests never
//! deadlock each holding part of what they need; a peer that reserves and then never sends is
//! cut off by `request.receive.timeout.ms`. A reservation lives until the request's first phase
//! has run (decoded, and for a Produce appended), as Kafka's pool releases a request's memory
//! once it is processed. The buffer itself grows only as bytes arrive.
//!
//! Requests larger than [`SMALL_REQUEST_BYTES`] may hold at most three quarters of the budget:
//! the last quarter is kept for ordinary requests, so that a few huge requests arriving slowly
//! cannot starve every other client of the broker. Waiters are served in order (tokio's
//! semaphore is fair).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::{MEMORY_UNIT_BYTES, SMALL_REQUEST_BYTES};
use crate::metrics::KAFKA;

/// The shared budget.
#[derive(Debug, Clone)]
pub struct RequestMemory {
    /// Every request draws from this: the whole budget.
    all: Arc<Semaphore>,
    /// Large requests first draw from this: three quarters of it.
    large: Arc<Semaphore>,
    total_units: usize,
}

/// Bytes reserved for one request; returned to the budget when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    _all: Option<OwnedSemaphorePermit>,
    _large: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Reservation {
    /// Bytes reserved.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self._all.is_some() {
            KAFKA.request_memory(-(self.bytes as i64));
        }
    }
}

fn units(bytes: usize) -> usize {
    bytes.div_ceil(MEMORY_UNIT_BYTES)
}

/// The largest request a budget of `total_bytes` can ever admit: a larger one would wait
/// forever.
pub const fn largest_admissible(total_bytes: usize) -> usize {
    let units = total_bytes.div_ceil(MEMORY_UNIT_BYTES);
    let units = if units < 4 { 4 } else { units };
    units / 4 * 3 * MEMORY_UNIT_BYTES
}

impl RequestMemory {
    /// A budget of `total_bytes`.
    pub fn new(total_bytes: usize) -> Self {
        let total_units = units(total_bytes).clamp(4, Semaphore::MAX_PERMITS);
        Self {
            all: Arc::new(Semaphore::new(total_units)),
            large: Arc::new(Semaphore::new(total_units / 4 * 3)),
            total_units,
        }
    }

    /// The budget in bytes.
    pub fn total_bytes(&self) -> usize {
        self.total_units * MEMORY_UNIT_BYTES
    }

    /// Bytes not reserved now.
    pub fn available_bytes(&self) -> usize {
        self.all.available_permits() * MEMORY_UNIT_BYTES
    }

    /// Reserves room for a request of `bytes`, waiting for it; `None` if the request is larger
    /// than the budget could ever admit.
    pub async fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let want = units(bytes);
        let large = bytes > SMALL_REQUEST_BYTES;
        let limit = if large {
            self.total_units / 4 * 3
        } else {
            self.total_units
        };
        if want > limit {
            return None;
        }
        // At most `Semaphore::MAX_PERMITS`, and the semaphores are never closed.
        let want = u32::try_from(want).ok()?;
        let large = if large {
            Some(
                Arc::clone(&self.large)
                    .acquire_many_owned(want)
                    .await
                    .ok()?,
            )
        } else {
            None
        };
        let all = Arc::clone(&self.all).acquire_many_owned(want).await.ok()?;
        KAFKA.request_memory(bytes as i64);
        Some(Reservation {
            _all: Some(all),
            _large: large,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: usize = 1 << 20;

    #[tokio::test]
    async fn large_requests_leave_a_quarter_for_small_ones() {
        let memory = RequestMemory::new(64 * MIB);
        let large = memory.reserve(40 * MIB).await.unwrap();
        assert_eq!(memory.available_bytes(), 24 * MIB);
        // A second large request waits: the large share (48 MiB) cannot hold it too.
        let waited =
            tokio::time::timeout(Duration::from_millis(50), memory.reserve(10 * MIB)).await;
        assert!(waited.is_err(), "the large share is full");
        // Small requests still fit, up to the whole budget.
        let small: Vec<Reservation> =
            futures::future::join_all((0..24).map(|_| memory.reserve(MIB)))
                .await
                .into_iter()
                .map(Option::unwrap)
                .collect();
        assert_eq!(memory.available_bytes(), 0);
        drop(large);
        assert_eq!(memory.available_bytes(), 40 * MIB);
        drop(small);
        assert_eq!(memory.available_bytes(), 64 * MIB);
    }

    #[tokio::test]
    async fn a_request_larger_than_the_large_share_is_refused() {
        let memory = RequestMemory::new(64 * MIB);
        assert!(memory.reserve(49 * MIB).await.is_none());
        assert_eq!(largest_admissible(64 * MIB), 48 * MIB);
        assert!(memory.reserve(48 * MIB).await.is_some());
    }
}
