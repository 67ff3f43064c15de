//! One client connection: requests are read and started in order, answered in order.
//!
//! Each request runs in two phases. The first runs on the reading task, in arrival order: it
//! decodes the request and does whatever must be ordered (a Produce appends its batches here).
//! It may hand back a second phase — waiting for an fsync, or a long-polling Fetch — which the
//! writing task awaits in order before writing the response. So a producer pipelining requests
//! gets its batches appended in order while their fsyncs are shared (group commit), and
//! responses always leave in request order, as Kafka clients require.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::broker::Broker;
use crate::frame::{FrameLimits, read_frame};
use crate::handlers::{self, HandleError};
use crate::limits::MAX_IN_FLIGHT_PER_CONNECTION;
use crate::metrics::KAFKA;
use crate::response::ResponseFrame;
use crate::security::gate::{Gate, Verdict};
use crate::security::{ListenerInfo, Session};
use crate::server::ServerConfig;
use crate::transport::{ReadHalf, Stream};

/// Bytes read from a connection ahead of the parser: one read takes whole small requests.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// The second phase of a request.
pub type Later = Pin<Box<dyn Future<Output = Result<ResponseFrame, HandleError>> + Send>>;

/// What the first phase of a request hands to the writer.
pub enum Reply {
    /// No response is sent (Produce with acks=0).
    None,
    /// The response is ready.
    Ready(ResponseFrame),
    /// The response comes when this future resolves.
    Later(Later),
}

/// When a connection last did something, and how many of its requests are unanswered: a
/// connection is idle (`connections.max.idle.ms`) only with nothing in flight.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
    /// Woken when a response is written or the writer stops.
    written: Notify,
    /// The writer stopped (a failed write or second phase): the connection is done.
    writer_gone: AtomicBool,
}

impl Activity {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why the wait for the next request ended.
enum Next {
    /// Its first bytes are there.
    Request,
    /// The peer closed, the socket failed, the connection idled out or shutdown began.
    Close,
}

/// Waits until the next request starts arriving, the connection has been idle for `idle`
/// (nothing received, nothing in flight), or shutdown. Bytes read while waiting stay in the
/// buffer, so stopping this wait never loses one. While requests are in flight there is no
/// idle timer: the wait is woken when their responses are written.
async fn next_request(
    reader: &mut BufReader<ReadHalf>,
    activity: &Activity,
    idle: Duration,
    peer: SocketAddr,
    shutdown: &mut watch::Receiver<bool>,
) -> Next {
    loop {
        if activity.writer_gone.load(Ordering::Acquire) {
            return Next::Close;
        }
        let written = activity.written.notified();
        let busy = activity.in_flight.load(Ordering::Acquire) > 0;
        let deadline = activity.last() + idle;
        tokio::select! {
            filled = reader.fill_buf() => return match filled {
                Ok([]) | Err(_) => Next::Close,
                Ok(_) => Next::Request,
            },
            _ = written, if busy => {}
            _ = tokio::time::sleep_until(deadline), if !busy => {
                if activity.in_flight.load(Ordering::Acquire) == 0 && activity.last() + idle <= Instant::now() {
                    tracing::debug!(%peer, "closing a connection idle for {idle:?} (connections.max.idle.ms)");
                    return Next::Close;
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => return Next::Close,
        }
    }
}

/// Serves one connection until the peer closes it, it misbehaves or idles out, or shutdown
/// begins; in-flight requests are always finished and answered before it returns.
///
/// A request's reservation in the broker's request memory budget ends once its first phase
/// has run (it is decoded and, for a Produce, appended): what waits after that holds no
/// request bytes. A response that the peer does not read for `connections.max.idle.ms` ends
/// the connection.
pub async fn serve<B: Broker>(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerInfo>,
    broker: Arc<B>,
    config: ServerConfig,
    limits: FrameLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Some((stream, session)) = secure(stream, peer, listener, &config).await else {
        return;
    };
    let mut gate = Gate::new(session.listener.sasl.clone());
    let pre_auth = FrameLimits {
        max_bytes: session
            .listener
            .sasl
            .as_ref()
            .map_or(limits.max_bytes, |s| {
                s.max_receive_size.min(limits.max_bytes)
            }),
        ..limits.clone()
    };
    let mut session = session;
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let (tx, mut rx) =
        mpsc::channel::<(Reply, Option<ApiKey>, std::time::Instant)>(MAX_IN_FLIGHT_PER_CONNECTION);
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
        written: Notify::new(),
        writer_gone: AtomicBool::new(false),
    });
    let written = Arc::clone(&activity);
    let write_timeout = config.connections_max_idle;
    let write_task = tokio::spawn(async move {
        let outcome = async {
            while let Some((reply, api, started)) = rx.recv().await {
                let frame = match reply {
                    Reply::None => None,
                    Reply::Ready(frame) => Some(frame),
                    Reply::Later(later) => match later.await {
                        Ok(frame) => Some(frame),
                        Err(e) => {
                            tracing::error!(%peer, "closing connection: {e}");
                            return;
                        }
                    },
                };
                if let Some(frame) = frame {
                    match tokio::time::timeout(write_timeout, frame.write_to(&mut writer)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "write failed, closing: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "closing a connection that read no response for {write_timeout:?}");
                            return;
                        }
                    }
                }
                if let Some(api) = api {
                    KAFKA.request_done(api, started);
                }
                written.in_flight.fetch_sub(1, Ordering::AcqRel);
                written.touch();
                written.written.notify_waiters();
            }
        };
        outcome.await;
        written.writer_gone.store(true, Ordering::Release);
        written.written.notify_waiters();
    });
    let mut first = true;
    loop {
        match next_request(
            &mut reader,
            &activity,
            config.connections_max_idle,
            peer,
            &mut shutdown,
        )
        .await
        {
            Next::Request => {}
            Next::Close => break,
        }
        if std::mem::take(&mut first) && looks_like_tls(reader.buffer(), &limits) {
            tracing::info!(%peer, listener = %session.listener.name, "closing connection: TLS ClientHello on a PLAINTEXT listener (a client with security.protocol=SSL?)");
            break;
        }
        // Before authentication a frame is bounded by sasl.server.max.receive.size.
        let bounds = if gate.unauthenticated() {
            &pre_auth
        } else {
            &limits
        };
        let frame = tokio::select! {
            frame = read_frame(&mut reader, bounds) => frame,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::info!(%peer, "closing connection: {e}");
                break;
            }
        };
        activity.touch();
        let started = std::time::Instant::now();
        let api = frame
            .body
            .get(..2)
            .and_then(|key| ApiKey::try_from(i16::from_be_bytes([key[0], key[1]])).ok());
        let (handled, close) = match gate.admit(&frame.body, &mut session, &broker) {
            Ok(Verdict::Serve) => (
                handlers::handle(&broker, &config, &session, frame.body),
                false,
            ),
            Ok(Verdict::Reply(reply)) => (Ok(reply), false),
            Ok(Verdict::ReplyAndClose(reply)) => (Ok(reply), true),
            Ok(Verdict::Close(reason)) => (Err(HandleError::Closed(reason)), true),
            Err(e) => (Err(e), true),
        };
        drop(frame.reservation);
        match handled {
            Ok(reply) => {
                activity.in_flight.fetch_add(1, Ordering::AcqRel);
                if tx.send((reply, api, started)).await.is_err() || close {
                    break;
                }
            }
            Err(e) => {
                tracing::info!(%peer, listener = %session.listener.name, "closing connection: {e}");
                break;
            }
        }
    }
    drop(tx);
    let _ = write_task.await;
}

/// Whether the first bytes of a connection are a TLS record (a ClientHello: content type 22,
/// version 3.x) rather than a Kafka request, whose size they would make too large anyway.
fn looks_like_tls(first: &[u8], limits: &FrameLimits) -> bool {
    match first {
        [0x16, 0x03, minor, ..] if *minor <= 4 => {
            let size = i32::from_be_bytes([0x16, 0x03, *minor, first.get(3).copied().unwrap_or(0)]);
            size as usize > limits.max_bytes
        }
        _ => false,
    }
}

/// Runs the TLS handshake on listeners that use TLS, and returns the stream with who the peer
/// is. `None`: the peer failed the handshake (a reason was logged).
async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerInfo>,
    config: &ServerConfig,
) -> Option<(Stream, Session)> {
    let Some(tls) = listener.tls.clone() else {
        return Some((Stream::Plain(stream), Session::anonymous(listener, peer)));
    };
    let name = listener.name.as_str();
    let handshake = async {
        // A TLS client speaks first, with a handshake record: anything else is a plaintext
        // client on the wrong port, which deserves a clearer log line than a TLS error.
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) => return Err("closed before the TLS handshake".to_owned()),
            Ok(_) if first[0] != 0x16 => {
                return Err("not TLS (a PLAINTEXT client on a TLS listener?)".to_owned());
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        tls.acceptor()
            .accept(stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))
    };
    let stream = match tokio::time::timeout(config.tls_handshake_timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            KAFKA.tls_handshake(name, "failed");
            tracing::info!(%peer, listener = %name, "closing connection: {e}");
            return None;
        }
        Err(_) => {
            KAFKA.tls_handshake(name, "timeout");
            tracing::info!(%peer, listener = %name, "closing connection: no TLS handshake within {:?}", config.tls_handshake_timeout);
            return None;
        }
    };
    let principal = match tls.principal(stream.get_ref().1) {
        Ok(principal) => principal,
        Err(e) => {
            KAFKA.tls_handshake(name, "failed");
            tracing::info!(%peer, listener = %name, "closing connection: {e}");
            return None;
        }
    };
    KAFKA.tls_handshake(name, "ok");
    tracing::debug!(%peer, listener = %name, %principal, "TLS connection");
    let mut session = Session::anonymous(listener, peer);
    session.principal = principal;
    Some((Stream::Tls(Box::new(stream)), session))
}
