//! The [`Node`] type: what it holds, starting it (store, runtime, executor,
//! membership, the replication driver), networking, and stopping it. Its
//! API is spread over one file per noun (`applications`, `namespaces`,
//! `contexts`, `aliases`, `app_events`), each an `impl Node` over this.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mero_config::ConfigFile;
use mero_crdt::ContextId;
use mero_executor::Executor;
use mero_network::{Multiaddr, NetworkConfig};
use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::{Store, StoreConfig};

use crate::blobstore::BlobStore;
use crate::error::{NodeError, Result};
use crate::events::EventBus;
use crate::heartbeats::Heartbeats;
use crate::membership::Membership;
use crate::peers::Peers;
use crate::presence::Presences;
use crate::replication::{self, Replicator, SyncStatus};
use crate::sync::{context_topic, namespace_topic};
use crate::tasks::Tasks;

/// Largest request or answer on the wire: a snapshot of a large context is
/// one answer. Gossip keeps the network's much smaller default
/// ([`mero_network::DEFAULT_MAX_GOSSIP_BYTES`]): deltas over 1 MiB are
/// announced, not gossiped, and nothing else a member gossips comes near it.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node directory (`<home>/<name>`).
    pub dir: PathBuf,
    /// Its configuration.
    pub config: ConfigFile,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) config: ConfigFile,
    pub(crate) identity: SigningKey,
    pub(crate) store: Store,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) exec: Executor,
    pub(crate) http: reqwest::Client,
    pub(crate) peers: Arc<Peers>,
    pub(crate) members: Arc<Membership>,
    pub(crate) replication: Arc<Replicator>,
    pub(crate) events: Arc<EventBus>,
    /// Members' transient state in contexts.
    pub(crate) presence: Arc<Presences>,
    /// Members' migration reports.
    pub(crate) heartbeats: Arc<Heartbeats>,
    /// Woken when this node's migration report may have changed.
    pub(crate) heartbeat_due: Arc<tokio::sync::Notify>,
    /// The last migration rollups announced, per namespace.
    pub(crate) rollups: crate::upgrades::Rollups,
    /// Blobs users uploaded or fetched.
    pub(crate) blobs: Arc<BlobStore>,
    /// The node's own tasks (forwarding commits, running handlers).
    pub(crate) tasks: Tasks,
    /// Woken when merged deltas may have left event handlers to run.
    pub(crate) handlers_due: Arc<tokio::sync::Notify>,
    /// The runtime migrations run on: fuel, stopped clocks, seeded
    /// randomness, so every node computes the same state.
    pub(crate) migrations: Arc<Runtime>,
    /// Upgrade progress and failed verdicts on this node.
    pub(crate) upgrades: crate::upgrades::status::Upgrades,
    /// Held while a context is joined: an explicit join and auto-follow
    /// may reach for the same context at once.
    pub(crate) joining: tokio::sync::Mutex<()>,
    /// This node's recent calls, re-run when one lands past an upgrade's cut.
    pub(crate) journal: crate::upgrades::journal::Journal,
    /// This member's authored entries left to rewrite after upgrades.
    pub(crate) authored: crate::upgrades::authored::Authored,
    /// Contexts taking a migrated member's state after writing past a cut.
    pub(crate) rejoining: std::sync::Mutex<std::collections::HashSet<ContextId>>,
    /// When [`Node::start`] ran, Unix milliseconds.
    pub(crate) started_at_millis: u64,
    /// What the chains say, from `[chains]` in the config.
    pub(crate) relayers: crate::relayer::Relayers,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
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
        let migrations = Runtime::new(
            RuntimeConfig {
                cache_dir: Some(config.blobstore_dir(&dir).join("compiled")),
                max_memory_bytes: usize::try_from(limits.max_memory_mib.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
                ..RuntimeConfig::default()
            }
            .deterministic(mero_runtime::DEFAULT_MIGRATION_FUEL),
        )
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        // A relayer endpoint this build cannot use fails the start, not
        // the first query.
        let relayers = crate::relayer::Relayers::from_config(&config.chains)
            .map_err(|e| NodeError::Internal(format!("config.toml: {e}")))?;
        let me = identity.verifying_key().to_bytes();
        let journal = crate::upgrades::journal::Journal::load(&store.snapshot()?)?;
        let events: Arc<EventBus> = Arc::default();
        let peers: Arc<Peers> = Arc::default();
        let members = Arc::new(Membership::load(
            store.clone(),
            identity.clone(),
            events.clone(),
            peers.clone(),
        )?);
        members.set_relayers(relayers.clone());
        // The executor asks membership for this node's standing as each
        // delta is authored.
        let exec = Executor::spawn_governed(
            runtime.clone(),
            store.clone(),
            identity.clone(),
            members.standing(me),
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let presence = Arc::new(Presences::new(
            identity.clone(),
            events.clone(),
            Duration::from_millis(config.presence.ttl_ms),
        ));
        let heartbeats = Arc::new(Heartbeats::new(
            identity.clone(),
            Duration::from_millis(config.migration.heartbeat_ms),
        ));
        let blobs = Arc::new(BlobStore::new(
            &config.blobstore_dir(&dir),
            store.clone(),
            config.blobstore.max_blob_bytes(),
        ));
        let replication = Replicator::new(replication::Parts {
            exec: exec.clone(),
            store: store.clone(),
            members: members.clone(),
            peers: peers.clone(),
            events: events.clone(),
            presence: presence.clone(),
            heartbeats: heartbeats.clone(),
            blobs: blobs.clone(),
            migrations: migrations.clone(),
            take_unproven: config.snapshots.take_unproven,
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
                presence,
                heartbeats,
                heartbeat_due: Arc::default(),
                rollups: Default::default(),
                blobs,
                tasks: Tasks::default(),
                handlers_due: Arc::default(),
                migrations,
                upgrades: Default::default(),
                joining: tokio::sync::Mutex::new(()),
                journal,
                authored: Default::default(),
                rejoining: Default::default(),
                started_at_millis: mero_crdt::hlc::wall_millis(),
                relayers,
            }),
        };
        // Apps' calls read and make blobs through the node's store; the
        // migrations' runtime gets none (nodes hold different blobs).
        node.inner
            .runtime
            .offer_blobs(Arc::new(crate::app_blobs::AppBlobs::new(Arc::downgrade(
                &node.inner,
            ))));
        // Apps read the executing member's proven chain identities; the
        // migrations' runtime gets none (a migration must not depend on
        // what this node has folded).
        node.inner
            .runtime
            .offer_chain_identities(Arc::new(crate::chains::AppChainIdentities(Arc::downgrade(
                &node.inner.members,
            ))));
        node.forward_commits();
        node.run_handlers();
        node.run_upgrades();
        node.run_journal();
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
        // Before any peer is heard: strangers' large requests and junk
        // gossip are judged from the first message.
        self.inner.replication.guard_network();
        for ns in self.inner.members.all() {
            self.inner.peers.subscribe(&namespace_topic(&ns.id)).await;
        }
        for meta in self.inner.store.snapshot()?.contexts()? {
            self.inner.peers.subscribe(&context_topic(&meta.id)).await;
        }
        self.inner.replication.start(events);
        // Following needs peers to fetch from: it starts with networking.
        self.run_follow();
        self.run_heals();
        self.run_presence();
        self.run_heartbeats();
        Ok(())
    }

    /// Stops replication and the node's tasks, finishes queued work and
    /// stops the engine and networking; the database closes when the last
    /// handle is dropped.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.replication.shutdown().await;
        self.inner.tasks.shutdown().await;
        // After the tasks (nothing re-runs calls any more), before the
        // engine stops: the calls made until now are there after a restart.
        self.save_journal().await;
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

    /// Where this node's swarm listens now (none without networking).
    pub async fn listen_addrs(&self) -> Vec<String> {
        self.inner.peers.listen_addrs().await
    }

    /// Peers connected now.
    pub async fn peer_count(&self) -> usize {
        self.inner.peers.connected().await.len()
    }

    /// Whether the node can do its work now, check by check.
    pub fn readiness(&self) -> Readiness {
        let store = self.inner.store.refusing_commits();
        let log = self
            .inner
            .store
            .log_broken()
            .then(|| "the write-ahead log is broken; restart the node".to_string());
        let executor = self
            .inner
            .exec
            .has_ended()
            .map(|why| format!("the executor has ended: {why}"));
        let network = self.inner.peers.not_running().map(str::to_string);
        Readiness {
            store,
            log,
            executor,
            network,
        }
    }

    /// Asks for an anti-entropy round now.
    pub fn trigger_sync(&self) -> Result<()> {
        self.inner.peers.client()?;
        self.inner.replication.trigger();
        Ok(())
    }

    /// Asks for an anti-entropy round of `ctx` alone now.
    pub fn trigger_sync_of(&self, ctx: &ContextId) -> Result<()> {
        self.inner.peers.client()?;
        self.inner.replication.trigger_one(*ctx);
        Ok(())
    }

    /// A context's replication status.
    pub fn sync_status(&self, ctx: &ContextId) -> SyncStatus {
        self.inner.replication.status(ctx)
    }

    /// How long anti-entropy waits between rounds.
    pub fn sync_every(&self) -> Duration {
        Duration::from_millis(self.inner.config.sync.frequency_ms.max(100))
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

/// What keeps a node from doing its work: each field says why its part
/// cannot, or is `None` when it can.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The store refuses commits (flushes to LMDB keep failing).
    pub store: Option<String>,
    /// The write-ahead log is broken.
    pub log: Option<String>,
    /// The executor, which runs every call and commit, has ended.
    pub executor: Option<String>,
    /// Networking is not running.
    pub network: Option<String>,
}

impl Readiness {
    /// Whether every part can work.
    pub fn ready(&self) -> bool {
        self.store.is_none()
            && self.log.is_none()
            && self.executor.is_none()
            && self.network.is_none()
    }
}
