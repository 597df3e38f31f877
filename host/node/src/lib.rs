//! A node: the engine (store, runtime, executor) plus what users manage on
//! it: installed applications, namespaces (root groups) with their members,
//! contexts and aliases. The HTTP server and the binaries are thin layers
//! over [`Node`].
//!
//! Ids are raw 32-byte arrays here; encodings belong to the wire format.

mod error;
pub mod events;
pub mod governance;
pub mod invitation;
pub mod keys;
mod replication;
pub mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mero_config::ConfigFile;
use mero_crdt::{ContextId, DeltaId, Hash};
use mero_runtime::{App, CallOutcome, Executor, Intent, NewContext, Runtime, RuntimeConfig};
use mero_store::{ApplicationRecord, ContextMeta, GroupRecord, MemberRecord, Store, StoreConfig};
use sha2::{Digest, Sha256};

pub use error::NodeError;
pub use mero_store::Role;

/// Result of node operations.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// Largest component accepted at install.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;
/// Longest alias.
pub const MAX_ALIAS_LEN: usize = 50;

/// Capability bits of a group member, as upstream numbers them.
pub mod caps {
    /// May create contexts in the group.
    pub const CREATE_CONTEXT: u32 = 1;
    /// May invite members.
    pub const INVITE_MEMBERS: u32 = 1 << 1;
    /// Is a member of open subgroups by inheritance.
    pub const JOIN_OPEN_SUBGROUPS: u32 = 1 << 2;
    /// May change members' roles and capabilities and remove them.
    pub const MANAGE_MEMBERS: u32 = 1 << 3;
    /// May upgrade the group's application.
    pub const MANAGE_APPLICATION: u32 = 1 << 4;
    /// May create subgroups.
    pub const CREATE_SUBGROUP: u32 = 1 << 5;
    /// May delete subgroups.
    pub const DELETE_SUBGROUP: u32 = 1 << 6;
    /// May change a subgroup's visibility.
    pub const MANAGE_VISIBILITY: u32 = 1 << 7;
    /// May change metadata.
    pub const MANAGE_METADATA: u32 = 1 << 8;
    /// What members get by default.
    pub const DEFAULT: u32 = JOIN_OPEN_SUBGROUPS;
}

/// Where an application's component comes from.
#[derive(Debug, Clone)]
pub enum InstallSource {
    /// A file on the node's machine.
    Path(PathBuf),
    /// A URL, which must be on loopback; `hash` is the expected SHA-256.
    Url {
        /// The URL.
        url: String,
        /// Expected SHA-256 of the bytes.
        hash: Option<[u8; 32]>,
    },
    /// Bytes uploaded by the client.
    Bytes(Vec<u8>),
}

/// An installed application with what its component declares.
#[derive(Debug, Clone)]
pub struct Application {
    /// The stored record.
    pub record: ApplicationRecord,
    /// Methods and their intent, if the component loads.
    pub methods: Vec<(String, Intent)>,
}

/// A context with what the API shows about it.
#[derive(Debug, Clone)]
pub struct ContextInfo {
    /// Its metadata.
    pub meta: ContextMeta,
    /// Its state root hash.
    pub root_hash: Hash,
    /// Its DAG heads.
    pub heads: Vec<DeltaId>,
}

/// A namespace with its counts and contexts.
#[derive(Debug, Clone)]
pub struct NamespaceInfo {
    /// The group record.
    pub group: GroupRecord,
    /// Its members.
    pub members: usize,
    /// Its direct subgroups.
    pub subgroups: usize,
    /// Its contexts.
    pub contexts: Vec<ContextMeta>,
    /// The version of its application, if installed.
    pub app_version: Option<String>,
    /// Its governance heads here: the ops this node's next delta names.
    pub governance_heads: Vec<[u8; 32]>,
}

/// A subgroup of a namespace.
#[derive(Debug, Clone)]
pub struct Subgroup {
    /// Its id.
    pub id: [u8; 32],
    /// Its parent group.
    pub parent: [u8; 32],
    /// A human name.
    pub name: Option<String>,
    /// Open (inherits the parent's members) or restricted.
    pub open: bool,
    /// Its effective members.
    pub members: usize,
    /// Contexts attached to it.
    pub contexts: usize,
}

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
    /// Networking, once started.
    net: std::sync::OnceLock<replication::Net>,
    /// Governance state of every namespace this node knows.
    gov: replication::Governance,
    /// Namespace keys this node holds, by namespace and epoch.
    keys: std::sync::Mutex<NamespaceKeys>,
    /// Held while the keys are persisted.
    keys_written: tokio::sync::Mutex<()>,
    /// Events for subscribers.
    events: Arc<events::EventBus>,
    /// Woken when merged deltas may have left event handlers to run.
    handlers_due: Arc<tokio::sync::Notify>,
}

type NamespaceKeys =
    std::collections::HashMap<[u8; 32], std::collections::BTreeMap<u32, Vec<[u8; 32]>>>;

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

fn now_millis() -> u64 {
    mero_crdt::hlc::wall_millis()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
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
        // Shared with the executor, which asks it for this node's standing
        // as each delta is authored.
        let gov = replication::Governance::default();
        let exec = Executor::spawn_governed(
            runtime.clone(),
            store.clone(),
            identity.clone(),
            replication::standing(gov.clone(), identity.verifying_key().to_bytes()),
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let node = Node {
            inner: Arc::new(Inner {
                dir,
                config,
                identity,
                store,
                runtime,
                exec,
                http,
                net: std::sync::OnceLock::new(),
                gov,
                keys: Default::default(),
                keys_written: tokio::sync::Mutex::new(()),
                events: Arc::default(),
                handlers_due: Arc::default(),
            }),
        };
        node.forward_commits();
        node.run_handlers();
        node.load_governance()?;
        node.load_keys()?;
        Ok(node)
    }

    /// Finishes queued work and stops the engine; the database closes when
    /// the last handle is dropped.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.exec.shutdown().await?;
        self.stop_network().await;
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

    // ------------------------------------------------------- applications

    /// Installs an application: reads the component, checks that it is a
    /// component implementing the app world (else 400), compiles it, and
    /// records it. Installing the same thing again gives the same id.
    pub async fn install_application(
        &self,
        source: InstallSource,
        metadata: Vec<u8>,
        package: Option<String>,
        version: Option<String>,
    ) -> Result<[u8; 32]> {
        let (bytes, source_text) = match source {
            InstallSource::Path(path) => read_component(&path).await?,
            InstallSource::Url { url, hash } => {
                let bytes = self.fetch(&url).await?;
                if let Some(expected) = hash
                    && sha256(&bytes) != expected
                {
                    return Err(NodeError::bad(
                        "HashMismatch",
                        "the downloaded component does not match `hash`",
                    ));
                }
                (bytes, url)
            }
            InstallSource::Bytes(bytes) => (bytes, "upload".to_string()),
        };
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(NodeError::bad(
                "ComponentTooLarge",
                format!(
                    "component of {} bytes is over the limit of {MAX_COMPONENT_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let app = self.load_component(&bytes).await?;
        let blob = app.hash();
        let size = bytes.len() as u64;
        let id = sha256(
            &[
                &blob[..],
                &size.to_le_bytes(),
                source_text.as_bytes(),
                &metadata,
            ]
            .concat(),
        );
        let record = ApplicationRecord {
            id,
            blob,
            size,
            source: source_text,
            metadata,
            package: package
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "unknown".into()),
            version: version
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "0.0.0".into()),
            state_version: app.description().state_version,
            installed_at_millis: now_millis(),
        };
        self.store_application(record, bytes).await?;
        Ok(id)
    }

    async fn load_component(&self, bytes: &[u8]) -> Result<Arc<App>> {
        self.inner.runtime.load(bytes).await.map_err(|e| match e {
            mero_runtime::LoadError::Invalid(m) => {
                NodeError::bad("InvalidComponent", format!("invalid component: {m}"))
            }
            mero_runtime::LoadError::Host(m) => NodeError::Internal(m),
        })
    }

    async fn store_application(&self, record: ApplicationRecord, bytes: Vec<u8>) -> Result<()> {
        let (id, package, blob) = (record.id, record.package.clone(), record.blob);
        let store = self.inner.store.clone();
        blocking(move || {
            let mut w = store.write()?;
            w.put_blob(&blob, &bytes)?;
            w.put_application(&record)?;
            w.commit()?;
            Ok(())
        })
        .await?;
        tracing::info!(application = %bs58::encode(id).into_string(), %package, "application installed");
        Ok(())
    }

    /// Installs a namespace's application from bytes a member sent (their
    /// hash already checked against `app.blob`), under the namespace's
    /// application id.
    pub(crate) async fn install_replicated(
        &self,
        app: &governance::AppInfo,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let loaded = self.load_component(&bytes).await?;
        if loaded.hash() != app.blob {
            return Err(NodeError::bad(
                "HashMismatch",
                "the component fetched from a member is not the namespace's",
            ));
        }
        let record = ApplicationRecord {
            id: app.id,
            blob: app.blob,
            size: bytes.len() as u64,
            source: app.source.clone(),
            metadata: Vec::new(),
            package: app.package.clone(),
            version: app.version.clone(),
            state_version: loaded.description().state_version,
            installed_at_millis: now_millis(),
        };
        self.store_application(record, bytes).await
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| NodeError::bad("InvalidUrl", format!("invalid url `{url}`: {e}")))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(NodeError::bad(
                "InvalidUrl",
                "only http and https URLs can be installed from",
            ));
        }
        // This node never sends traffic beyond the machine: installs come
        // from loopback only.
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if !loopback {
            return Err(NodeError::Forbidden {
                kind: "NonLoopbackUrl",
                message: format!(
                    "installing from `{url}` is refused: only loopback URLs (127.0.0.1, ::1, localhost) are allowed"
                ),
            });
        }
        let fail = |e: reqwest::Error| {
            NodeError::bad("DownloadFailed", format!("cannot download `{url}`: {e}"))
        };
        let mut resp = self.inner.http.get(parsed).send().await.map_err(fail)?;
        if !resp.status().is_success() {
            return Err(NodeError::bad(
                "DownloadFailed",
                format!("`{url}` answered {}", resp.status()),
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(fail)? {
            if bytes.len() + chunk.len() > MAX_COMPONENT_BYTES {
                return Err(NodeError::bad(
                    "ComponentTooLarge",
                    format!("`{url}` is over {MAX_COMPONENT_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn describe(&self, record: &ApplicationRecord) -> Application {
        let methods = self
            .inner
            .runtime
            .loaded(&record.blob)
            .map(|app: Arc<App>| {
                app.description()
                    .methods
                    .iter()
                    .map(|(m, i)| (m.clone(), *i))
                    .collect()
            })
            .unwrap_or_default();
        Application {
            record: record.clone(),
            methods,
        }
    }

    /// Every installed application.
    pub fn applications(&self) -> Result<Vec<Application>> {
        let apps = self.inner.store.snapshot()?.applications()?;
        Ok(apps.iter().map(|r| self.describe(r)).collect())
    }

    /// An installed application (404 if unknown).
    pub fn application(&self, id: &[u8; 32]) -> Result<Application> {
        let record = self
            .inner
            .store
            .snapshot()?
            .application(id)?
            .ok_or_else(|| NodeError::not_found("ApplicationNotFound", "Application not found"))?;
        Ok(self.describe(&record))
    }

    /// Uninstalls an application. Refused (409) while a context runs it.
    pub async fn uninstall_application(&self, id: &[u8; 32]) -> Result<()> {
        let snap = self.inner.store.snapshot()?;
        let record = snap
            .application(id)?
            .ok_or_else(|| NodeError::not_found("ApplicationNotFound", "Application not found"))?;
        let used = snap
            .contexts()?
            .iter()
            .filter(|c| c.application == *id)
            .count();
        if used > 0 {
            return Err(NodeError::conflict(
                "ApplicationInUse",
                format!("{used} context(s) run this application; delete them first"),
            ));
        }
        let shared = snap
            .applications()?
            .iter()
            .any(|a| a.id != *id && a.blob == record.blob)
            || snap.contexts()?.iter().any(|c| c.blob == record.blob);
        drop(snap);
        let store = self.inner.store.clone();
        let id = *id;
        blocking(move || {
            let mut w = store.write()?;
            w.delete_application(&id)?;
            if !shared {
                w.delete_blob(&record.blob)?;
            }
            w.commit()?;
            Ok(())
        })
        .await
    }

    // ---------------------------------------------------------- namespaces

    /// Creates a namespace running `application` with this node as its
    /// creator (admin), and its first context (running `init` with
    /// `init_params`). Returns the namespace and context ids.
    pub async fn create_namespace(
        &self,
        application: &[u8; 32],
        name: Option<String>,
        app_key: Option<[u8; 32]>,
        init_params: Vec<u8>,
    ) -> Result<([u8; 32], ContextId)> {
        let app = self.application(application)?.record;
        if let Some(key) = app_key
            && key != app.blob
        {
            return Err(NodeError::bad(
                "InvalidAppKey",
                format!(
                    "appKey {} is not the component of application {}",
                    hex::encode(key),
                    hex::encode(app.id)
                ),
            ));
        }
        let id = self
            .create_governance(
                name.clone(),
                governance::AppInfo {
                    id: app.id,
                    blob: app.blob,
                    size: app.size,
                    package: app.package.clone(),
                    version: app.version.clone(),
                    source: app.source.clone(),
                },
            )
            .await?;
        match self
            .create_context(application, &id, init_params, None, name)
            .await
        {
            Ok(ctx) => Ok((id, ctx)),
            Err(e) => {
                // The namespace exists only with its first context.
                let store = self.inner.store.clone();
                self.gov(|g| g.remove(&id));
                let _ = blocking(move || {
                    let mut w = store.write()?;
                    w.delete_group(&id)?;
                    w.delete_governance(&id)?;
                    w.commit()?;
                    Ok(())
                })
                .await;
                Err(e)
            }
        }
    }

    fn namespace_info(
        &self,
        snap: &mero_store::Snapshot,
        group: GroupRecord,
        all: &[ContextMeta],
    ) -> Result<NamespaceInfo> {
        let members = snap.members(&group.id)?.len();
        let subgroups = snap
            .groups()?
            .iter()
            .filter(|g| g.parent == Some(group.id))
            .count();
        let contexts = all
            .iter()
            .filter(|c| c.group == Some(group.id))
            .cloned()
            .collect();
        let app_version = snap.application(&group.application)?.map(|a| a.version);
        let governance_heads = self.gov(|g| {
            g.get(&group.id)
                .map(|s| s.heads.iter().copied().collect())
                .unwrap_or_default()
        });
        Ok(NamespaceInfo {
            group,
            members,
            subgroups,
            contexts,
            app_version,
            governance_heads,
        })
    }

    /// Every namespace this node knows.
    pub fn namespaces(&self) -> Result<Vec<NamespaceInfo>> {
        let snap = self.inner.store.snapshot()?;
        let contexts = snap.contexts()?;
        let mut groups: Vec<GroupRecord> = snap
            .groups()?
            .into_iter()
            .filter(|g| g.parent.is_none())
            .collect();
        groups.sort_by_key(|g| g.created_at_millis);
        groups
            .into_iter()
            .map(|g| self.namespace_info(&snap, g, &contexts))
            .collect()
    }

    /// One namespace (404 if unknown).
    pub fn namespace(&self, id: &[u8; 32]) -> Result<NamespaceInfo> {
        let snap = self.inner.store.snapshot()?;
        let group = snap
            .group(id)?
            .filter(|g| g.parent.is_none())
            .ok_or_else(|| NodeError::not_found("NamespaceNotFound", "Namespace not found"))?;
        let contexts = snap.contexts()?;
        self.namespace_info(&snap, group, &contexts)
    }

    /// Deletes a namespace, its subgroups and their contexts from this node.
    /// Returns whether it existed.
    pub async fn delete_namespace(&self, id: &[u8; 32]) -> Result<bool> {
        let snap = self.inner.store.snapshot()?;
        if snap.group(id)?.filter(|g| g.parent.is_none()).is_none() {
            return Ok(false);
        }
        let groups = snap.groups()?;
        let mut doomed = vec![*id];
        let mut i = 0;
        while let Some(g) = doomed.get(i).copied() {
            doomed.extend(groups.iter().filter(|c| c.parent == Some(g)).map(|c| c.id));
            i += 1;
        }
        let contexts: Vec<ContextId> = snap
            .contexts()?
            .iter()
            .filter(|c| c.group.is_some_and(|g| doomed.contains(&g)))
            .map(|c| c.id)
            .collect();
        drop(snap);
        for ctx in contexts {
            self.inner.exec.delete_context(ctx).await?;
        }
        let store = self.inner.store.clone();
        blocking(move || {
            let mut w = store.write()?;
            for g in &doomed {
                w.delete_group(g)?;
                w.delete_governance(g)?;
            }
            w.commit()?;
            Ok(())
        })
        .await?;
        self.gov(|g| g.remove(id));
        Ok(true)
    }

    // ------------------------------------------------------------ contexts

    fn require_member(
        &self,
        snap: &mero_store::Snapshot,
        group: &[u8; 32],
        need: u32,
    ) -> Result<MemberRecord> {
        let group_rec = snap
            .group(group)?
            .ok_or_else(|| NodeError::not_found("GroupNotFound", "Namespace or group not found"))?;
        let member =
            snap.member(group, &self.public_key())?
                .ok_or_else(|| NodeError::Forbidden {
                    kind: "NotAGroupMember",
                    message: "this node is not a member of the group".into(),
                })?;
        let effective = member
            .capabilities
            .unwrap_or(group_rec.default_capabilities);
        if member.role != Role::Admin && effective & need != need {
            return Err(NodeError::Forbidden {
                kind: "MissingCapability",
                message: "this node's member lacks the capability to do that in the group".into(),
            });
        }
        Ok(member)
    }

    /// Creates a context of `group` (a namespace or one of its subgroups)
    /// running `application`, and runs its `init` with `init_params` (JSON
    /// bytes). The context is registered in the group's governance first,
    /// so its first delta names its registration.
    pub async fn create_context(
        &self,
        application: &[u8; 32],
        group: &[u8; 32],
        init_params: Vec<u8>,
        seed: Option<[u8; 32]>,
        name: Option<String>,
    ) -> Result<ContextId> {
        let ns = self.namespace_of_group(group).unwrap_or(*group);
        let snap = self.inner.store.snapshot()?;
        self.require_member(&snap, &ns, caps::CREATE_CONTEXT)?;
        let me = self.public_key();
        if !self.gov(|g| g.get(&ns).is_some_and(|s| s.in_group(&me, group))) {
            return Err(NodeError::Forbidden {
                kind: "NotAGroupMember",
                message: "this node is not a member of the group".into(),
            });
        }
        let group_rec = snap
            .group(&ns)?
            .ok_or_else(|| NodeError::not_found("GroupNotFound", "Namespace or group not found"))?;
        let app = snap
            .application(application)?
            .ok_or_else(|| NodeError::not_found("ApplicationNotFound", "Application not found"))?;
        if app.id != group_rec.application {
            return Err(NodeError::bad(
                "ApplicationMismatch",
                "the group runs another application; create the context with the group's application",
            ));
        }
        drop(snap);
        let args = String::from_utf8(init_params).map_err(|_| {
            NodeError::bad(
                "InvalidInitParams",
                "initializationParams must be UTF-8 JSON",
            )
        })?;
        if !args.trim().is_empty() && serde_json::from_str::<serde_json::Value>(&args).is_err() {
            return Err(NodeError::bad(
                "InvalidInitParams",
                "initializationParams must be JSON",
            ));
        }
        // Bound to the namespace and this node's key: a seed gives the same
        // id for the same creator in the same namespace.
        let salt = match seed {
            Some(s) => sha256(&[b"mero.context.seed".as_slice(), &s].concat()),
            None => rand::random(),
        };
        let id = ContextId(governance::scoped_id(&ns, &self.public_key(), &salt));
        // A seeded id may be registered from an earlier creation.
        let registered = self.gov(|g| {
            g.get(&ns)
                .and_then(|s| s.group_of(&id.0))
                .map(|at| at == *group)
        });
        match registered {
            Some(true) => {}
            Some(false) => {
                return Err(NodeError::Conflict {
                    kind: "ContextExists",
                    message: "a context with that id is registered in another group".into(),
                });
            }
            None => {
                self.change(
                    &ns,
                    governance::Body::ContextRegistered {
                        context: id.0,
                        name: name.clone(),
                        group: *group,
                        salt,
                    },
                )
                .await?;
            }
        }
        let created = self
            .inner
            .exec
            .create_context(NewContext {
                id,
                application: app.id,
                blob: app.blob,
                app_version: app.version,
                group: Some(ns),
                name,
                init_args: args,
            })
            .await;
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                if registered.is_none() {
                    // Withdraw the registration of a context that never was.
                    let _ = self
                        .author_op(ns, governance::Body::ContextDetached { context: id.0 })
                        .await;
                }
                return Err(match e {
                    mero_runtime::ExecError::Call(c) => {
                        NodeError::bad("InitFailed", format!("init failed: {c}"))
                    }
                    other => other.into(),
                });
            }
        };
        self.subscribe(&sync::context_topic(&created.id)).await;
        Ok(created.id)
    }

    fn info(&self, snap: &mero_store::Snapshot, meta: ContextMeta) -> Result<ContextInfo> {
        Ok(ContextInfo {
            root_hash: snap.root_hash(&meta.id)?,
            heads: snap.heads(&meta.id)?,
            meta,
        })
    }

    /// Every context on this node.
    pub fn contexts(&self) -> Result<Vec<ContextInfo>> {
        let snap = self.inner.store.snapshot()?;
        let mut metas = snap.contexts()?;
        metas.sort_by_key(|m| m.created_at_millis);
        metas.into_iter().map(|m| self.info(&snap, m)).collect()
    }

    /// One context (404 if unknown).
    pub fn context(&self, id: &ContextId) -> Result<ContextInfo> {
        let snap = self.inner.store.snapshot()?;
        let meta = snap
            .context_meta(id)?
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?;
        self.info(&snap, meta)
    }

    /// Deletes a context and everything this node stores for it. Returns
    /// whether it existed.
    pub async fn delete_context(&self, id: &ContextId) -> Result<bool> {
        let existed = self.inner.exec.delete_context(*id).await?;
        let store = self.inner.store.clone();
        let id = *id;
        blocking(move || {
            let snap = store.snapshot()?;
            let stale: Vec<String> = snap
                .aliases("context")?
                .into_iter()
                .filter(|(_, v)| *v == id.0)
                .map(|(k, _)| k)
                .collect();
            drop(snap);
            if !stale.is_empty() {
                let mut w = store.write()?;
                for name in stale {
                    w.delete_alias("context", &name)?;
                }
                w.commit()?;
            }
            Ok(())
        })
        .await?;
        Ok(existed)
    }

    /// Calls `method` of a context with `args` (a JSON object keyed by
    /// parameter name; null for none). Views answer from committed state;
    /// mutating calls answer once durable.
    pub async fn execute(
        &self,
        ctx: &ContextId,
        method: &str,
        args: &serde_json::Value,
    ) -> Result<CallOutcome> {
        self.execute_text(ctx, method, args_text(args)).await
    }

    /// [`Node::execute`] with the arguments as JSON text already (empty for
    /// none), as the JSON-RPC route receives them.
    pub async fn execute_text(
        &self,
        ctx: &ContextId,
        method: &str,
        args: String,
    ) -> Result<CallOutcome> {
        // Membership decides who may call, by the method's intent.
        Ok(self
            .inner
            .exec
            .call_authorized(ctx, method, args, |meta, intent| {
                self.check_call(meta.group.as_ref(), &meta.id, intent == Intent::Mutating)
            })
            .await?)
    }

    // ------------------------------------------------------------- aliases

    /// Points alias `name` of `kind` (`context` or `application`) at `id`.
    pub async fn create_alias(&self, kind: &'static str, name: &str, id: [u8; 32]) -> Result<()> {
        if name.is_empty()
            || name.len() > MAX_ALIAS_LEN
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(NodeError::bad(
                "InvalidAlias",
                format!(
                    "an alias is 1 to {MAX_ALIAS_LEN} characters of A-Z, a-z, 0-9, '.', '_' and '-'"
                ),
            ));
        }
        let snap = self.inner.store.snapshot()?;
        let exists = match kind {
            "context" => snap.context_meta(&ContextId(id))?.is_some(),
            _ => snap.application(&id)?.is_some(),
        };
        if !exists {
            return Err(NodeError::not_found(
                "NotFound",
                format!("no {kind} with that id"),
            ));
        }
        if snap.alias(kind, name)?.is_some_and(|old| old != id) {
            return Err(NodeError::conflict(
                "AliasExists",
                format!("alias `{name}` already names another {kind}"),
            ));
        }
        drop(snap);
        let store = self.inner.store.clone();
        let name = name.to_string();
        blocking(move || {
            let mut w = store.write()?;
            w.put_alias(kind, &name, &id)?;
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// What alias `name` of `kind` stands for.
    pub fn lookup_alias(&self, kind: &str, name: &str) -> Result<Option<[u8; 32]>> {
        Ok(self.inner.store.snapshot()?.alias(kind, name)?)
    }

    /// Every alias of `kind`.
    pub fn aliases(&self, kind: &str) -> Result<Vec<(String, [u8; 32])>> {
        Ok(self.inner.store.snapshot()?.aliases(kind)?)
    }

    /// Removes an alias; returns whether it existed.
    pub async fn delete_alias(&self, kind: &'static str, name: &str) -> Result<bool> {
        let store = self.inner.store.clone();
        let name = name.to_string();
        blocking(move || {
            let mut w = store.write()?;
            let existed = w.delete_alias(kind, &name)?;
            w.commit()?;
            Ok(existed)
        })
        .await
    }
}

async fn read_component(path: &Path) -> Result<(Vec<u8>, String)> {
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(NodeError::bad(
            "InvalidPath",
            "the path must not contain `..`",
        ));
    }
    if !path.is_absolute() {
        return Err(NodeError::bad(
            "InvalidPath",
            format!(
                "`{}` is not an absolute path on the node's machine",
                path.display()
            ),
        ));
    }
    if let Some(root) = std::env::var_os("MEROD_DEV_INSTALL_ROOT")
        && !path.starts_with(Path::new(&root))
    {
        return Err(NodeError::Forbidden {
            kind: "PathOutsideInstallRoot",
            message: format!("installs are confined to {}", Path::new(&root).display()),
        });
    }
    let bytes = tokio::fs::read(path).await.map_err(|e| {
        NodeError::bad(
            "UnreadablePath",
            format!(
                "cannot read `{}` on the node's machine: {e}",
                path.display()
            ),
        )
    })?;
    Ok((bytes, format!("file://{}", path.display())))
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeError::Internal(e.to_string()))?
}

/// A call's arguments as the JSON text a guest receives: empty for none.
pub fn args_text(args: &serde_json::Value) -> String {
    match args {
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
