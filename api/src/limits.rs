//! The named limits of the protocol server, gathered so that they can be read together.
//! Settings with a Kafka name (`socket.request.max.bytes`, `queued.max.request.bytes`,
//! `max.connections`, …) are in [`crate::ServerConfig`]; these are the fixed ones.

/// Requests of one connection whose responses are not written yet. Clients cap their own
/// in-flight requests (librdkafka 1M by default, 5 with idempotence); this bound keeps a
/// connection's memory finite whatever the client does, and pushes back through TCP.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;

/// First buffer of a frame body; it grows (doubling, never past the frame's size) only as
/// bytes arrive, so the memory of a half-sent request is what was sent.
pub const INITIAL_FRAME_BUFFER: usize = 64 * 1024;

/// Requests up to this size are "ordinary": clients' default request size limits are 1 MB
/// (librdkafka's `message.max.bytes`, Java's `max.request.size`). A quarter of
/// `queued.max.request.bytes` is kept for them (see [`crate::memory`]).
pub const SMALL_REQUEST_BYTES: usize = 2 << 20;

/// Granularity of the request memory budget (its semaphore counts these).
pub const MEMORY_UNIT_BYTES: usize = 1024;

/// Pause after a failed `accept` (out of descriptors, …) so the listener does not spin.
pub const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

const _: () = assert!(INITIAL_FRAME_BUFFER <= SMALL_REQUEST_BYTES);
const _: () = assert!(SMALL_REQUEST_BYTES.is_multiple_of(MEMORY_UNIT_BYTES));
