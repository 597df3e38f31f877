//! `merod`: runs a context node.
//!
//! ```text
//! merod --home ~/.calimero --node node1 init --server-port 2528 --swarm-port 2428
//! merod --home ~/.calimero --node node1 run
//! merod --node node1 config sync.frequency_ms=500
//! merod dev            # a node with kv-store installed, ready to call
//! merod --node node1 auth set-password --user alice   # password on stdin
//! ```
//!
//! Auth is on (`server.auth_mode = "embedded"`) unless the config says
//! `proxy`: `init` writes the root credential `<node>/credential.json`
//! (readable by its user only), which `meroctl --node` uses.
//!
//! This crate owns the command line, logging, the dev node's setup
//! (`dev.rs`) and when serving stops (`serving.rs`); what a node does is `mero-node`'s, and HTTP is `mero-server`'s.

mod dev;
mod serving;

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use mero_config::{
    AuthMode, ConfigFile, DEFAULT_SERVER_PORT, DEFAULT_SWARM_PORT, node_dir, tcp_multiaddr,
};
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
        /// Who checks credentials: the node (`embedded`) or a proxy in front
        /// of it (`proxy`, loopback only).
        #[arg(long, value_enum, default_value_t = InitAuth::Embedded)]
        auth_mode: InitAuth,
        /// Overwrite an existing configuration (keeps the data).
        #[arg(long)]
        force: bool,
    },
    /// Credentials of embedded auth: passwords for upstream clients' login,
    /// and the root credential.
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Runs the node until SIGINT or SIGTERM.
    #[command(alias = "up", after_help = "Example:\n  merod --node node1 run")]
    Run,
    /// Sets configuration keys, e.g. `sync.frequency_ms=500`; an unknown key
    /// is refused with its name.
    #[command(
        after_help = "Example:\n  merod --node node1 config sync.frequency_ms=500 bootstrap.nodes=[]"
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum InitAuth {
    Embedded,
    Proxy,
}

#[derive(Subcommand)]
enum AuthCmd {
    /// Sets a user's password for `POST /auth/token` and the login page
    /// (read from the first line of standard input).
    #[command(
        after_help = "Example:\n  printf '%s\\n' \"$PASSWORD\" | merod --node node1 auth set-password --user alice"
    )]
    SetPassword {
        /// The user name.
        #[arg(long)]
        user: String,
        /// Permissions of the user's tokens (repeatable).
        #[arg(long = "permission", default_value = "admin")]
        permissions: Vec<String>,
    },
    /// Replaces the root key and credential: the old credential stops working.
    RotateRoot,
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
        .with_writer(|| LossyStderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        // Reporting a failed log write goes through `eprintln!`, which
        // panics when stderr fails: the panic would take down whichever task
        // logged (the executor, in the review's full-disk run).
        .log_internal_errors(false)
        .init();
}

/// Stderr for the log, where a failed write is dropped rather than
/// reported: a full log disk or a closed stderr loses log lines, never the
/// node.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
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
            auth_mode,
            force,
        } => {
            let dir = node_dir(&home, &require_node(&cli.node)?);
            let auth_mode = match auth_mode {
                InitAuth::Embedded => AuthMode::Embedded,
                InitAuth::Proxy => AuthMode::Proxy,
            };
            init(
                &dir,
                Listen {
                    server_port,
                    swarm_port,
                    server_host,
                    swarm_host,
                },
                auth_mode,
                force,
            )
        }
        Command::Auth(cmd) => {
            let dir = node_dir(&home, &require_node(&cli.node)?);
            auth(&dir, cmd)
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
                let listen = Listen {
                    server_port: port,
                    swarm_port: swarm,
                    server_host: local,
                    swarm_host: local,
                };
                init(&dir, listen, AuthMode::Embedded, false)?;
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
    Ok(mero_config::free_loopback_port()?)
}

/// Where a new node listens.
struct Listen {
    server_port: u16,
    swarm_port: u16,
    server_host: IpAddr,
    swarm_host: IpAddr,
}

fn init(dir: &Path, listen: Listen, auth_mode: AuthMode, force: bool) -> anyhow::Result<()> {
    if dir.join(mero_config::CONFIG_FILE).exists() && !force {
        bail!(
            "{} is already initialized; pass --force to overwrite its configuration",
            dir.display()
        );
    }
    if auth_mode == AuthMode::Proxy && !listen.server_host.is_loopback() {
        bail!(
            "refusing to serve the API on {} without authentication: keep --auth-mode embedded, \
             or listen on 127.0.0.1 behind your proxy",
            listen.server_host
        );
    }
    let mut config = ConfigFile::generate(listen.server_port, listen.swarm_port)?;
    config.server.listen = vec![tcp_multiaddr(listen.server_host, listen.server_port)];
    config.swarm.listen = vec![tcp_multiaddr(listen.swarm_host, listen.swarm_port)];
    config.server.auth_mode = auth_mode;
    let path = config.save(dir)?;
    std::fs::create_dir_all(config.datastore_dir(dir))?;
    std::fs::create_dir_all(config.blobstore_dir(dir))?;
    println!("Initialized node in {}", dir.display());
    println!("  config:  {}", path.display());
    println!("  data:    {}", config.datastore_dir(dir).display());
    println!("  peer id: {}", config.identity.peer_id);
    println!(
        "  API:     http://{}",
        SocketAddr::new(listen.server_host, listen.server_port)
    );
    if auth_mode == AuthMode::Embedded {
        let credential = mero_server::auth::provision(dir, force)?;
        println!(
            "  auth:    embedded; root credential {}",
            credential.display()
        );
        if !listen.server_host.is_loopback() {
            println!(
                "  note:    requests must name this node by 127.0.0.1, localhost, its listen \
                 address or a name in server.allowed_hosts"
            );
        }
    } else {
        println!("  auth:    proxy (the node checks no credentials)");
    }
    Ok(())
}

fn auth(dir: &Path, cmd: AuthCmd) -> anyhow::Result<()> {
    ConfigFile::load(dir)?;
    match cmd {
        AuthCmd::SetPassword { user, permissions } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            mero_server::auth::set_password(dir, &user, password, permissions)?;
            println!("Password set for `{user}`.");
        }
        AuthCmd::RotateRoot => {
            let path = mero_server::auth::provision(dir, true)?;
            println!("New root credential in {}", path.display());
        }
    }
    Ok(())
}

async fn run(dir: PathBuf, dev: Option<dev::DevInfo>) -> anyhow::Result<()> {
    let config = ConfigFile::load(&dir)?;
    let addrs = config.server_addrs()?;
    let options = mero_server::ServerOptions::from_config(&dir, &config)?;
    match config.server.auth_mode {
        // A node made before auth existed gets its root credential now.
        AuthMode::Embedded => {
            mero_server::auth::provision(&dir, false)?;
        }
        AuthMode::Proxy => tracing::warn!(
            "server.auth_mode = \"proxy\": this node checks no credentials; anything that \
             reaches its API can drive it, so only a proxy that authenticates may"
        ),
    }
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
        dev::prepare(&node, &dev, &api, &options.auth).await?;
    }
    serving::serve_until_stopped(node, listeners, options, shutdown_signal()).await
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
