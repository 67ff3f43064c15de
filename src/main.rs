//! The `strata` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata::cli::Output;
use strata::config::{BrokerConfig, Override};
use strata::logging::LogFormat;
use tokio::sync::watch;

/// Strata: a Kafka-compatible, tiered-storage event streaming broker.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`); `RUST_LOG`, when set, wins.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// How log lines are written to stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// How admin commands print their answer: text for people, json for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Kafka client properties for the tools' connections (`security.protocol`, `ssl.*`,
    /// `sasl.*`), as `kafka-topics.sh --command-config` reads them.
    #[arg(long, global = true, env = "STRATA_COMMAND_CONFIG")]
    command_config: Option<PathBuf>,
    /// The CA of the admin API's certificate (PEM), for `--admin https://…` (ADMIN:SSL).
    #[arg(long, global = true, env = "STRATA_ADMIN_CA")]
    admin_ca: Option<PathBuf>,
    /// A bearer token for the admin API (`admin.api.authentication=token`).
    #[arg(
        long,
        global = true,
        env = "STRATA_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// A user for the admin API (`admin.api.authentication=basic`); the password is read from
    /// STRATA_ADMIN_PASSWORD.
    #[arg(long, global = true, env = "STRATA_ADMIN_USER")]
    admin_user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a single combined node (broker and lone controller) on the embedded defaults.
    Dev(DevArgs),
    /// Run a node as `process.roles` says (broker, controller or both) from a config file.
    Run(DevArgs),
    /// Run one voter of the metadata quorum (KRaft-style controller).
    Controller(ControllerArgs),
    /// The metadata quorum as its controllers see it.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Node configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Tiered storage of a running broker: each partition's two tiers and upload backlog.
    Tiering {
        /// The broker's admin API, host:port.
        #[arg(long, default_value = "127.0.0.1:9644", global = true)]
        admin: String,
        #[command(subcommand)]
        command: TieringCommand,
    },
    /// Cluster links: mirror another Kafka-compatible cluster's topics here, at their offsets.
    Link {
        /// A node's admin API, host:port.
        #[arg(long, default_value = "127.0.0.1:9644", global = true)]
        admin: String,
        #[command(subcommand)]
        command: strata::cli::link::LinkCommand,
    },
    /// Mirror topics of a link: fail over (source lost) or promote (planned).
    Mirror {
        /// A node's admin API, host:port.
        #[arg(long, default_value = "127.0.0.1:9644", global = true)]
        admin: String,
        #[command(subcommand)]
        command: strata::cli::link::MirrorCommand,
    },
    /// Partitions of a running cluster (any Kafka-compatible one) and their replicas.
    Partitions {
        /// A broker to ask, host:port.
        #[arg(long, default_value = "127.0.0.1:9092", global = true)]
        bootstrap: String,
        #[command(subcommand)]
        command: PartitionsCommand,
    },
    /// Consumer groups of a running cluster (any Kafka-compatible one): lag, offsets, deletion.
    Groups {
        #[command(flatten)]
        at: Bootstrap,
        #[command(subcommand)]
        command: strata::cli::groups::GroupsCommand,
    },
    /// Topics of a running cluster (any Kafka-compatible one): create, list, describe, alter.
    Topic {
        #[command(flatten)]
        at: Bootstrap,
        #[command(subcommand)]
        command: strata::cli::topic::TopicCommand,
    },
    /// ACLs of a running cluster (any Kafka-compatible one with an authorizer).
    Acl {
        #[command(flatten)]
        at: Bootstrap,
        #[command(subcommand)]
        command: strata::cli::acl::AclCommand,
    },
    /// SCRAM users of a running cluster (any Kafka-compatible one): create, delete, list.
    User {
        #[command(flatten)]
        at: Bootstrap,
        #[command(subcommand)]
        command: strata::cli::user::UserCommand,
    },
    /// Produce the lines of stdin to a topic, one record each.
    Produce {
        #[command(flatten)]
        at: Bootstrap,
        #[command(flatten)]
        args: strata::cli::produce::ProduceArgs,
    },
    /// Print a topic's records.
    Consume {
        #[command(flatten)]
        at: Bootstrap,
        #[command(flatten)]
        args: strata::cli::consume::ConsumeArgs,
    },
    /// Make a bearer token for the admin API: prints the token, for its holder, and the line
    /// that lets it in, for `admin.api.tokens.file` (which keeps only its SHA-256).
    AdminToken {
        /// Who holds it: the principal is User:<name>.
        #[arg(long)]
        name: String,
        /// admin, or viewer (only reads).
        #[arg(long, default_value = "viewer")]
        role: String,
    },
}

/// Where the Kafka-protocol tools find the cluster.
#[derive(clap::Args)]
struct Bootstrap {
    /// A broker to ask, host:port.
    #[arg(
        long,
        env = "STRATA_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    bootstrap: String,
}

#[derive(clap::Args)]
struct ControllerArgs {
    /// This controller's node id.
    #[arg(long)]
    node_id: u64,
    /// Controller listener address; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:9093")]
    listen: String,
    /// Where the raft log, vote and snapshots live.
    #[arg(long)]
    data_dir: PathBuf,
    /// Every voter as id@host:port, comma-separated (this one included).
    #[arg(long, value_delimiter = ',', required = true)]
    voters: Vec<String>,
    /// Take a snapshot of the metadata image after this many log entries.
    #[arg(long, default_value_t = 20_000)]
    snapshot_every: u64,
    /// ... or once the log since the last snapshot holds this many bytes.
    #[arg(long, default_value_t = 20 << 20)]
    snapshot_bytes: u64,
    /// Log entries kept behind a snapshot for followers slightly behind.
    #[arg(long, default_value_t = 1_000)]
    keep_behind_snapshot: u64,
    /// A broker without a heartbeat for this long is fenced (`broker.session.timeout.ms`).
    #[arg(long, default_value_t = 9_000)]
    broker_session_timeout_ms: u64,
    /// Start as a new controller that the quorum adds later (`strata cluster add-voter`):
    /// never form a quorum from `--voters`.
    #[arg(long)]
    join: bool,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// The active controller, each controller's log and the voters' replication lag.
    Status {
        /// Controllers to ask, host:port, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:9093")]
        controllers: Vec<String>,
    },
    /// Make a running controller a voter (started with `--join`, it catches up first).
    AddVoter {
        /// Controllers of the quorum, host:port, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:9093")]
        controllers: Vec<String>,
        /// The new voter's node id.
        #[arg(long)]
        id: u64,
        /// The new voter's controller listener, host:port.
        #[arg(long)]
        addr: String,
    },
    /// Move every replica off a broker (balanced over the others) and wait until it holds
    /// none, before it is removed.
    Decommission {
        /// A broker to ask, host:port.
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// The broker to empty.
        #[arg(long)]
        broker: i32,
        /// Hold moving replicas to this many bytes/s while they move.
        #[arg(long)]
        throttle: Option<u64>,
        /// Longest wait, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Take a voter out of the quorum.
    RemoveVoter {
        /// Controllers of the quorum, host:port, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:9093")]
        controllers: Vec<String>,
        /// The voter's node id.
        #[arg(long)]
        id: u64,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates a configuration exactly as `strata run` would, without starting anything,
    /// and prints what the node would be.
    Check(DevArgs),
    /// Every setting with its value (default, or as given) and what it means.
    List(DevArgs),
}

#[derive(Subcommand)]
enum TieringCommand {
    /// Local and remote log start and end, bytes in each tier, upload lag and last error.
    Status,
}

#[derive(Subcommand)]
enum PartitionsCommand {
    /// Partitions whose ISR lacks a replica, or that have no leader.
    UnderReplicated,
    /// Move partitions to other brokers: shows a balanced plan over `--brokers` (or the one in
    /// `--plan`, Kafka's reassignment JSON), and with `--execute` carries it out.
    Reassign {
        /// Topics to plan, comma-separated (every topic when omitted).
        #[arg(long, value_delimiter = ',')]
        topics: Vec<String>,
        /// Brokers to spread the replicas over, comma-separated.
        #[arg(long, value_delimiter = ',')]
        brokers: Vec<i32>,
        /// Replicas per partition (default: unchanged).
        #[arg(long)]
        replication_factor: Option<usize>,
        /// A plan file (`kafka-reassign-partitions.sh` JSON) instead of a generated plan.
        #[arg(long)]
        plan: Option<std::path::PathBuf>,
        /// Start the reassignments.
        #[arg(long)]
        execute: bool,
        /// Cancel the plan's reassignments in progress.
        #[arg(long, conflicts_with = "execute")]
        cancel: bool,
        /// Wait until they complete (with --execute, or alone to follow a plan).
        #[arg(long)]
        wait: bool,
        /// Hold moving replicas to this many bytes/s (removed when --wait ends).
        #[arg(long)]
        throttle: Option<u64>,
        /// Longest --wait waits, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Move leadership back to preferred replicas (or, with --unclean, give leaderless
    /// partitions an out-of-sync leader, losing what it lacks).
    ElectLeaders {
        /// Elect an out-of-sync replica for leaderless partitions.
        #[arg(long)]
        unclean: bool,
        /// Only this topic's partitions (with --partition, only that one).
        #[arg(long)]
        topic: Option<String>,
        /// Partition of --topic.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
    },
}

#[derive(clap::Args)]
struct DevArgs {
    /// TOML file of Kafka-named settings (e.g. `log.retention.ms = 60000`).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Data directory (`log.dirs`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Kafka listener address (`listeners`), e.g. 127.0.0.1:9092; port 0 picks a free one.
    #[arg(long)]
    listen: Option<String>,
    /// Address given to clients (`advertised.listeners`), e.g. broker.example.com:9092.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Any setting as KEY=VALUE, Kafka names (repeatable), applied last.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    strata::logging::init(&cli.log_level, cli.log_format);
    // Before anything builds a TLS config (the object store client builds its own).
    strata_api::security::tls::install_default_provider();
    let password = std::env::var("STRATA_ADMIN_PASSWORD").ok();
    if cli.admin_user.is_some() && password.is_none() {
        eprintln!("error: --admin-user needs the password in STRATA_ADMIN_PASSWORD");
        return ExitCode::FAILURE;
    }
    let login = cli.admin_user.as_deref().zip(password.as_deref());
    match strata::cli::http::AdminHttp::new(
        cli.admin_ca.as_deref(),
        cli.admin_token.as_deref(),
        login,
    ) {
        Ok(http) => strata::cli::http::set_default(http),
        Err(e) => {
            eprintln!("error: --admin-ca: {}", one_line(&e));
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &cli.command_config {
        match strata::kafka_client::ClientSecurity::from_file(path) {
            Ok(security) => strata::kafka_client::security::set_default(security),
            Err(e) => {
                eprintln!(
                    "error: --command-config {}: {}",
                    path.display(),
                    one_line(&e)
                );
                return ExitCode::FAILURE;
            }
        }
    }
    match run(cli.command, cli.output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, never a backtrace (whatever `RUST_BACKTRACE` says); a
/// cause whose text its parent already quotes is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn run(command: Command, output: Output) -> anyhow::Result<()> {
    match command {
        Command::Dev(args) | Command::Run(args) => dev(args),
        Command::Controller(args) => {
            strata::server::raise_files_limit();
            let voters = strata::cli::cluster::parse_voters(&args.voters)?;
            until_signal(|shutdown| async move {
                let quorum = strata_controller::raft::QuorumConfig {
                    snapshot_every: args.snapshot_every.max(1),
                    snapshot_bytes: args.snapshot_bytes.max(1024),
                    keep_behind_snapshot: args.keep_behind_snapshot,
                    broker_lease: std::time::Duration::from_millis(
                        args.broker_session_timeout_ms.max(100),
                    ),
                    ..Default::default()
                };
                strata::cli::cluster::run_controller(
                    args.node_id,
                    &args.listen,
                    &args.data_dir,
                    voters,
                    quorum,
                    args.join,
                    shutdown,
                )
                .await
            })
        }
        Command::Cluster { command } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = runtime.block_on(async {
                use strata_controller::raft::admin::AdminRequest;
                match command {
                    ClusterCommand::Status { controllers } => {
                        let status = strata::cli::cluster::status(&controllers).await;
                        let shown = match output {
                            Output::Json => output.json(&status.json)?,
                            Output::Text => status.text,
                        };
                        if status.has_leader {
                            Ok(shown)
                        } else {
                            print!("{shown}");
                            Err(anyhow::anyhow!("{}", status.problem))
                        }
                    }
                    ClusterCommand::AddVoter {
                        controllers,
                        id,
                        addr,
                    } => message(
                        output,
                        strata::cli::cluster::change_voters(
                            &controllers,
                            AdminRequest::AddVoter { id, addr },
                        )
                        .await,
                    ),
                    ClusterCommand::Decommission {
                        bootstrap,
                        broker,
                        throttle,
                        timeout,
                    } => message(
                        output,
                        strata::cli::reassign::decommission(
                            &bootstrap,
                            broker,
                            throttle,
                            std::time::Duration::from_secs(timeout),
                        )
                        .await,
                    ),
                    ClusterCommand::RemoveVoter { controllers, id } => message(
                        output,
                        strata::cli::cluster::change_voters(
                            &controllers,
                            AdminRequest::RemoveVoter { id },
                        )
                        .await,
                    ),
                }
            })?;
            print!("{out}");
            Ok(())
        }
        Command::Config { command } => {
            type Show = (
                fn(&BrokerConfig) -> String,
                fn(&BrokerConfig) -> serde_json::Value,
            );
            let (args, (text, json)): (DevArgs, Show) = match command {
                ConfigCommand::Check(args) => (
                    args,
                    (
                        strata::cli::config::summary,
                        strata::cli::config::summary_json,
                    ),
                ),
                ConfigCommand::List(args) => (
                    args,
                    (strata::cli::config::list, strata::cli::config::list_json),
                ),
            };
            let config = BrokerConfig::load(args.config.as_deref(), &overrides(&args)?)?;
            match output {
                Output::Json => print!("{}", output.json(&json(&config))?),
                Output::Text => print!("{}", text(&config)),
            }
            Ok(())
        }
        Command::Tiering {
            admin,
            command: TieringCommand::Status,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = match output {
                Output::Json => {
                    output.json(&runtime.block_on(strata::cli::tiering::status_rows(&admin))?)?
                }
                Output::Text => runtime.block_on(strata::cli::tiering::status(&admin))?,
            };
            print!("{out}");
            Ok(())
        }
        Command::Link { admin, command } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            print!(
                "{}",
                runtime.block_on(strata::cli::link::link(&admin, command, output))?
            );
            Ok(())
        }
        Command::Mirror { admin, command } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            print!(
                "{}",
                runtime.block_on(strata::cli::link::mirror(&admin, command, output))?
            );
            Ok(())
        }
        Command::Partitions { bootstrap, command } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = runtime.block_on(async {
                match command {
                    PartitionsCommand::UnderReplicated => match output {
                        Output::Json => {
                            let all = strata::cli::partitions::all(&bootstrap).await?;
                            let under: Vec<_> =
                                all.into_iter().filter(|p| p.under_replicated()).collect();
                            output.json(&under)
                        }
                        Output::Text => strata::cli::partitions::under_replicated(&bootstrap).await,
                    },
                    PartitionsCommand::Reassign {
                        topics,
                        brokers,
                        replication_factor,
                        plan,
                        execute,
                        cancel,
                        wait,
                        throttle,
                        timeout,
                    } => {
                        let args = strata::cli::reassign::ReassignArgs {
                            topics,
                            brokers,
                            replication_factor,
                            plan: plan.clone(),
                            execute,
                            cancel,
                            wait,
                            throttle,
                            timeout: std::time::Duration::from_secs(timeout),
                        };
                        if wait && !execute && !cancel {
                            let Some(path) = plan else {
                                anyhow::bail!("--wait alone follows a plan: give --plan");
                            };
                            let plan = strata::cli::reassign::read_plan(&path)?;
                            strata::cli::reassign::wait(&bootstrap, &plan, args.timeout).await?;
                            message(output, Ok("done\n".to_owned()))
                        } else {
                            message(
                                output,
                                strata::cli::reassign::reassign(&bootstrap, args).await,
                            )
                        }
                    }
                    PartitionsCommand::ElectLeaders {
                        unclean,
                        topic,
                        partition,
                    } => {
                        let partitions = match (topic, partition) {
                            (Some(t), Some(p)) => Some(vec![(t, p)]),
                            (Some(t), None) => Some(
                                strata::cli::partitions::all(&bootstrap)
                                    .await?
                                    .into_iter()
                                    .filter(|p| p.topic == t)
                                    .map(|p| (p.topic, p.partition))
                                    .collect(),
                            ),
                            _ => None,
                        };
                        message(
                            output,
                            strata::cli::reassign::elect_leaders(&bootstrap, unclean, partitions)
                                .await,
                        )
                    }
                }
            })?;
            print!("{out}");
            Ok(())
        }
        Command::Groups { at, command } => {
            admin_command(|| strata::cli::groups::run(&at.bootstrap, command, output))
        }
        Command::Topic { at, command } => {
            admin_command(|| strata::cli::topic::run(&at.bootstrap, command, output))
        }
        Command::Acl { at, command } => {
            admin_command(|| strata::cli::acl::run(&at.bootstrap, command, output))
        }
        Command::User { at, command } => {
            admin_command(|| strata::cli::user::run(&at.bootstrap, command, output))
        }
        Command::Produce { at, args } => {
            admin_command(|| strata::cli::produce::run(&at.bootstrap, args, output))
        }
        Command::Consume { at, args } => {
            admin_command(|| strata::cli::consume::run(&at.bootstrap, args, output))
        }
        Command::AdminToken { name, role } => admin_token(&name, &role, output),
    }
}

/// Prints a new admin API token and its tokens-file line.
fn admin_token(name: &str, role: &str, output: Output) -> anyhow::Result<()> {
    use strata_api::security::admin_auth::{Role, new_token, token_line};
    let role = Role::parse(role)
        .ok_or_else(|| anyhow::anyhow!("--role is admin or viewer, not {role}"))?;
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        anyhow::bail!("--name is one word: the token's holder");
    }
    let token = new_token();
    let line = token_line(&token, role, name);
    match output {
        Output::Json => print!(
            "{}",
            output.json(&serde_json::json!({ "token": token, "line": line }))?
        ),
        Output::Text => println!(
            "token (give it to {name}; it is not kept): {token}\nline for admin.api.tokens.file:\n{line}"
        ),
    }
    Ok(())
}

/// An action's message as printed: the text, or for scripts `{"message": …}`.
fn message(output: Output, result: anyhow::Result<String>) -> anyhow::Result<String> {
    let text = result?;
    match output {
        Output::Json => output.json(&serde_json::json!({ "message": text.trim_end() })),
        Output::Text => Ok(text),
    }
}

/// Runs an admin command on a small runtime and prints its answer.
fn admin_command<F: std::future::Future<Output = anyhow::Result<String>>>(
    command: impl FnOnce() -> F,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = runtime.block_on(command())?;
    print!("{out}");
    Ok(())
}

/// The settings `args` give on the command line, flags first, `--set` last.
fn overrides(args: &DevArgs) -> anyhow::Result<Vec<Override>> {
    let mut overrides = Vec::new();
    if let Some(dir) = &args.data_dir {
        overrides.push(Override::flag(
            "--data-dir",
            "log.dirs",
            &dir.display().to_string(),
        ));
    }
    if let Some(listen) = &args.listen {
        overrides.push(Override::flag("--listen", "listeners", listen));
    }
    if let Some(advertised) = &args.advertised_listener {
        overrides.push(Override::flag(
            "--advertised-listener",
            "advertised.listeners",
            advertised,
        ));
    }
    for entry in &args.overrides {
        let (key, value) = entry
            .split_once('=')
            .with_context(|| format!("--set {entry}: expected KEY=VALUE"))?;
        overrides.push(Override::set(key.trim(), value.trim()));
    }
    Ok(overrides)
}

fn dev(args: DevArgs) -> anyhow::Result<()> {
    strata::server::raise_files_limit();
    let config = BrokerConfig::load(args.config.as_deref(), &overrides(&args)?)?;
    until_signal(|shutdown| async move {
        strata::server::run(config, shutdown, |addr| {
            // A machine-readable line for scripts and tests that start the broker on port 0.
            println!("strata listening on {addr}");
        })
        .await
    })
}

/// Runs `serve` on a multi-threaded runtime with a shutdown flag that SIGTERM or Ctrl-C raises.
fn until_signal<F, Fut>(serve: F) -> anyhow::Result<()>
where
    F: FnOnce(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            let _ = stop.send(true);
        });
        serve(shutdown).await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
