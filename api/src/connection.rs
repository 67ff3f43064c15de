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
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::broker::Broker;
use crate::frame::read_frame;
use crate::handlers::{self, HandleError};
use crate::response::ResponseFrame;
use crate::server::ServerConfig;

/// Requests of one connection whose responses are not written yet. Clients cap their own
/// in-flight requests (librdkafka 1M by default, 5 with idempotence); this bound keeps a
/// connection's memory finite whatever the client does, and pushes back through TCP.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;

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

/// Serves one connection until the peer closes it, it misbehaves, or shutdown begins; in-flight
/// requests are always finished and answered before it returns.
pub async fn serve<B: Broker>(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<B>,
    config: ServerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Reply>(MAX_IN_FLIGHT_PER_CONNECTION);
    let write_task = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let frame = match reply {
                Reply::None => continue,
                Reply::Ready(frame) => frame,
                Reply::Later(later) => match later.await {
                    Ok(frame) => frame,
                    Err(e) => {
                        tracing::error!(%peer, "closing connection: {e}");
                        return;
                    }
                },
            };
            if let Err(e) = frame.write_to(&mut writer).await {
                tracing::debug!(%peer, "write failed, closing: {e}");
                return;
            }
        }
    });
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, config.max_request_bytes) => frame,
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
        match handlers::handle(&broker, &config, peer, frame) {
            Ok(reply) => {
                if tx.send(reply).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::info!(%peer, "closing connection: {e}");
                break;
            }
        }
    }
    drop(tx);
    let _ = write_task.await;
}
