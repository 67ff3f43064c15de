//! Runs a node: the controller of the metadata quorum and/or the broker, which opens the data
//! directory, joins the cluster, binds the Kafka listener, runs the background tasks (flush
//! scheduler, retention, checkpoints, heartbeats, metadata) and shuts down cleanly.
//!
//! Shutdown order: stop accepting and reading requests, answer the ones in flight, stop the
//! background tasks, fsync every log, write the recovery checkpoint and the clean-shutdown
//! marker. The next start then skips recovery.

use std::sync::Arc;

use anyhow::Context;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_api::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use strata_controller::raft::{ControllerProbe, QuorumConfig};

use crate::broker::StrataBroker;
use crate::cli::cluster::{start_controller, watch_leader};
use crate::cluster;
use crate::config::{BrokerConfig, RemoteConfig};
use crate::dir_lock::DirLock;
use crate::health;
use crate::remote_log_manager::{RemoteLogManager, RemoteSettings};
use strata_tiering::ChunkCache;
use strata_tiering::store::StoreOptions;

/// Where a controller keeps its raft log, vote and snapshots, inside the data directory.
pub const CONTROLLER_DIR: &str = "__cluster_metadata";

/// The chunk cache of remote reads, inside the data directory.
pub const CHUNK_CACHE_DIR: &str = "remote-cache";
/// How long the startup check of the object store may take.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often recovery points are checkpointed (Kafka's `log.flush.offset.checkpoint.interval.ms`).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// How often leaders look for ISR changes (Kafka checks every `replica.lag.time.max.ms` / 2
/// for shrinks and at each fetch for expansion; this serves both).
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// How often group timers (sessions, rebalance phases) are checked.
const GROUP_TIMER_INTERVAL: Duration = Duration::from_millis(100);

/// Runs until `shutdown` turns true: the controller (if the node has that role), then the
/// broker (if it has that one). `on_listening` receives the bound Kafka address (useful with
/// port 0) once the broker has joined the cluster.
pub async fn run(
    mut config: BrokerConfig,
    shutdown: watch::Receiver<bool>,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    // Controller connections, served and made, are mutual TLS when CONTROLLER is SSL.
    if let Some((tls, keystore, truststore)) = &config.controller_tls {
        let context = Arc::new(
            strata_api::security::TlsContext::load("CONTROLLER", tls.clone())
                .map_err(|e| anyhow::anyhow!("the CONTROLLER listener: {e}"))?,
        );
        let props = std::collections::BTreeMap::from([
            ("security.protocol".to_owned(), "SSL".to_owned()),
            (
                "ssl.truststore.location".to_owned(),
                truststore.display().to_string(),
            ),
            (
                "ssl.keystore.location".to_owned(),
                keystore.display().to_string(),
            ),
        ]);
        let controller_tls = move |context: &strata_api::security::TlsContext| {
            let client = crate::kafka_client::ClientSecurity::from_properties(&props)
                .context("the CONTROLLER listener's client side")?
                .tls
                .context("TLS client settings")?;
            anyhow::Ok(strata_controller::raft::tls::ControllerTls {
                server: context.server_config(),
                client,
            })
        };
        strata_controller::raft::tls::set(controller_tls(&context)?);
        // Renewed certificates are taken up without a restart, as on the Kafka listeners.
        let (every, mut stop) = (tls.reload_interval, shutdown.clone());
        if !every.is_zero() {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    let renewed = context
                        .reload_if_changed()
                        .map_err(|e| anyhow::anyhow!(e))
                        .and_then(|changed| changed.then(|| controller_tls(&context)).transpose());
                    match renewed {
                        Ok(Some(tls)) => strata_controller::raft::tls::set(tls),
                        Ok(None) => {}
                        Err(e) => tracing::error!(
                            "CONTROLLER TLS certificates not reloaded, keeping the previous ones: {e:#}"
                        ),
                    }
                }
            });
        }
    }
    // Every connection this process makes to a broker of its cluster (replica fetches, the
    // admin API's fan-out) goes through the inter-broker listener, secured as it is.
    if config.broker_role {
        let security =
            crate::kafka_client::ClientSecurity::from_properties(&config.inter_broker_client.0)
                .context("the inter-broker listener's client settings")?;
        crate::kafka_client::security::set_default(security);
    }
    // The admin API fan-out (remote tier sizes, peers' traffic) asks the other nodes' admin
    // APIs: over https when ADMIN is SSL, as the inter-broker user.
    let login = (config.admin_api.peer_login.as_ref())
        .filter(|_| config.admin_api.auth.basic)
        .map(|(u, p)| (u.as_str(), p.as_str()));
    crate::cli::http::set_default(
        crate::cli::http::AdminHttp::new(config.admin_api.peer_ca.as_deref(), None, login)
            .context("the admin listener's CAs")?,
    );
    // Before anything reads or writes the directory (the controller's log lives inside it).
    let _lock = DirLock::acquire(&config.data_dir)?;
    // Every listener is bound before the node joins the quorum: a port in use stops the node
    // here, not after it has become a voter that then dies.
    let controller_listener = match config.controller_role {
        true => Some(bind("controller", config.controller_listener).await?),
        false => None,
    };
    let broker_listeners = match config.broker_role {
        true => {
            let mut kafka = Vec::with_capacity(config.kafka_listeners.len());
            for listener in &config.kafka_listeners {
                kafka.push(bind(&listener.name, listener.bind).await?);
            }
            Some((kafka, bind("admin", config.admin_listener).await?))
        }
        false => None,
    };
    // A controller-only node serves its health and metrics on the admin listener too.
    let controller_admin = match config.broker_role {
        false => Some(bind("admin", config.admin_listener).await?),
        true => None,
    };
    let controller = if let Some(listener) = controller_listener {
        let bound = listener.local_addr()?;
        // The first users of a new cluster: read only by a controller with no metadata yet,
        // so that the file of passwords can be removed once the cluster has formed.
        let metadata = config.data_dir.join(CONTROLLER_DIR);
        let bootstrap_records = match &config.bootstrap_users_file {
            Some(path) if !metadata.exists() => crate::cluster::scram::bootstrap_records(
                &crate::config::BootstrapUsers::load(path)
                    .map_err(|e| anyhow::anyhow!("bootstrap.scram.users.file: {e}"))?,
            ),
            _ => Vec::new(),
        };
        let quorum = QuorumConfig {
            snapshot_every: config.snapshot_every,
            snapshot_bytes: config.snapshot_bytes,
            broker_lease: config.session_timeout,
            leader_rebalance: config.leader_rebalance,
            leader_imbalance_percent: config.leader_imbalance_percent,
            bootstrap_records,
            ..QuorumConfig::default()
        };
        let controller = start_controller(
            config.node_id as u64,
            listener,
            &config.data_dir.join(CONTROLLER_DIR),
            config.voters.clone(),
            quorum,
            config.cluster_id.as_deref(),
            false,
        )
        .await?;
        Some((controller, bound))
    } else {
        None
    };
    let controllers: Vec<String> = match (&controller, config.voters.is_empty()) {
        (Some((_, bound)), true) => vec![bound.to_string()],
        _ => config.voters.values().cloned().collect(),
    };
    let (shutdown, failed) =
        stop_on_failure(shutdown, controller.as_ref().map(|(c, _)| c.failure()));
    let result = match controller {
        Some((controller, bound)) if !config.broker_role => {
            if let Some(admin) = controller_admin {
                println!("strata admin listening on {}", admin.local_addr()?);
                let state = Arc::new(ControllerAdmin {
                    probe: controller.probe(),
                    node_id: config.node_id,
                    data_dir: config.data_dir.clone(),
                });
                // SCRAM credentials live in brokers' metadata images: on a controller-only
                // node, Basic checks PLAIN users (and tokens work as anywhere).
                let security = admin_security(&config, Arc::new(|_, _| None), &shutdown)?;
                tokio::spawn(strata_api::admin::serve_controller_admin(
                    admin,
                    state,
                    security,
                    shutdown.clone(),
                ));
            }
            println!("strata controller listening on {bound}");
            watch_leader(&controller, shutdown).await;
            controller.shutdown().await;
            Ok(())
        }
        controller => {
            let (listener, admin) = broker_listeners.context("a node has at least one role")?;
            let probe = controller.as_ref().map(|(c, _)| c.probe());
            let result = run_broker(
                &mut config,
                (listener, admin),
                (controllers, probe),
                shutdown,
                on_listening,
            )
            .await;
            if let Some((controller, _)) = controller {
                controller.shutdown().await;
            }
            result
        }
    };
    match failure_cause(failed).await {
        Some(cause) => Err(anyhow::anyhow!(
            "the metadata log failed ({cause}); exiting so that a supervisor restarts this node"
        )),
        _ => result,
    }
}

/// The admin listener's https (ADMIN:SSL) and authentication, with SCRAM credentials from
/// `credentials` and the PLAIN users of the Kafka listeners.
fn admin_security(
    config: &BrokerConfig,
    credentials: strata_api::security::admin_auth::CredentialLookup,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<strata_api::admin::AdminSecurity> {
    let api = &config.admin_api;
    let tls = match &api.tls {
        Some(settings) => {
            let tls = Arc::new(
                strata_api::security::TlsContext::load("ADMIN", settings.clone())
                    .map_err(|e| anyhow::anyhow!("listener ADMIN: {e}"))?,
            );
            tokio::spawn(Arc::clone(&tls).watch(shutdown.clone()));
            Some(tls)
        }
        None => None,
    };
    if api.auth.enabled() && tls.is_none() && !config.admin_listener.ip().is_loopback() {
        tracing::warn!(
            "the admin API asks for passwords and tokens over plain http: set ADMIN:SSL in \
             listener.security.protocol.map so that they do not cross the network in clear"
        );
    }
    let plain = (config.kafka_listeners.iter())
        .filter_map(|l| l.sasl.as_ref())
        .map(|sasl| sasl.plain_users.clone())
        .collect();
    let auth =
        strata_api::security::admin_auth::AdminAuth::new(api.auth.clone(), credentials, plain);
    Ok(strata_api::admin::AdminSecurity {
        tls,
        auth: Arc::new(auth),
    })
}

/// What a controller-only node's admin listener reads.
struct ControllerAdmin {
    probe: ControllerProbe,
    node_id: i32,
    data_dir: std::path::PathBuf,
}

impl strata_api::admin::ControllerAdminState for ControllerAdmin {
    fn health(&self) -> strata_api::admin::Health {
        let check = |name: &str, result: Result<String, String>| strata_api::admin::Check {
            name: name.to_owned(),
            ok: result.is_ok(),
            detail: result.unwrap_or_else(|e| e),
        };
        strata_api::admin::Health::of(
            self.node_id,
            vec![
                check("controller", self.probe.core()),
                check("metadata_quorum", self.probe.quorum()),
            ],
        )
    }

    fn metrics(&self, openmetrics: bool) -> String {
        crate::metrics::render_controller(&self.probe, &self.data_dir, openmetrics)
    }
}

/// The cause of a failure that stopped the node, if one did (the task of [`stop_on_failure`]).
pub async fn failure_cause(task: tokio::task::JoinHandle<Option<String>>) -> Option<String> {
    if task.is_finished() {
        task.await.ok().flatten()
    } else {
        task.abort();
        None
    }
}

/// How long a node whose metadata log failed may take to shut down cleanly before it exits
/// anyway: a hung clean shutdown must not keep a half-alive node around.
const FAILED_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// A shutdown flag raised by `shutdown` or by the controller's `failure` (a storage fault in
/// the metadata log, which ends the raft core for good). The task yields the failure's cause.
pub fn stop_on_failure(
    mut shutdown: watch::Receiver<bool>,
    failure: Option<impl std::future::Future<Output = String> + Send + 'static>,
) -> (
    watch::Receiver<bool>,
    tokio::task::JoinHandle<Option<String>>,
) {
    let (stop, stopping) = watch::channel(false);
    let task = tokio::spawn(async move {
        let failure = async move {
            match failure {
                Some(failure) => failure.await,
                None => std::future::pending().await,
            }
        };
        let cause = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => None,
            cause = failure => Some(cause),
        };
        if let Some(cause) = &cause {
            tracing::error!("the metadata log failed, shutting down: {cause}");
            std::thread::spawn(|| {
                std::thread::sleep(FAILED_SHUTDOWN_DEADLINE);
                eprintln!(
                    "error: the metadata log failed and the clean shutdown took over {FAILED_SHUTDOWN_DEADLINE:?}; exiting"
                );
                std::process::exit(1);
            });
        }
        let _ = stop.send(true);
        cause
    });
    (stopping, task)
}

/// Binds a listener, naming it and the address when that fails.
async fn bind(name: &str, addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the {name} listener on {addr}"))
}

async fn run_broker(
    config: &mut BrokerConfig,
    (listeners, admin): (Vec<TcpListener>, TcpListener),
    (controllers, controller): (Vec<String>, Option<ControllerProbe>),
    shutdown: watch::Receiver<bool>,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    // Each listener with the security the protocol server applies to its connections.
    let mut served = Vec::with_capacity(listeners.len());
    for (socket, listener) in listeners.into_iter().zip(config.kafka_listeners.iter_mut()) {
        let bound = socket.local_addr()?;
        if listener.advertised.1 == 0 {
            listener.advertised.1 = bound.port();
        }
        let tls = match &listener.tls {
            Some(settings) => Some(Arc::new(
                strata_api::security::TlsContext::load(&listener.name, settings.clone())
                    .map_err(|e| anyhow::anyhow!("listener {}: {e}", listener.name))?,
            )),
            None => None,
        };
        served.push((
            socket,
            Arc::new(strata_api::security::ListenerInfo {
                name: listener.name.clone(),
                protocol: listener.protocol,
                tls,
                sasl: listener.sasl.clone().map(Arc::new),
            }),
        ));
    }
    let bound = served[0].0.local_addr()?;
    config.advertised = config.kafka_listeners[0].advertised.clone();
    if let Some(authorizer) = &config.authorizer
        && config.kafka_listeners[0].protocol == strata_api::security::SecurityProtocol::Plaintext
        && !authorizer.super_users.contains("User:ANONYMOUS")
    {
        tracing::warn!(
            listener = %config.kafka_listeners[0].name,
            "brokers reach each other on a PLAINTEXT listener as User:ANONYMOUS, which the authorizer \
             refuses replica fetches (CLUSTER_ACTION): other brokers cannot replicate from this one \
             unless User:ANONYMOUS is in super.users"
        );
    }
    // Registered beside the Kafka listener, so that nodes can ask each other's admin API.
    config.admin_listener = admin.local_addr()?;
    let server_config = ServerConfig {
        max_request_bytes: config.max_request_bytes,
        queued_max_request_bytes: config.queued_max_request_bytes,
        request_receive_timeout: config.request_receive_timeout,
        connections_max_idle: config.connections_max_idle,
        max_connections: config
            .max_connections
            .unwrap_or_else(|| default_max_connections(files_limit())),
        max_connections_per_ip: config.max_connections_per_ip,
        remote_fetch_max_wait: config.remote_fetch_max_wait,
        fetch_sessions: std::sync::Arc::new(strata_api::fetch_session::FetchSessions::new(
            config.fetch_session_slots,
            config.fetch_session_eviction,
        )),
        auto_create_topics: config.auto_create_topics,
        txn_partition_verification: config.txn_partition_verification,
        tls_handshake_timeout: config.tls_handshake_timeout,
    };
    tracing::info!(
        max_connections = server_config.max_connections,
        files = files_limit(),
        "connection limits"
    );
    let data_dir = config.data_dir.clone();
    let remote = match &config.remote {
        Some(settings) => Some(open_remote(&config.data_dir, settings).await?),
        None => None,
    };
    let opening = config.clone();
    let broker = Arc::new(
        tokio::task::spawn_blocking(move || StrataBroker::open(opening, controllers, remote))
            .await??,
    );
    if let Some(probe) = controller {
        broker.health().set_controller(probe);
    }
    // The admin API answers from the start (its health and readiness say "joining" meanwhile).
    // A machine-readable line for scripts and tests, before the Kafka one.
    println!("strata admin listening on {}", admin.local_addr()?);
    let credentials: strata_api::security::admin_auth::CredentialLookup = {
        let broker = Arc::clone(&broker);
        Arc::new(move |user, mechanism| {
            strata_api::broker::Broker::scram_credential(&*broker, user, mechanism)
        })
    };
    let security = admin_security(config, credentials, &shutdown)?;
    tokio::spawn(strata_api::admin::serve_admin(
        admin,
        Arc::clone(&broker),
        security,
        shutdown.clone(),
    ));
    cluster::join(&broker, &mut shutdown.clone()).await?;
    for (socket, info) in &served {
        let listener = broker
            .config()
            .kafka_listeners
            .iter()
            .find(|l| l.name == info.name)
            .context("every served listener is configured")?;
        let (host, port) = &listener.advertised;
        let bound = socket.local_addr()?;
        tracing::info!(listener = %info.name, protocol = %info.protocol, %bound, advertised = %format!("{host}:{port}"), data_dir = %data_dir.display(), "Kafka listener ready");
        // A machine-readable line per listener, for scripts and tests (on port 0).
        println!(
            "strata listener {} ({}) on {bound}",
            info.name, info.protocol
        );
    }
    on_listening(bound);

    let mut background = JoinSet::new();
    background.spawn(cluster::heartbeat_loop(Arc::clone(&broker)));
    background.spawn(cluster::follow_loop(Arc::clone(&broker)));
    background.spawn(crate::cluster_link::run(Arc::clone(&broker)));
    spawn_every(
        &mut background,
        Duration::from_millis(broker.config().flush_check_interval_ms),
        Arc::clone(&broker),
        |broker| async move {
            broker.replicas().flush_due().await;
        },
    );
    spawn_every(
        &mut background,
        Duration::from_millis(broker.config().retention_check_interval_ms),
        Arc::clone(&broker),
        |broker| async move {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let replicas = Arc::clone(&broker);
            let _ =
                tokio::task::spawn_blocking(move || replicas.replicas().apply_retention(now)).await;
        },
    );
    spawn_every(
        &mut background,
        CHECKPOINT_INTERVAL,
        Arc::clone(&broker),
        |broker| async move {
            if let Err(e) =
                tokio::task::spawn_blocking(move || broker.replicas().write_checkpoint()).await
            {
                tracing::error!("checkpoint task failed: {e}");
            }
        },
    );

    if broker.config().cleaner_enable {
        spawn_every(
            &mut background,
            Duration::from_millis(broker.config().cleaner_backoff_ms),
            Arc::clone(&broker),
            |broker| async move {
                let budget = broker.config().cleaner_buffer_bytes;
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let cleaning =
                    tokio::task::spawn_blocking(move || broker.replicas().clean_logs(budget, now));
                if let Err(e) = cleaning.await {
                    tracing::error!("cleaner task failed: {e}");
                }
            },
        );
    }
    if let Some(settings) = &broker.config().remote {
        // A bounded bucket lag needs passes at least twice as often as it.
        let interval = settings
            .max_lag
            .map_or(settings.interval, |lag| settings.interval.min(lag / 2));
        spawn_every(
            &mut background,
            interval,
            Arc::clone(&broker),
            |broker| async move { broker.replicas().tiering_pass().await },
        );
    }
    background.spawn(probe_health(Arc::clone(&broker)));
    spawn_every(
        &mut background,
        ISR_CHECK_INTERVAL,
        Arc::clone(&broker),
        |broker| async move { broker.maintain_isr().await },
    );
    spawn_every(
        &mut background,
        GROUP_TIMER_INTERVAL,
        Arc::clone(&broker),
        |broker| async move { broker.coordinator().run_group_timers() },
    );
    spawn_every(
        &mut background,
        broker.config().transactions.abort_check,
        Arc::clone(&broker),
        |broker| async move { broker.transactions().abort_timed_out().await },
    );
    spawn_every(
        &mut background,
        broker.config().coordinator.offsets_retention_check,
        Arc::clone(&broker),
        |broker| async move { broker.coordinator().expire_offsets().await },
    );
    // Connections answer their in-flight requests before closing; a JoinGroup could wait for
    // a whole rebalance timeout, so the coordinator answers those at once. The broker asks to
    // be fenced at once too (Kafka's controlled shutdown): its leaderships move while the
    // metadata is still followed, so produces waiting for the ISR end with
    // NOT_LEADER_OR_FOLLOWER instead of holding the shutdown until their timeout.
    let mut stopping = shutdown.clone();
    let coordinator = Arc::clone(&broker);
    let leaving = tokio::spawn(async move {
        if stopping.wait_for(|stop| *stop).await.is_ok() {
            coordinator.health().set_stopping();
            coordinator.groups_state().shutdown();
            cluster::leave(&coordinator).await;
        }
    });

    strata_api::serve(served, Arc::clone(&broker), server_config, shutdown).await;
    tracing::info!("listener closed, flushing logs");
    let _ = leaving.await;
    background.shutdown().await;
    broker.replicas().shutdown().await?;
    tracing::info!("clean shutdown complete");
    Ok(())
}

/// Probes the log directory and the object store for `/v1/health`, now and every
/// [`health::PROBE_INTERVAL`]. One object store probe at a time: a store that hangs gets no
/// pile of probes (on a hung local mount each would hold a blocking thread).
async fn probe_health(broker: Arc<StrataBroker>) {
    let mut ticks = tokio::time::interval(health::PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut store_probe: Option<(
        tokio::time::Instant,
        tokio::task::JoinHandle<Result<String, String>>,
    )> = None;
    loop {
        ticks.tick().await;
        let dir = broker.config().data_dir.clone();
        let probed = tokio::task::spawn_blocking(move || health::probe_dir(&dir))
            .await
            .unwrap_or_else(|e| Err(format!("the probe failed: {e}")));
        broker.health().log_dir_probed(probed);
        let Some(remote) = broker.remote() else {
            continue;
        };
        if let Some((started, probe)) = &mut store_probe {
            if !probe.is_finished() {
                if started.elapsed() > health::STORE_PROBE_TIMEOUT {
                    broker.health().object_store_probed(Err(format!(
                        "has not answered a probe for {:.0} s",
                        started.elapsed().as_secs_f64()
                    )));
                }
                continue;
            }
            let outcome = probe
                .await
                .unwrap_or_else(|e| Err(format!("the probe failed: {e}")));
            broker.health().object_store_probed(outcome);
        }
        let store = Arc::clone(remote.store());
        let probe = tokio::spawn(async move {
            match tokio::time::timeout(
                health::STORE_PROBE_TIMEOUT,
                strata_tiering::store::reachable(store.as_ref()),
            )
            .await
            {
                Ok(Ok(())) => Ok("reachable".to_owned()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "did not answer within {:?}",
                    health::STORE_PROBE_TIMEOUT
                )),
            }
        });
        store_probe = Some((tokio::time::Instant::now(), probe));
        // A store that answers at once is reported at once, not a tick later.
        if let Some((_, probe)) = &mut store_probe
            && let Ok(outcome) = tokio::time::timeout(PROMPT_PROBE, probe).await
        {
            broker.health().object_store_probed(
                outcome.unwrap_or_else(|e| Err(format!("the probe failed: {e}"))),
            );
            store_probe = None;
        }
    }
}

/// How long a health tick waits for its object store probe before leaving it running.
const PROMPT_PROBE: Duration = Duration::from_secs(1);

/// The file descriptor limit (`RLIMIT_NOFILE`), soft.
pub fn files_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
}

/// Raises the soft file descriptor limit to the hard one, as the Go runtime and Kafka's
/// packaged units do: segments, indexes and connections all hold descriptors, and the common
/// soft default of 1024 is far too few for a broker. Returns the limit in force.
pub fn raise_files_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the file descriptor limit from {soft} to {hard}: {e}");
    }
    files_limit()
}

/// `max.connections` when not set: half the descriptors, so that connections alone can never
/// take the ones segments, indexes and the metadata log need (a node out of descriptors
/// cannot write its metadata log and must restart).
fn default_max_connections(files: u64) -> usize {
    usize::try_from(files / 2).unwrap_or(usize::MAX).max(16)
}

/// Opens the object store (checking it works: a wrong bucket, bad credentials or an
/// unreachable store stop the broker at startup with the store's message) and the chunk cache.
async fn open_remote(
    data_dir: &std::path::Path,
    settings: &RemoteConfig,
) -> anyhow::Result<Arc<RemoteLogManager>> {
    let options = StoreOptions {
        request_timeout: settings.store_timeout,
        operation_timeout: settings.store_timeout,
        ..StoreOptions::default()
    };
    let store = strata_tiering::store::open(&settings.url, &options)
        .map_err(|e| anyhow::anyhow!("remote.log.storage.url={}: {e}", settings.url))?;
    match tokio::time::timeout(
        STORE_PROBE_TIMEOUT,
        strata_tiering::store::probe(store.as_ref()),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let failure = e.to_string();
            match strata_tiering::store::explain_missing_credentials(&settings.url, &failure) {
                Some(explained) => anyhow::bail!("remote.log.storage.url: {explained}"),
                None => anyhow::bail!("remote.log.storage.url={}: {failure}", settings.url),
            }
        }
        Err(_) => anyhow::bail!(
            "remote.log.storage.url={}: the object store did not answer within {STORE_PROBE_TIMEOUT:?}",
            settings.url
        ),
    }
    let cache = ChunkCache::new(
        data_dir.join(CHUNK_CACHE_DIR),
        settings.cache_bytes,
        settings.memory_bytes,
    )?;
    tracing::info!(url = %settings.url, "tiered storage on");
    Ok(Arc::new(RemoteLogManager::new(
        store,
        cache,
        RemoteSettings {
            chunk_bytes: settings.chunk_bytes,
            compression_level: settings.compression_level,
            concurrency: settings.concurrency,
            bytes_per_second: settings.bytes_per_second,
            max_lag: settings.max_lag,
        },
    )))
}

fn spawn_every<F, Fut>(
    tasks: &mut JoinSet<()>,
    period: Duration,
    broker: Arc<StrataBroker>,
    work: F,
) where
    F: Fn(Arc<StrataBroker>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tasks.spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            work(Arc::clone(&broker)).await;
        }
    });
}
