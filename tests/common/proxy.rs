//! A TCP proxy in front of one broker's Kafka listener (the broker advertises the proxy, so
//! clients and other brokers' followers all come through it) that can cut replication alone:
//! a connection whose first request names the follower fetcher's client id is a replication
//! link, and while cut such links are closed and refused; clients pass on.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The client id Strata's follower fetcher connects with.
const REPLICA_CLIENT_ID: &[u8] = b"strata-replica-fetcher";

/// A running proxy.
pub struct LinkProxy {
    /// Where it listens (what the broker advertises).
    pub addr: String,
    target: Arc<Mutex<Option<String>>>,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// A proxy on a free loopback port; it forwards once [`Self::set_target`] names the broker.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let target: Arc<Mutex<Option<String>>> = Arc::default();
        let (cut, _) = watch::channel(false);
        let task = tokio::spawn(accept(listener, Arc::clone(&target), cut.clone()));
        Self {
            addr,
            target,
            cut,
            task,
        }
    }

    /// The broker's real listener.
    pub fn set_target(&self, addr: &str) {
        *self.target.lock().unwrap() = Some(addr.to_owned());
    }

    /// Cuts (`true`) or heals (`false`) the replication links through this proxy.
    pub fn cut_replication(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    target: Arc<Mutex<Option<String>>>,
    cut: watch::Sender<bool>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let target = target.lock().unwrap().clone();
        let cut = cut.subscribe();
        tokio::spawn(async move {
            if let Some(target) = target {
                let _ = forward(client, &target, cut).await;
            }
        });
    }
}

/// Forwards one connection, classified by the client id of its first request.
async fn forward(
    mut client: TcpStream,
    target: &str,
    mut cut: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let size = client.read_i32().await? as usize;
    let mut first = vec![0u8; size];
    client.read_exact(&mut first).await?;
    // Request header: api key (2), version (2), correlation id (4), client id (i16 length).
    let replication = first.len() >= 10 && {
        let len = i16::from_be_bytes([first[8], first[9]]).max(0) as usize;
        first.get(10..10 + len) == Some(REPLICA_CLIENT_ID)
    };
    if replication && *cut.borrow() {
        return Ok(());
    }
    let mut server = TcpStream::connect(target).await?;
    server.write_all(&(size as i32).to_be_bytes()).await?;
    server.write_all(&first).await?;
    if !replication {
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        return Ok(());
    }
    tokio::select! {
        result = tokio::io::copy_bidirectional(&mut client, &mut server) => result.map(|_| ()),
        _ = cut.wait_for(|cut| *cut) => Ok(()),
    }
}
