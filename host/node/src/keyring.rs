//! The keys this node holds: of namespaces and of their restricted
//! subgroups (see [`crate::governance::group_keys`]), by id and epoch, in
//! memory and in the group's node-local private storage. It seals and
//! opens gossip, takes keys wrapped for this node out of governance ops,
//! and prepares a key (the current one, or a new epoch) wrapped for
//! members.
//! The cryptography itself is in [`crate::keys`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use mero_store::{Snapshot, Store};

use crate::blocking::blocking;
use crate::error::{NodeError, Result};
use crate::governance::{Body, OpId, SignedOp};
use crate::keys::{self, Sealed, Wrapped};

/// Where a node keeps a namespace's or a restricted subgroup's keys:
/// private storage of its id (never replicated).
const KEYS_SLOT: &[u8] = b"mero.namespace-keys";

/// Every key of one namespace or subgroup, by epoch (a rotation may race:
/// an epoch can hold more than one key).
pub type Epochs = BTreeMap<u32, Vec<[u8; 32]>>;

/// The keys of `id` (a namespace or a restricted subgroup) that a node's
/// store holds: what the node loads at start, and what a test reads from
/// a stopped node to see what it could open.
pub fn stored_keys(snap: &Snapshot, id: &[u8; 32]) -> Result<Option<Epochs>> {
    let Some(bytes) = snap.private_get(&ContextId(*id), KEYS_SLOT)? else {
        return Ok(None);
    };
    borsh::from_slice(&bytes)
        .map(Some)
        .map_err(|e| NodeError::Internal(format!("undecodable keys: {e}")))
}

/// A key to share, wrapped for the members it is for.
#[derive(Debug)]
pub(crate) struct Share {
    /// Its epoch.
    pub(crate) epoch: u32,
    /// The key itself, remembered once the op that carries it is applied.
    pub(crate) key: [u8; 32],
    /// The key wrapped for each member.
    pub(crate) wrapped: Vec<Wrapped>,
}

/// The node's namespace keys.
pub(crate) struct KeyRing {
    store: Store,
    identity: SigningKey,
    keys: Mutex<HashMap<[u8; 32], Epochs>>,
    /// Held while the keys are persisted, so an older copy never
    /// overwrites a newer one.
    written: tokio::sync::Mutex<()>,
}

impl KeyRing {
    /// The keys stored for every group the store knows.
    pub(crate) fn load(store: Store, identity: SigningKey) -> Result<KeyRing> {
        let snap = store.snapshot()?;
        let mut keys = HashMap::new();
        for group in snap.groups()? {
            match stored_keys(&snap, &group.id) {
                Ok(Some(k)) => {
                    keys.insert(group.id, k);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "namespace keys not loaded"),
            }
        }
        drop(snap);
        Ok(KeyRing {
            store,
            identity,
            keys: Mutex::new(keys),
            written: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Epochs>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest key of `ns` this node holds, with its epoch.
    pub(crate) fn current(&self, ns: &[u8; 32]) -> Option<(u32, [u8; 32])> {
        self.lock()
            .get(ns)?
            .iter()
            .next_back()
            .and_then(|(e, list)| list.last().map(|k| (*e, *k)))
    }

    /// Seals `plaintext` for `ns`'s members with the current key.
    pub(crate) fn seal(&self, ns: &[u8; 32], plaintext: &[u8]) -> Option<Sealed> {
        let (epoch, key) = self.current(ns)?;
        keys::seal(ns, epoch, &key, plaintext)
    }

    /// Opens sealed bytes with any key this node holds for their epoch.
    pub(crate) fn open(&self, sealed: &Sealed) -> Option<Vec<u8>> {
        let candidates = self
            .lock()
            .get(&sealed.namespace)
            .and_then(|m| m.get(&sealed.epoch))
            .cloned()
            .unwrap_or_default();
        candidates.iter().find_map(|k| keys::open(k, sealed))
    }

    /// Remembers a key of `ns`, here and in the store.
    pub(crate) async fn remember(&self, ns: &[u8; 32], epoch: u32, key: [u8; 32]) -> Result<()> {
        let _writing = self.written.lock().await;
        let all = {
            let mut keys = self.lock();
            let epochs = keys.entry(*ns).or_default();
            let list = epochs.entry(epoch).or_default();
            if list.contains(&key) {
                return Ok(());
            }
            list.push(key);
            epochs.clone()
        };
        let bytes = borsh::to_vec(&all)
            .map_err(|e| NodeError::Internal(format!("encoding namespace keys: {e}")))?;
        let store = self.store.clone();
        let ns = *ns;
        blocking(move || {
            let mut w = store.write()?;
            w.private_put(&ContextId(ns), KEYS_SLOT, Some(&bytes))?;
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// The key of `id` (a namespace, or a restricted subgroup) to share
    /// with `members`: the current one, or a new one of epoch `rotate_to`.
    pub(crate) fn share(
        &self,
        id: &[u8; 32],
        members: &[[u8; 32]],
        rotate_to: Option<u32>,
    ) -> Result<Share> {
        let (epoch, key) = match (rotate_to, self.current(id)) {
            (Some(epoch), _) => (epoch, rand::random()),
            (None, Some(current)) => current,
            (None, None) => {
                return Err(NodeError::Internal(
                    "this node holds no key of the group to share".into(),
                ));
            }
        };
        let wrapped = members
            .iter()
            .filter_map(|m| keys::wrap(&self.identity, m, id, epoch, &key))
            .collect();
        Ok(Share {
            epoch,
            key,
            wrapped,
        })
    }

    /// Takes the keys wrapped for this node in `applied` ops of `ns`: the
    /// namespace's and its restricted subgroups'.
    pub(crate) async fn take_wrapped(&self, ns: &[u8; 32], applied: &[(OpId, SignedOp)]) {
        let me = self.identity.verifying_key().to_bytes();
        for (_, op) in applied {
            let (id, epoch, wrapped) = match &op.op.body {
                Body::KeyShared { epoch, wrapped } => (ns, epoch, wrapped),
                Body::GroupKeyShared {
                    group,
                    epoch,
                    wrapped,
                } => (group, epoch, wrapped),
                _ => continue,
            };
            let Some(w) = wrapped.iter().find(|w| w.member == me) else {
                continue;
            };
            match keys::unwrap(&self.identity, &op.op.author, id, *epoch, w) {
                Some(key) => {
                    if let Err(e) = self.remember(id, *epoch, key).await {
                        tracing::warn!(error = %e, "storing a namespace key failed");
                    }
                }
                None => tracing::warn!("a namespace key wrapped for this node does not open"),
            }
        }
    }
}
