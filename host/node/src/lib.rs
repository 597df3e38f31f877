//! A node: the engine (store, runtime, executor) plus what users manage on
//! it: installed applications, namespaces (root groups) with their members,
//! contexts and aliases. The HTTP server and the binaries are thin layers
//! over [`Node`]; they need no other crate of the engine (what they use of
//! it is re-exported here).
//!
//! Ids are raw 32-byte arrays here; encodings belong to the wire format.
//!
//! Rooms, each importing only from those listed before it:
//! - [`keys`]: the namespace keys' cryptography; [`governance`]: the pure
//!   fold of a namespace's signed ops, roles and capabilities
//!   ([`governance::rights`]), invitations; [`events`]: the event bus;
//!   [`sync`]: the replication protocol without I/O (wire, sessions,
//!   serving).
//! - `authz`: every "may X do Y", answered from governance alone.
//! - `error` ([`NodeError`]), `blocking`, `tasks` (owned background tasks),
//!   `peers` (the link to the swarm), `keyring` (the keys this node holds).
//! - [`membership`]: governance state, its persistence and this node's own
//!   ops, invitations, joins, subgroups, members.
//! - `replication`: the driver that carries sync sessions out over the
//!   executor and libp2p, owning its tasks.
//! - The facade, one file per noun of the API, all `impl Node`: this file
//!   (start, shutdown), `applications`, `namespaces`, `contexts`,
//!   `aliases`, `app_events` (commits to the bus, event handlers).
//!
//! Tests: unit tests sit beside the fold, authz, the sync session and the
//! bus; `tests/sync_sim.rs` runs many replicas over the sync protocol with
//! the real governance as authority.

mod aliases;
mod app_events;
mod applications;
mod authz;
mod blocking;
mod contexts;
mod error;
pub mod events;
pub mod governance;
mod keyring;
pub mod keys;
pub mod membership;
mod namespaces;
mod peers;
mod replication;
pub mod sync;
mod tasks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mero_config::ConfigFile;
use mero_executor::Executor;
use mero_network::{Multiaddr, NetworkConfig};
use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::{Store, StoreConfig};

pub use aliases::MAX_ALIAS_LEN;
pub use applications::{Application, InstallSource, MAX_COMPONENT_BYTES};
pub use authz::Denied;
pub use contexts::{ContextInfo, args_text};
pub use error::{NodeError, Result};
pub use governance::invitation::SignedInvitation;
pub use governance::{Role, caps};
pub use membership::{Membership, Subgroup};
pub use mero_crdt::ContextId;
pub use mero_executor::CallOutcome;
pub use mero_runtime::{CallError, Intent};
pub use namespaces::NamespaceInfo;
pub use replication::{StoreView, SyncStatus, apply_through};

use crate::events::EventBus;
use crate::peers::Peers;
use crate::replication::Replicator;
use crate::sync::{context_topic, namespace_topic};
use crate::tasks::Tasks;

/// Largest message on the wire: a snapshot of a large context is one message.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node directory (`<home>/<name>`).
    pub dir: PathBuf,
    /// Its configuration.
    pub config: ConfigFile,
}

struct Inner {
    dir: PathBuf,
    config: ConfigFile,
    identity: SigningKey,
    store: Store,
    runtime: Arc<Runtime>,
    exec: Executor,
    http: reqwest::Client,
    peers: Arc<Peers>,
    members: Arc<Membership>,
    replication: Arc<Replicator>,
    events: Arc<EventBus>,
    /// The node's own tasks (forwarding commits, running handlers).
    tasks: Tasks,
    /// Woken when merged deltas may have left event handlers to run.
    handlers_due: Arc<tokio::sync::Notify>,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Opens the node's database and starts its engine.
    pub fn start(options: NodeOptions) -> Result<Node> {
        let NodeOptions { dir, config } = options;
        let identity = config
            .signing_key()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let store = Store::open(&config.datastore_dir(&dir), &StoreConfig::default())?;
        let limits = &config.runtime;
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(config.blobstore_dir(&dir).join("compiled")),
            call_timeout: Duration::from_millis(limits.call_timeout_ms.max(1)),
            max_memory_bytes: usize::try_from(limits.max_memory_mib.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            max_instances: limits.max_instances.max(1),
            ..RuntimeConfig::default()
        })
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        let me = identity.verifying_key().to_bytes();
        let events: Arc<EventBus> = Arc::default();
        let peers: Arc<Peers> = Arc::default();
        let members = Arc::new(Membership::load(
            store.clone(),
            identity.clone(),
            events.clone(),
            peers.clone(),
        )?);
        // The executor asks membership for this node's standing as each
        // delta is authored.
        let exec = Executor::spawn_governed(
            runtime.clone(),
            store.clone(),
            identity.clone(),
            contexts::standing(members.clone(), me),
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let replication = Replicator::new(replication::Parts {
            exec: exec.clone(),
            store: store.clone(),
            members: members.clone(),
            peers: peers.clone(),
            events: events.clone(),
            me,
            every: Duration::from_millis(config.sync.frequency_ms.max(100)),
        });
        let node = Node {
            inner: Arc::new(Inner {
                dir,
                config,
                identity,
                store,
                runtime,
                exec,
                http,
                peers,
                members,
                replication,
                events,
                tasks: Tasks::default(),
                handlers_due: Arc::default(),
            }),
        };
        node.forward_commits();
        node.run_handlers();
        Ok(node)
    }

    /// Starts networking: listens, dials bootstrap peers and known members,
    /// subscribes to every namespace and context held, and starts the
    /// replication driver.
    pub async fn start_network(&self) -> Result<()> {
        let cfg = &self.inner.config;
        let keypair = mero_network::Keypair::ed25519_from_bytes(self.inner.identity.to_bytes())
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let mut nc = NetworkConfig::new(keypair);
        nc.listen = parse_addrs(&cfg.swarm.listen)?;
        nc.bootstrap = parse_addrs(&cfg.bootstrap.nodes)?;
        nc.max_message_bytes = MAX_MESSAGE_BYTES;
        let (client, events) =
            mero_network::spawn(nc).map_err(|e| NodeError::Internal(format!("networking: {e}")))?;
        if !self.inner.peers.start(client) {
            return Err(NodeError::Internal("networking started twice".into()));
        }
        for ns in self.inner.members.all() {
            self.inner.peers.subscribe(&namespace_topic(&ns.id)).await;
        }
        for meta in self.inner.store.snapshot()?.contexts()? {
            self.inner.peers.subscribe(&context_topic(&meta.id)).await;
        }
        self.inner.replication.start(events);
        Ok(())
    }

    /// Stops replication and the node's tasks, finishes queued work and
    /// stops the engine and networking; the database closes when the last
    /// handle is dropped.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.replication.shutdown().await;
        self.inner.tasks.shutdown().await;
        self.inner.exec.shutdown().await?;
        self.inner.peers.shutdown().await;
        tracing::info!("executor: {}", self.inner.exec.stats());
        Ok(())
    }

    /// The node directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ConfigFile {
        &self.inner.config
    }

    /// The public key this node signs with and is a member as.
    pub fn public_key(&self) -> [u8; 32] {
        self.inner.identity.verifying_key().to_bytes()
    }

    /// The executor, for lower-level access.
    pub fn executor(&self) -> &Executor {
        &self.inner.exec
    }

    /// The store, for lower-level access.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Namespaces' governance: members, roles, invitations, subgroups.
    pub fn membership(&self) -> &Membership {
        &self.inner.members
    }

    /// The node's events.
    pub fn events(&self) -> &Arc<EventBus> {
        &self.inner.events
    }

    /// Peers connected now.
    pub async fn peer_count(&self) -> usize {
        self.inner.peers.connected().await.len()
    }

    /// Asks for an anti-entropy round now.
    pub fn trigger_sync(&self) -> Result<()> {
        self.inner.peers.client()?;
        self.inner.replication.trigger();
        Ok(())
    }

    /// A context's replication status.
    pub fn sync_status(&self, ctx: &ContextId) -> SyncStatus {
        self.inner.replication.status(ctx)
    }
}

fn parse_addrs(list: &[String]) -> Result<Vec<Multiaddr>> {
    list.iter()
        .map(|a| {
            a.parse::<Multiaddr>().map_err(|e| {
                NodeError::bad("InvalidMultiaddr", format!("`{a}` is not a multiaddr: {e}"))
            })
        })
        .collect()
}
