//! The controller listener: raft RPCs between controllers, and the two requests of controller
//! clients (append records, report status), as length-prefixed JSON frames over TCP. Peers keep
//! one connection each, reconnected on failure.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::active::{self, ActiveState, Heartbeat, HeartbeatAnswer};
use super::admin::{self, AdminReply, AdminRequest, Invalid};
use super::tls::Stream;
use super::{ApplyResult, MetadataUpdate, NodeId, RecordBatch, StateMachine, TypeConfig};

/// Largest frame accepted: a snapshot chunk or a batch of entries, never more.
const MAX_FRAME: usize = 256 << 20;
/// Longest long poll of the metadata log.
const MAX_WAIT_MS: u64 = 30_000;

/// A request on the controller listener.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client asks to commit records (only the leader accepts).
    Write(RecordBatch),
    /// A client asks how this controller sees the quorum.
    Status,
    /// A broker's heartbeat (the active controller registers and leases it).
    BrokerHeartbeat(Heartbeat),
    /// A request only the active controller serves.
    Admin(AdminRequest),
    /// The active controller tells a voter it removed from the quorum.
    Removed {
        /// The removed node.
        id: NodeId,
    },
    /// A broker asks for the metadata log after its offset (any controller answers).
    FetchMetadata {
        /// The offset of the broker's image.
        after: u64,
        /// How long to wait for something new (a long poll).
        #[serde(default)]
        wait_ms: u64,
    },
}

/// Its answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Write(Result<ApplyResult, WriteRefusal>),
    Status(QuorumStatus),
    BrokerHeartbeat(Result<HeartbeatAnswer, WriteRefusal>),
    Admin(Result<AdminReply, WriteRefusal>),
    FetchMetadata(MetadataUpdate),
    Removed,
}

/// Why a write was not committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WriteRefusal {
    /// Ask the leader instead (its id and address, when known).
    #[error("not the active controller; the leader is {0:?}")]
    NotLeader(Option<(NodeId, String)>),
    /// The request is invalid.
    #[error("{0}")]
    Invalid(Invalid),
    /// Raft failed.
    #[error("{0}")]
    Failed(String),
}

/// One voter as a controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterStatus {
    /// Id.
    pub id: NodeId,
    /// Controller address.
    pub addr: String,
    /// Last log index known replicated to it (the leader's view; `None` elsewhere).
    pub matched: Option<u64>,
}

/// How one controller sees the quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    /// The controller answering.
    pub id: NodeId,
    /// Leader, candidate, follower or learner.
    pub role: String,
    /// The active controller, if known.
    pub leader: Option<NodeId>,
    /// On the leader: how long ago a majority of voters last acknowledged it. A leader whose
    /// majority went silent still calls itself leader, but can commit nothing.
    #[serde(default)]
    pub quorum_ack_ms: Option<u64>,
    /// Raft term.
    pub term: u64,
    /// Last index in its log.
    pub last_log_index: Option<u64>,
    /// Last index applied to its image.
    pub applied: Option<u64>,
    /// Index of its latest snapshot.
    pub snapshot: Option<u64>,
    /// The voters.
    pub voters: Vec<VoterStatus>,
    /// Topics in its image.
    pub topics: usize,
    /// Partitions in its image.
    pub partitions: usize,
    /// Registered brokers.
    pub brokers: Vec<BrokerStatus>,
    /// Partitions whose ISR lacks a replica.
    #[serde(default)]
    pub under_replicated: usize,
    /// Partitions without a leader, as `topic-partition`, at most [`LISTED_OFFLINE`] of them.
    #[serde(default)]
    pub offline: Vec<String>,
    /// Partitions without a leader, in all.
    #[serde(default)]
    pub offline_count: usize,
    /// Reassignments in progress.
    #[serde(default)]
    pub reassigning: usize,
    /// On the active controller: the brokers that heartbeat to it, which observe the quorum.
    #[serde(default)]
    pub observers: Vec<super::active::Observer>,
}

/// Offline partitions a status names (the count covers the rest).
pub const LISTED_OFFLINE: usize = 20;

/// A registered broker as a controller's image has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatus {
    /// Broker id.
    pub id: i32,
    /// Fenced brokers lead nothing.
    pub fenced: bool,
    /// Rack.
    pub rack: Option<String>,
    /// Partitions it leads.
    pub leaders: usize,
    /// Partitions it holds a replica of.
    pub replicas: usize,
    /// Of those, replicas outside the ISR.
    #[serde(default)]
    pub out_of_sync: usize,
}

async fn write_frame<T: Serialize>(stream: &mut Box<dyn Stream>, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    stream.flush().await
}

async fn read_frame<T: DeserializeOwned>(stream: &mut Box<dyn Stream>) -> io::Result<T> {
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raft frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Fills in the leader of a `NotLeader` refusal that did not name one.
fn with_hint(raft: &Raft<TypeConfig>, refusal: WriteRefusal) -> WriteRefusal {
    match refusal {
        WriteRefusal::NotLeader(None) => {
            let metrics = raft.metrics().borrow().clone();
            let leader = metrics.current_leader.and_then(|id| {
                metrics
                    .membership_config
                    .membership()
                    .get_node(&id)
                    .map(|n| (id, n.addr.clone()))
            });
            WriteRefusal::NotLeader(leader)
        }
        other => other,
    }
}

/// Commits a client's records through this controller if it leads.
pub(crate) async fn write(
    raft: &Raft<TypeConfig>,
    batch: RecordBatch,
) -> Result<ApplyResult, WriteRefusal> {
    match raft.client_write(batch).await {
        Ok(response) => Ok(response.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => Err(
            WriteRefusal::NotLeader(forward.leader_id.zip(forward.leader_node.map(|n| n.addr))),
        ),
        Err(e) => Err(WriteRefusal::Failed(e.to_string())),
    }
}

/// This controller's view of the quorum.
pub(crate) fn status(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    active: &ActiveState,
) -> QuorumStatus {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters = membership
        .voter_ids()
        .map(|id| VoterStatus {
            id,
            addr: membership
                .get_node(&id)
                .map_or(String::new(), |n| n.addr.clone()),
            matched: metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).copied().flatten())
                .map(|l| l.index),
        })
        .collect();
    let (topics, partitions, brokers) = state.with_image(|i| {
        (
            i.topics.len(),
            i.partition_count(),
            i.brokers
                .values()
                .map(|b| {
                    let partitions = i.topics.values().flat_map(|t| t.partitions.values());
                    let (mut leaders, mut replicas, mut out_of_sync) = (0, 0, 0);
                    for p in partitions {
                        leaders += usize::from(p.leader == b.id);
                        if p.replicas.contains(&b.id) {
                            replicas += 1;
                            out_of_sync += usize::from(!p.isr.contains(&b.id));
                        }
                    }
                    BrokerStatus {
                        id: b.id,
                        fenced: b.fenced,
                        rack: b.rack.clone(),
                        leaders,
                        replicas,
                        out_of_sync,
                    }
                })
                .collect(),
        )
    });
    let (mut under_replicated, mut offline, mut offline_count, mut reassigning) =
        (0, Vec::new(), 0, 0);
    state.with_image(|i| {
        for t in i.topics.values() {
            for (index, p) in &t.partitions {
                under_replicated += usize::from(p.isr.len() < p.replicas.len());
                reassigning += usize::from(p.reassigning());
                if p.leader < 0 {
                    offline_count += 1;
                    if offline.len() < LISTED_OFFLINE {
                        offline.push(format!("{}-{index}", t.name));
                    }
                }
            }
        }
    });
    QuorumStatus {
        id: metrics.id,
        role: format!("{:?}", metrics.state),
        leader: metrics.current_leader,
        quorum_ack_ms: metrics.millis_since_quorum_ack,
        term: metrics.current_term,
        last_log_index: metrics.last_log_index,
        applied: metrics.last_applied.map(|l| l.index),
        snapshot: metrics.snapshot.map(|l| l.index),
        voters,
        topics,
        partitions,
        brokers,
        under_replicated,
        offline,
        offline_count,
        reassigning,
        observers: if metrics.current_leader == Some(metrics.id) {
            active.leases.observers()
        } else {
            Vec::new()
        },
    }
}

/// How long the active controller tries to tell a removed voter about its removal.
const TELL_REMOVED_TIMEOUT: Duration = Duration::from_secs(3);

/// Tells the controller at `addr` that it is no longer a voter (best effort: a controller that
/// is down hears nothing, and stays out once it returns, as it is no longer replicated to).
pub(crate) async fn tell_removed(addr: &str, id: NodeId) {
    let rpc = Rpc::Removed { id };
    match tokio::time::timeout(TELL_REMOVED_TIMEOUT, client_call(addr, &rpc)).await {
        Ok(Ok(Reply::Removed)) => tracing::info!(node = id, %addr, "told the removed voter"),
        Ok(Ok(_)) => tracing::warn!(node = id, %addr, "the removed voter answered oddly"),
        Ok(Err(e)) => tracing::info!(node = id, %addr, "could not tell the removed voter: {e}"),
        Err(_) => tracing::info!(node = id, %addr, "the removed voter did not answer"),
    }
}

/// Answers peers and clients until the listener fails. `retired` turns true once the active
/// controller says this one was removed from the quorum.
pub async fn serve(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    state: StateMachine,
    active: ActiveState,
    retired: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("controller listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let raft = raft.clone();
        let state = state.clone();
        let active = active.clone();
        let retired = std::sync::Arc::clone(&retired);
        tokio::spawn(async move {
            // With TLS on, nothing is read before the peer proved its certificate.
            let mut stream = match super::tls::accept(tcp).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::info!(%peer, "controller connection refused: {e}");
                    return;
                }
            };
            loop {
                let rpc: Rpc = match read_frame(&mut stream).await {
                    Ok(rpc) => rpc,
                    Err(e) => {
                        if e.kind() != io::ErrorKind::UnexpectedEof {
                            tracing::debug!(%peer, "controller connection closed: {e}");
                        }
                        return;
                    }
                };
                let reply = match rpc {
                    Rpc::AppendEntries(rpc) => Reply::AppendEntries(raft.append_entries(rpc).await),
                    Rpc::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
                    Rpc::InstallSnapshot(rpc) => {
                        Reply::InstallSnapshot(raft.install_snapshot(rpc).await)
                    }
                    Rpc::Write(batch) => Reply::Write(write(&raft, batch).await),
                    Rpc::Status => Reply::Status(status(&raft, &state, &active)),
                    Rpc::BrokerHeartbeat(beat) => Reply::BrokerHeartbeat(
                        active::heartbeat(&raft, &state, &active, beat)
                            .await
                            .map_err(|e| with_hint(&raft, e)),
                    ),
                    Rpc::FetchMetadata { after, wait_ms } => Reply::FetchMetadata(
                        state
                            .updates_after_wait(
                                after,
                                Duration::from_millis(wait_ms.min(MAX_WAIT_MS)),
                            )
                            .await,
                    ),
                    Rpc::Removed { id } => {
                        if id == raft.metrics().borrow().id && !*retired.borrow() {
                            tracing::warn!(
                                node = id,
                                "this controller was removed from the metadata quorum and has \
                                 stopped taking part in it: stop it, and delete its metadata \
                                 directory before adding it back with `strata cluster add-voter`"
                            );
                            retired.send_replace(true);
                            // Not on this task: shutting raft down waits for its core.
                            let raft = raft.clone();
                            tokio::spawn(async move { raft.shutdown().await });
                        }
                        Reply::Removed
                    }
                    Rpc::Admin(request) => Reply::Admin(
                        admin::handle(&raft, &state, &active, request)
                            .await
                            .map_err(|e| with_hint(&raft, e)),
                    ),
                };
                if write_frame(&mut stream, &reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Connects to peers by the address in their `BasicNode`.
#[derive(Debug, Clone, Default)]
pub struct Network;

/// A connection to one peer.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    stream: Option<Box<dyn Stream>>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("target", &self.target)
            .field("addr", &self.addr)
            .field("connected", &self.stream.is_some())
            .finish()
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            stream: None,
        }
    }
}

/// Why a call to a peer failed.
#[derive(Debug)]
enum CallError {
    /// No connection could be made: the peer is down or unreachable. openraft backs off.
    Unreachable(io::Error),
    /// The connection failed mid-call; the next call reconnects at once.
    Network(io::Error),
}

impl PeerClient {
    /// Sends one RPC and reads its reply, reconnecting first if needed.
    ///
    /// Cancel-safe: openraft drops a call that outlives its RPC timeout. The connection is
    /// held outside `self` while a call is in flight and put back only once its reply has been
    /// read, so a dropped call takes its connection with it. Put back early, the cancelled
    /// request's reply would be read as the next request's: a success for fewer entries than
    /// the leader then believes the follower holds.
    async fn call(&mut self, rpc: &Rpc) -> Result<Reply, CallError> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self.connect().await?,
        };
        let reply = async {
            write_frame(&mut stream, rpc).await?;
            read_frame(&mut stream).await
        }
        .await
        .map_err(CallError::Network)?;
        self.stream = Some(stream);
        Ok(reply)
    }

    /// A new connection to the peer.
    async fn connect(&self) -> Result<Box<dyn Stream>, CallError> {
        let addr: SocketAddr = self.addr.parse().map_err(|e| {
            CallError::Unreachable(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {e}", self.addr),
            ))
        })?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(CallError::Unreachable)?;
        let _ = tcp.set_nodelay(true);
        super::tls::connect(tcp, &self.addr)
            .await
            .map_err(CallError::Unreachable)
    }
}

/// Backoff of calls to a peer that cannot be connected to: quick at first (a restarted voter
/// is back within a heartbeat or two), then at most a few a second. Without it a refused
/// connection is retried at once, forever: one dead voter once cost the leader a whole core.
const UNREACHABLE_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause between attempts to reach a peer that is down.
const UNREACHABLE_BACKOFF_MAX: Duration = Duration::from_millis(1000);

fn unreachable<E: std::error::Error>(e: CallError) -> RPCError<NodeId, BasicNode, E> {
    match e {
        CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
        CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
    }
}

fn protocol_error(what: &str) -> CallError {
    CallError::Network(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected reply to {what}"),
    ))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    fn backoff(&self) -> Backoff {
        let mut next = UNREACHABLE_BACKOFF_MIN;
        Backoff::new(std::iter::from_fn(move || {
            let now = next;
            next = (next * 2).min(UNREACHABLE_BACKOFF_MAX);
            Some(now)
        }))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(&Rpc::AppendEntries(rpc)).await {
            Ok(Reply::AppendEntries(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unreachable(protocol_error("AppendEntries"))),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.call(&Rpc::InstallSnapshot(rpc)).await {
            Ok(Reply::InstallSnapshot(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unreachable(protocol_error("InstallSnapshot"))),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(&Rpc::Vote(rpc)).await {
            Ok(Reply::Vote(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unreachable(protocol_error("Vote"))),
            Err(e) => Err(unreachable(e)),
        }
    }
}

/// One request from a controller client to the controller at `addr`.
pub(crate) async fn client_call(addr: &str, rpc: &Rpc) -> io::Result<Reply> {
    client_call_within(addr, rpc, CLIENT_CALL_TIMEOUT).await
}

/// How long one client call may take: a controller that is paused (SIGSTOP) or cut off
/// still accepts connections in the kernel and never answers; without a bound, heartbeats,
/// metadata fetches and admin requests would wait on it forever instead of trying another.
pub(crate) const CLIENT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// [`client_call`] bounded by `timeout`.
pub(crate) async fn client_call_within(
    addr: &str,
    rpc: &Rpc,
    timeout: Duration,
) -> io::Result<Reply> {
    let call = async {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let mut stream = super::tls::connect(tcp, addr).await?;
        write_frame(&mut stream, rpc).await?;
        read_frame(&mut stream).await
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{addr} did not answer within {timeout:?}"),
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use openraft::network::RPCOption;
    use openraft::raft::{VoteRequest, VoteResponse};
    use openraft::{RaftNetwork, Vote};
    use tokio::net::TcpListener;

    use super::{PeerClient, Reply, Rpc, read_frame, write_frame};

    /// A peer that answers each vote request with the request's own vote, late for term 1.
    async fn echo_peer() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut stream = super::super::tls::accept(tcp).await.unwrap();
                    while let Ok(Rpc::Vote(request)) = read_frame::<Rpc>(&mut stream).await {
                        if request.vote.leader_id.term == 1 {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        let reply = Reply::Vote(Ok(VoteResponse::new(request.vote, None, true)));
                        if write_frame(&mut stream, &reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_call_dropped_at_its_timeout_never_answers_the_next_one() {
        let mut client = PeerClient {
            target: 2,
            addr: echo_peer().await,
            stream: None,
        };
        let option = || RPCOption::new(Duration::from_secs(5));
        // Connected first, so that the timed-out call below is surely written and waiting.
        let warm = client
            .vote(VoteRequest::new(Vote::new(5, 1), None), option())
            .await
            .expect("an answer");
        assert_eq!(warm.vote, Vote::new(5, 1));
        let late = client.vote(VoteRequest::new(Vote::new(1, 1), None), option());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), late)
                .await
                .is_err(),
            "the first call outlives its timeout"
        );
        // The peer's late answer to term 1 comes while this call waits for its own.
        let response = client
            .vote(VoteRequest::new(Vote::new(2, 1), None), option())
            .await
            .expect("an answer");
        assert_eq!(response.vote, Vote::new(2, 1), "the answer to this call");
    }
}
