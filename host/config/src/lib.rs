//! A node's configuration: `<home>/<node>/config.toml`.
//!
//! The layout follows the upstream node's, so tools that edit it (merobox
//! rewrites `bootstrap.nodes`, `discovery.mdns`,
//! `discovery.rendezvous.namespace` and `sync.*`) work unchanged, and every
//! key upstream's config type requires is written (with upstream's values
//! where this node has no use for it), so upstream's `meroctl --home --node`
//! loads it. Files written before those keys still load: they default. Listen
//! addresses are multiaddrs and default to 127.0.0.1: a node is reachable
//! only from this machine unless its operator says otherwise.
//!
//! It reads, checks and writes the file and knows nothing else: it may not
//! depend on the node, the engine or the network, which take their settings
//! from it as plain values.

mod port;

pub use port::free_loopback_port;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// The file name inside a node's directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Default port of the HTTP API.
pub const DEFAULT_SERVER_PORT: u16 = 2528;
/// Default port of the peer-to-peer swarm.
pub const DEFAULT_SWARM_PORT: u16 = 2428;

/// Errors of configuration handling.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or misses required keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is not what its key needs.
    #[error("{0}")]
    Invalid(String),
    /// The node directory has no configuration.
    #[error("no node configured at {0}: run `merod --home <HOME> --node <NAME> init` first")]
    NotInitialized(PathBuf),
}

/// The whole configuration file. A key it does not know, in any section,
/// fails the load with the key's name: a misspelt key must not do nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The node's keys.
    pub identity: IdentityConfig,
    /// Peer-to-peer listening.
    pub swarm: SwarmConfig,
    /// The HTTP API.
    pub server: ServerConfig,
    /// Peers to connect to at start.
    #[serde(default)]
    pub bootstrap: BootstrapConfig,
    /// Finding peers.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
    /// Replication timing.
    #[serde(default)]
    pub sync: SyncConfig,
    /// Where the database lives, relative to the node directory.
    pub datastore: PathConfig,
    /// Where blobs (and compiled components) live, relative to the node
    /// directory, and how large a blob may be.
    pub blobstore: BlobstoreConfig,
    /// Upstream's context settings: written for upstream's tools, unused.
    #[serde(default)]
    pub context: ContextSection,
    /// Limits of app calls.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Members' transient state in contexts (`set_ephemeral`).
    #[serde(default)]
    pub presence: PresenceSection,
    /// Migration status reports (`migration-status`).
    #[serde(default)]
    pub migration: MigrationSection,
    /// Invitations this node signs.
    #[serde(default)]
    pub membership: MembershipSection,
    /// What this node takes from members' snapshots.
    #[serde(default, skip_serializing_if = "SnapshotsSection::is_default")]
    pub snapshots: SnapshotsSection,
    /// Relayers: the chains' RPC endpoints this node asks what a chain
    /// says (balances, for attestations). None unless written.
    #[serde(default, skip_serializing_if = "ChainsSection::is_empty")]
    pub chains: ChainsSection,
    /// merobox's `dev = true`, which it writes into every node's file in
    /// its no-docker mode: accepted and kept so upstream's tooling runs
    /// our nodes unchanged; nothing here depends on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<bool>,
}

/// The node's identity: a libp2p Ed25519 keypair. Its public key is the
/// peer id and the key the node signs its changes with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The peer id, derived from the keypair.
    pub peer_id: String,
    /// Base58 of the protobuf-encoded keypair.
    pub keypair: String,
}

/// Peer-to-peer listen addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmConfig {
    /// Multiaddrs, e.g. `/ip4/127.0.0.1/tcp/2428`.
    pub listen: Vec<String>,
}

/// The HTTP API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Multiaddrs; the first IPv4 one is what `meroctl --node` connects to.
    pub listen: Vec<String>,
    /// Who checks credentials: the node itself (`embedded`, the default) or
    /// a proxy in front of it (`proxy`, only when written here). Any other
    /// value fails at load.
    #[serde(default)]
    pub auth_mode: AuthMode,
    /// Names besides 127.0.0.1, localhost and [::1] (and the listen
    /// addresses) that a request's `Host` may carry, e.g. `node.example`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Origins of web pages allowed to call the API from a browser (CORS),
    /// exactly as browsers send them, e.g. `http://localhost:5173`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// When set, `install-dev-application` reads only files under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_root: Option<PathBuf>,
    /// Token lifetimes and key rotation of embedded auth.
    #[serde(default)]
    pub auth: AuthSection,
    /// Connection limits.
    #[serde(default)]
    pub limits: LimitsSection,
}

/// Who checks the credentials of API requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The node checks bearer tokens it signed itself.
    #[default]
    Embedded,
    /// A reverse proxy in front of the node checks credentials; the node
    /// checks none (browser defences still apply).
    Proxy,
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthMode::Embedded => "embedded",
            AuthMode::Proxy => "proxy",
        })
    }
}

/// Embedded auth: how long tokens live and how often signing keys rotate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct AuthSection {
    /// Lifetime of an access token, in seconds (upstream: 1 h).
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token, in seconds (upstream: 30 days).
    pub refresh_ttl_secs: u64,
    /// Age after which a new signing key takes over, in seconds.
    pub rotate_after_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            access_ttl_secs: 3_600,
            refresh_ttl_secs: 30 * 24 * 3_600,
            rotate_after_secs: 24 * 3_600,
        }
    }
}

/// Limits of the HTTP side.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct LimitsSection {
    /// Connections served at once; past it, a connection that has not
    /// finished sending its first request's headers is dropped for a new one.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, in ms.
    pub header_read_timeout_ms: u64,
    /// `execute` calls one WebSocket may have running at once; its further
    /// messages wait unread.
    pub ws_max_in_flight: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: 256,
            header_read_timeout_ms: 10_000,
            ws_max_in_flight: 8,
        }
    }
}

/// Peers dialled at start.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Multiaddrs with `/p2p/<peer id>`.
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// Peer discovery. This node never uses mDNS, public rendezvous, relays or
/// AutoNAT; the keys are written with upstream's defaults so that upstream's
/// tools (meroctl, merobox) load and edit this file, and are read with
/// defaults so that files written before them still load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct DiscoveryConfig {
    /// Ignored: local discovery is off.
    pub mdns: bool,
    /// Ignored: this node advertises no external address.
    pub advertise_address: bool,
    /// Ignored.
    pub external_address: Vec<String>,
    /// Ignored.
    pub rendezvous: RendezvousConfig,
    /// Ignored.
    pub relay: RelayConfig,
    /// Ignored.
    pub autonat: AutonatConfig,
}

/// Kept for compatibility; ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct RendezvousConfig {
    /// A namespace name.
    pub namespace: String,
    /// Discovery queries per minute.
    pub discovery_rpm: f32,
    /// Between discovery rounds (`{secs, nanos}`, as upstream writes it).
    pub discovery_interval: std::time::Duration,
    /// Registrations kept.
    pub registrations_limit: usize,
}

impl Default for RendezvousConfig {
    fn default() -> Self {
        // Upstream's defaults.
        RendezvousConfig {
            namespace: "/calimero/devnet/global".into(),
            discovery_rpm: 0.5,
            discovery_interval: std::time::Duration::from_secs(15),
            registrations_limit: 3,
        }
    }
}

/// Kept for compatibility; ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct RelayConfig {
    /// Relay reservations kept.
    pub registrations_limit: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            registrations_limit: 3,
        }
    }
}

/// Kept for compatibility; ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct AutonatConfig {
    /// Candidate addresses probed.
    pub max_candidates: usize,
    /// Between probes (`{secs, nanos}`).
    pub probe_interval: std::time::Duration,
}

impl Default for AutonatConfig {
    fn default() -> Self {
        AutonatConfig {
            max_candidates: 5,
            probe_interval: std::time::Duration::from_secs(10),
        }
    }
}

/// Upstream's `[context]` section, which its config type requires; this
/// node reads nothing from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct ContextSection {
    /// Upstream's migration switch (on, as upstream's `init` writes it).
    pub migration_v2: bool,
}

impl Default for ContextSection {
    fn default() -> Self {
        ContextSection { migration_v2: true }
    }
}

/// Replication timing, in milliseconds. Only `frequency_ms` is read here;
/// `timeout_ms` and `interval_ms` are written because upstream's config
/// type requires them (its tools read this file) and do nothing on this
/// node: a request's timeout is the network's own, and anti-entropy runs
/// every `frequency_ms`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Upstream's catch-up budget; unused here.
    pub timeout_ms: u64,
    /// Upstream's least time between two syncs of one context; unused here.
    pub interval_ms: u64,
    /// How often every context is compared with peers.
    pub frequency_ms: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            timeout_ms: 30_000,
            interval_ms: 5_000,
            frequency_ms: 10_000,
        }
    }
}

/// A path relative to the node directory (or absolute).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathConfig {
    /// The path.
    pub path: PathBuf,
}

/// Largest blob a node takes by default, uploaded, fetched or made by an
/// app: 1 GiB (upstream's upload cap).
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 1 << 30;

/// The blob store: where it lives and how large a blob may be.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobstoreConfig {
    /// The path, relative to the node directory (or absolute).
    pub path: PathBuf,
    /// Largest blob this node takes, in bytes (uploaded, fetched from a
    /// member or made by an app); a larger one is refused with
    /// `BlobTooLarge` and nothing of it is kept. Unset: 1 GiB
    /// ([`DEFAULT_MAX_BLOB_BYTES`]). Not written by `merod init`, which
    /// keeps the file what upstream's tools expect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_blob_bytes: Option<u64>,
}

impl BlobstoreConfig {
    /// The largest blob this node takes.
    pub fn max_blob_bytes(&self) -> u64 {
        self.max_blob_bytes.unwrap_or(DEFAULT_MAX_BLOB_BYTES)
    }
}

/// Limits of app calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Wall-clock budget of one call.
    pub call_timeout_ms: u64,
    /// Linear memory one instance may use, in MiB.
    pub max_memory_mib: u64,
    /// Instances that may run at once.
    pub max_instances: u32,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            call_timeout_ms: 2_000,
            max_memory_mib: 64,
            max_instances: 32,
        }
    }
}

/// Members' transient state in contexts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceSection {
    /// How long a member's state lives without being republished, in
    /// milliseconds; members republish theirs every third of it.
    pub ttl_ms: u64,
}

impl Default for PresenceSection {
    fn default() -> Self {
        // Upstream's PRESENCE_TTL_MS.
        PresenceSection { ttl_ms: 7_000 }
    }
}

/// Migration status: how often each member reports where its contexts
/// stand.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct MigrationSection {
    /// A member reports on every change and at least this often, in
    /// milliseconds; a member not heard of for twice as long is `unknown`.
    pub heartbeat_ms: u64,
    /// A cascade ordered here waits this long after each group it commits
    /// before the next (0: none), so that an operator watching
    /// `cascade-status` can abort it before it reaches every group.
    pub cascade_pause_ms: u64,
}

impl Default for MigrationSection {
    fn default() -> Self {
        // Upstream's 30 s heartbeat and 60 s TTL.
        MigrationSection {
            heartbeat_ms: 30_000,
            cascade_pause_ms: 0,
        }
    }
}

/// Invitations this node signs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct MembershipSection {
    /// How long an invitation is valid when its creator names no
    /// validity, in seconds. Short: an invitation pasted somewhere admits
    /// whoever uses it first until then.
    pub invitation_ttl_secs: u64,
}

impl Default for MembershipSection {
    fn default() -> Self {
        MembershipSection {
            invitation_ttl_secs: 24 * 3600,
        }
    }
}

/// `[snapshots]`: what this node takes from members' snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct SnapshotsSection {
    /// Take a snapshot whose entries cannot be proven from signed deltas
    /// (its sender and the members connected hold some of them only by
    /// id, its deltas are over 256 MiB, or a migration it crossed cannot
    /// be run again) on its sender's word, after the checks that need no
    /// signature. Off: such a snapshot is refused, and the context waits
    /// for a member whose snapshot can be proven.
    pub take_unproven: bool,
}

impl SnapshotsSection {
    /// Whether nothing is set (the section is then not written).
    pub fn is_default(&self) -> bool {
        *self == SnapshotsSection::default()
    }
}

/// `[chains]`: one table per chain with a relayer. Only Ethereum has one
/// in this build; `[chains.near]` and the others are unknown keys (the
/// load fails naming them) rather than settings that do nothing.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainsSection {
    /// The Ethereum relayer's JSON-RPC endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethereum: Option<EthereumChainConfig>,
}

impl ChainsSection {
    /// Whether no chain is configured (the section is then not written).
    pub fn is_empty(&self) -> bool {
        self.ethereum.is_none()
    }
}

/// `[chains.ethereum]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthereumChainConfig {
    /// The JSON-RPC endpoint, e.g. `http://127.0.0.1:8545` (a local node
    /// or a proxy to one). `http://` only: the node's HTTP client has no
    /// TLS. Whoever runs it is trusted for every answer (and attestation)
    /// this node gives.
    pub rpc_url: String,
    /// How long one RPC request may take, in ms (10 000 unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The directory of node `node` under `home`.
pub fn node_dir(home: &Path, node: &str) -> PathBuf {
    home.join(node)
}

/// `$CALIMERO_HOME`, else `~/.calimero`.
pub fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CALIMERO_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".calimero"),
        |h| PathBuf::from(h).join(".calimero"),
    )
}

/// A multiaddr for a TCP listener.
pub fn tcp_multiaddr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("/ip4/{ip}/tcp/{port}"),
        IpAddr::V6(ip) => format!("/ip6/{ip}/tcp/{port}"),
    }
}

/// Parses `/ip4/<ip>/tcp/<port>` (or `/ip6/...`).
pub fn parse_tcp_multiaddr(addr: &str) -> Result<SocketAddr, ConfigError> {
    let bad = || ConfigError::Invalid(format!("`{addr}` is not a /ip4/<ip>/tcp/<port> address"));
    let parts: Vec<&str> = addr.split('/').collect();
    match parts.as_slice() {
        ["", proto @ ("ip4" | "ip6"), ip, "tcp", port, ..] => {
            let ip: IpAddr = ip.parse().map_err(|_| bad())?;
            if (*proto == "ip4") != ip.is_ipv4() {
                return Err(bad());
            }
            Ok(SocketAddr::new(ip, port.parse().map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

impl ConfigFile {
    /// A fresh configuration with a new identity, listening on 127.0.0.1.
    pub fn generate(server_port: u16, swarm_port: u16) -> Result<ConfigFile, ConfigError> {
        let mut secret: [u8; 32] = rand::random();
        let keypair = libp2p_identity::Keypair::ed25519_from_bytes(&mut secret)
            .map_err(|e| ConfigError::Invalid(format!("cannot make a keypair: {e}")))?;
        // An empty keypair written to the config would be a node with no
        // identity: an encoding error is an error.
        let encoded = keypair
            .to_protobuf_encoding()
            .map_err(|e| ConfigError::Invalid(format!("cannot encode the keypair: {e}")))?;
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Ok(ConfigFile {
            identity: IdentityConfig {
                peer_id: keypair.public().to_peer_id().to_base58(),
                keypair: bs58::encode(encoded).into_string(),
            },
            swarm: SwarmConfig {
                listen: vec![tcp_multiaddr(local, swarm_port)],
            },
            server: ServerConfig {
                listen: vec![tcp_multiaddr(local, server_port)],
                auth_mode: AuthMode::Embedded,
                allowed_hosts: Vec::new(),
                allowed_origins: Vec::new(),
                install_root: None,
                auth: AuthSection::default(),
                limits: LimitsSection::default(),
            },
            bootstrap: BootstrapConfig::default(),
            discovery: DiscoveryConfig::default(),
            sync: SyncConfig::default(),
            datastore: PathConfig {
                path: "data".into(),
            },
            blobstore: BlobstoreConfig {
                path: "blobs".into(),
                max_blob_bytes: None,
            },
            context: ContextSection::default(),
            runtime: RuntimeSection::default(),
            presence: PresenceSection::default(),
            migration: MigrationSection::default(),
            membership: MembershipSection::default(),
            snapshots: SnapshotsSection::default(),
            chains: ChainsSection::default(),
            dev: None,
        })
    }

    /// Loads `<dir>/config.toml`.
    pub fn load(dir: &Path) -> Result<ConfigFile, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotInitialized(dir.to_path_buf())
            } else {
                ConfigError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// Writes `<dir>/config.toml`, readable by its owner only.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let io = |source| ConfigError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        write_private(&path, &text).map_err(io)?;
        Ok(path)
    }

    /// The address of the HTTP API: the first IPv4 `server.listen` entry.
    pub fn server_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .iter()
            .filter_map(|a| parse_tcp_multiaddr(a).ok())
            .find(SocketAddr::is_ipv4)
            .or_else(|| {
                self.server
                    .listen
                    .iter()
                    .find_map(|a| parse_tcp_multiaddr(a).ok())
            })
            .ok_or_else(|| {
                ConfigError::Invalid("server.listen has no /ip4/<ip>/tcp/<port> address".into())
            })
    }

    /// Every `server.listen` address.
    pub fn server_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.server
            .listen
            .iter()
            .map(|a| parse_tcp_multiaddr(a))
            .collect()
    }

    /// The node's Ed25519 signing key.
    pub fn signing_key(&self) -> Result<SigningKey, ConfigError> {
        let bad = |why: &str| ConfigError::Invalid(format!("identity.keypair: {why}"));
        let bytes = bs58::decode(&self.identity.keypair)
            .into_vec()
            .map_err(|_| bad("not base58"))?;
        let keypair = libp2p_identity::Keypair::from_protobuf_encoding(&bytes)
            .map_err(|_| bad("not a keypair"))?;
        let ed = keypair
            .try_into_ed25519()
            .map_err(|_| bad("not an Ed25519 keypair"))?;
        let secret: [u8; 32] = ed
            .secret()
            .as_ref()
            .try_into()
            .map_err(|_| bad("bad secret length"))?;
        Ok(SigningKey::from_bytes(&secret))
    }

    /// The database directory.
    pub fn datastore_dir(&self, node_dir: &Path) -> PathBuf {
        node_dir.join(&self.datastore.path)
    }

    /// The blob directory.
    pub fn blobstore_dir(&self, node_dir: &Path) -> PathBuf {
        node_dir.join(&self.blobstore.path)
    }
}

/// Writes `text` to `path` atomically (a temporary file renamed over it),
/// readable and writable by its owner only: configuration, keys and
/// credentials go through here.
#[cfg(unix)]
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Writes `text` to `path` (no permission bits off Unix).
#[cfg(not(unix))]
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Sets `key` (dotted, e.g. `sync.frequency_ms`) to `value` in
/// `<dir>/config.toml`, keeping the rest of the file as it is. The value is
/// read as TOML (`500`, `true`, `["a"]`) or else taken as a string. The
/// result must still be a valid configuration.
pub fn set_key(dir: &Path, key: &str, value: &str) -> Result<(), ConfigError> {
    let path = dir.join(CONFIG_FILE);
    let io = |source| ConfigError::Io {
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::NotInitialized(dir.to_path_buf())
        } else {
            io(source)
        }
    })?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?;
    let parts: Vec<&str> = key.split('.').collect();
    let (last, tables) = parts
        .split_last()
        .ok_or_else(|| ConfigError::Invalid("empty key".into()))?;
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Invalid(format!("`{key}` is not a dotted key")));
    }
    let mut item = doc.as_item_mut();
    for t in tables {
        item = &mut item[*t];
        if item.is_none() {
            *item = toml_edit::table();
        }
    }
    let parsed = format!("v = {value}")
        .parse::<toml_edit::DocumentMut>()
        .ok()
        .and_then(|d| d.get("v").and_then(|v| v.as_value()).cloned())
        .unwrap_or_else(|| toml_edit::Value::from(value));
    item[*last] = toml_edit::Item::Value(parsed);
    let new_text = doc.to_string();
    toml::from_str::<ConfigFile>(&new_text).map_err(|e| {
        ConfigError::Invalid(format!(
            "`{key} = {value}` makes the configuration invalid: {e}"
        ))
    })?;
    write_private(&path, &new_text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_round_trips_and_stays_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::generate(3000, 3001).unwrap();
        cfg.save(dir.path()).unwrap();
        let back = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(
            back.server_addr().unwrap(),
            "127.0.0.1:3000".parse().unwrap()
        );
        assert_eq!(
            back.swarm.listen,
            vec!["/ip4/127.0.0.1/tcp/3001".to_string()]
        );
        let key = back.signing_key().unwrap();
        assert_eq!(key.to_bytes(), cfg.signing_key().unwrap().to_bytes());
        assert!(!back.discovery.mdns && back.bootstrap.nodes.is_empty());
    }

    #[test]
    fn set_key_edits_in_place_and_refuses_breaking_values() {
        let dir = tempfile::tempdir().unwrap();
        ConfigFile::generate(3000, 3001)
            .unwrap()
            .save(dir.path())
            .unwrap();
        set_key(dir.path(), "sync.frequency_ms", "500").unwrap();
        set_key(dir.path(), "discovery.rendezvous.namespace", "my-ns").unwrap();
        set_key(dir.path(), "bootstrap.nodes", "[]").unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(cfg.sync.frequency_ms, 500);
        assert_eq!(cfg.discovery.rendezvous.namespace, "my-ns");
        assert!(matches!(
            set_key(dir.path(), "sync.frequency_ms", "\"soon\""),
            Err(ConfigError::Invalid(_))
        ));
        assert_eq!(ConfigFile::load(dir.path()).unwrap().sync.frequency_ms, 500);
        assert!(matches!(
            set_key(&dir.path().join("nope"), "a", "1"),
            Err(ConfigError::NotInitialized(_))
        ));
    }

    #[test]
    fn an_unknown_or_misspelt_key_fails_with_its_name_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        ConfigFile::generate(3000, 3001)
            .unwrap()
            .save(dir.path())
            .unwrap();
        let path = dir.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        // Through `merod config`: refused, naming the key; the file stays.
        for key in [
            "sync.frequncy_ms",
            "server.limits.max_conections",
            "runtime.call_timeout",
            "nosuch.key",
            "discovery.rendezvous.namepsace",
        ] {
            let e = set_key(dir.path(), key, "300").unwrap_err();
            let last = key.rsplit('.').next().unwrap();
            let name = if key.starts_with("nosuch") {
                "nosuch"
            } else {
                last
            };
            assert!(
                matches!(e, ConfigError::Invalid(_)) && e.to_string().contains(name),
                "{key}: {e}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{key}");
        }
        // Written by hand: the load fails, naming the key.
        for (from, to, name) in [
            ("frequency_ms", "frequncy_ms", "frequncy_ms"),
            ("[presence]", "[presense]", "presense"),
            ("ttl_ms", "ttl", "ttl"),
        ] {
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let e = ConfigFile::load(dir.path()).unwrap_err();
            assert!(
                matches!(e, ConfigError::Parse { .. }) && e.to_string().contains(name),
                "{to}: {e}"
            );
        }
        // Every key the node writes is one it knows.
        std::fs::write(&path, &text).unwrap();
        ConfigFile::load(dir.path()).unwrap();
        // merobox's `dev = true` (no-docker mode) is upstream tooling's, and
        // kept through a save.
        std::fs::write(&path, format!("dev = true\n{text}")).unwrap();
        let with_dev = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(with_dev.dev, Some(true));
        with_dev.save(dir.path()).unwrap();
        assert_eq!(ConfigFile::load(dir.path()).unwrap().dev, Some(true));
    }

    #[test]
    fn blobs_are_capped_at_one_gib_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::generate(3000, 3001).unwrap();
        assert_eq!(DEFAULT_MAX_BLOB_BYTES, 1 << 30);
        assert_eq!(cfg.blobstore.max_blob_bytes(), 1024 * 1024 * 1024);
        cfg.save(dir.path()).unwrap();
        // Not written unless set: the file stays what upstream's tools read.
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        assert!(!text.contains("max_blob_bytes"), "{text}");
        set_key(dir.path(), "blobstore.max_blob_bytes", "4096").unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(cfg.blobstore.max_blob_bytes(), 4096);
        assert!(set_key(dir.path(), "blobstore.max_blob_byte", "1").is_err());
        assert!(set_key(dir.path(), "blobstore.max_blob_bytes", "-1").is_err());
    }

    #[test]
    fn the_ethereum_relayer_is_configured_by_url_and_nothing_else_is_known() {
        let dir = tempfile::tempdir().unwrap();
        ConfigFile::generate(3000, 3001)
            .unwrap()
            .save(dir.path())
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        assert!(!text.contains("[chains"), "{text}");
        assert!(ConfigFile::load(dir.path()).unwrap().chains.is_empty());
        set_key(
            dir.path(),
            "chains.ethereum.rpc_url",
            "http://127.0.0.1:8545",
        )
        .unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        let eth = cfg.chains.ethereum.as_ref().unwrap();
        assert_eq!(eth.rpc_url, "http://127.0.0.1:8545");
        assert_eq!(eth.timeout_ms, None);
        // No relayer for the others: their tables are unknown keys.
        let e = set_key(dir.path(), "chains.near.rpc_url", "http://x").unwrap_err();
        assert!(e.to_string().contains("near"), "{e}");
        let e = set_key(dir.path(), "chains.ethereum.url", "http://x").unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
    }

    #[test]
    fn auth_is_embedded_by_default_and_an_unknown_mode_fails_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::generate(3000, 3001).unwrap();
        assert_eq!(cfg.server.auth_mode, AuthMode::Embedded);
        cfg.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        assert!(text.contains("auth_mode = \"embedded\""), "{text}");
        // A file without the key (written by hand) is embedded too.
        let without = text.replace("auth_mode = \"embedded\"\n", "");
        std::fs::write(dir.path().join(CONFIG_FILE), &without).unwrap();
        assert_eq!(
            ConfigFile::load(dir.path()).unwrap().server.auth_mode,
            AuthMode::Embedded
        );
        set_key(dir.path(), "server.auth_mode", "proxy").unwrap();
        assert_eq!(
            ConfigFile::load(dir.path()).unwrap().server.auth_mode,
            AuthMode::Proxy
        );
        let bad = text.replace("auth_mode = \"embedded\"", "auth_mode = \"jwt\"");
        std::fs::write(dir.path().join(CONFIG_FILE), bad).unwrap();
        let e = ConfigFile::load(dir.path()).unwrap_err();
        assert!(
            matches!(e, ConfigError::Parse { .. }) && e.to_string().contains("jwt"),
            "{e}"
        );
        assert!(set_key(dir.path(), "server.auth_mode", "none").is_err());
    }

    #[test]
    fn multiaddrs_parse_strictly() {
        assert_eq!(
            parse_tcp_multiaddr("/ip4/127.0.0.1/tcp/80").unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(
            parse_tcp_multiaddr("/ip6/::1/tcp/80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        for bad in [
            "/ip4/::1/tcp/80",
            "/ip4/1.2.3.4/udp/80",
            "127.0.0.1:80",
            "/ip4/1.2.3.4/tcp/x",
        ] {
            assert!(parse_tcp_multiaddr(bad).is_err(), "{bad}");
        }
    }
}
