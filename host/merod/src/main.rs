//! `merod`: runs a context node.
//!
//! ```text
//! merod --home ~/.calimero --node node1 init --server-port 2528 --swarm-port 2428
//! merod --home ~/.calimero --node node1 run
//! merod --node node1 config sync.interval_ms=500
//! merod dev            # a node with kv-store installed, ready to call
//! ```
//!
//! This crate owns the command line, logging and the dev node's setup
//! (`dev.rs`); what a node does is `mero-node`'s, and HTTP is `mero-server`'s.

mod dev;

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use mero_config::{ConfigFile, DEFAULT_SERVER_PORT, DEFAULT_SWARM_PORT, node_dir, tcp_multiaddr};
use mero_node::{Node, NodeOptions};
use tracing_subscriber::EnvFilter;

/// Runs a node hosting WebAssembly component apps in replicated contexts.
#[derive(Parser)]
#[command(name = "merod", version, about)]
struct Cli {
    /// Directory holding node directories.
    #[arg(long, global = true, env = "CALIMERO_HOME")]
    home: Option<PathBuf>,
    /// The node's name: its directory under the home.
    #[arg(short = 'n', long, global = true, env = "MEROD_NODE")]
    node: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the node's directory, identity and config.toml.
    #[command(
        after_help = "Example:\n  merod --home ~/.calimero --node node1 init --server-port 2528 --swarm-port 2428"
    )]
    Init {
        /// Port of the HTTP API.
        #[arg(long, default_value_t = DEFAULT_SERVER_PORT)]
        server_port: u16,
        /// Port of the peer-to-peer swarm.
        #[arg(long, default_value_t = DEFAULT_SWARM_PORT)]
        swarm_port: u16,
        /// Address the API listens on.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        server_host: IpAddr,
        /// Address the swarm listens on.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        swarm_host: IpAddr,
        /// Overwrite an existing configuration (keeps the data).
        #[arg(long)]
        force: bool,
    },
    /// Runs the node until SIGINT or SIGTERM.
    #[command(alias = "up", after_help = "Example:\n  merod --node node1 run")]
    Run,
    /// Sets configuration keys, e.g. `sync.interval_ms=500`.
    #[command(
        after_help = "Example:\n  merod --node node1 config sync.interval_ms=500 bootstrap.nodes=[]"
    )]
    Config {
        /// `key=value` pairs; values are TOML (numbers, booleans, arrays) or strings.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Starts a development node with the bundled kv-store installed and a
    /// context ready, and prints how to call it.
    #[command(
        after_help = "Example:\n  merod dev\n  scripts/dev    # from a clone: builds merod and meroctl, then runs this"
    )]
    Dev {
        /// Port of the HTTP API when the node is created (another free one if taken).
        #[arg(long, default_value_t = DEFAULT_SERVER_PORT)]
        server_port: u16,
    },
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,merod=info,mero_node=info,mero_server=info,app=info")
    });
    // Colour only on a terminal: a log file or a pipe gets plain text.
    // `with_ansi` overrides the subscriber's own NO_COLOR check, so keep it.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let home = cli.home.clone().unwrap_or_else(mero_config::default_home);
    match cli.command {
        Command::Init {
            server_port,
            swarm_port,
            server_host,
            swarm_host,
            force,
        } => {
            let dir = node_dir(&home, &require_node(&cli.node)?);
            init(
                &dir,
                server_port,
                swarm_port,
                server_host,
                swarm_host,
                force,
            )
        }
        Command::Config { pairs } => {
            let dir = node_dir(&home, &require_node(&cli.node)?);
            for pair in pairs {
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("`{pair}` is not key=value"))?;
                mero_config::set_key(&dir, k.trim(), v.trim())?;
                println!("{} = {}", k.trim(), v.trim());
            }
            Ok(())
        }
        Command::Run => {
            init_logging();
            let dir = node_dir(&home, &require_node(&cli.node)?);
            runtime()?.block_on(run(dir, None))
        }
        Command::Dev { server_port } => {
            init_logging();
            let name = cli.node.clone().unwrap_or_else(|| "dev".into());
            let dir = node_dir(&home, &name);
            if !dir.join(mero_config::CONFIG_FILE).exists() {
                let port = free_port(server_port)?;
                let swarm = free_port(DEFAULT_SWARM_PORT)?;
                let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
                init(&dir, port, swarm, local, local, false)?;
            }
            runtime()?.block_on(run(dir, Some(dev::DevInfo { home, name })))
        }
    }
}

fn require_node(node: &Option<String>) -> anyhow::Result<String> {
    node.clone()
        .context("which node? pass --node <NAME> (or set MEROD_NODE)")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn free_port(preferred: u16) -> anyhow::Result<u16> {
    if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, preferred)).is_ok() {
        return Ok(preferred);
    }
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn init(
    dir: &Path,
    server_port: u16,
    swarm_port: u16,
    server_host: IpAddr,
    swarm_host: IpAddr,
    force: bool,
) -> anyhow::Result<()> {
    if dir.join(mero_config::CONFIG_FILE).exists() && !force {
        bail!(
            "{} is already initialized; pass --force to overwrite its configuration",
            dir.display()
        );
    }
    let mut config = ConfigFile::generate(server_port, swarm_port)?;
    config.server.listen = vec![tcp_multiaddr(server_host, server_port)];
    config.swarm.listen = vec![tcp_multiaddr(swarm_host, swarm_port)];
    let path = config.save(dir)?;
    std::fs::create_dir_all(config.datastore_dir(dir))?;
    std::fs::create_dir_all(config.blobstore_dir(dir))?;
    println!("Initialized node in {}", dir.display());
    println!("  config:  {}", path.display());
    println!("  data:    {}", config.datastore_dir(dir).display());
    println!("  peer id: {}", config.identity.peer_id);
    println!(
        "  API:     http://{}",
        SocketAddr::new(server_host, server_port)
    );
    Ok(())
}

async fn run(dir: PathBuf, dev: Option<dev::DevInfo>) -> anyhow::Result<()> {
    let config = ConfigFile::load(&dir)?;
    let addrs = config.server_addrs()?;
    let peer_id = config.identity.peer_id.clone();
    let node = Node::start(NodeOptions {
        dir: dir.clone(),
        config,
    })?;
    node.start_network().await?;
    let mut listeners = Vec::new();
    for addr in &addrs {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        listeners.push(l);
    }
    let api = addrs
        .first()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    tracing::info!(%api, %peer_id, node = %dir.display(), "node running");
    if let Some(dev) = dev {
        dev::prepare(&node, &dev, &api).await?;
    }
    mero_server::serve(node.clone(), listeners, shutdown_signal()).await?;
    tracing::info!("stopping: finishing queued work");
    node.shutdown().await?;
    drop(node);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
