//! The namespace keys this node holds: by namespace and epoch, in memory
//! and in the namespace's node-local private storage. It seals and opens
//! gossip, takes keys wrapped for this node out of governance ops, and
//! prepares a key (the current one, or a new epoch) wrapped for members.
//! The cryptography itself is in [`crate::keys`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use mero_store::Store;

use crate::blocking::blocking;
use crate::error::{NodeError, Result};
use crate::governance::{Body, OpId, SignedOp};
use crate::keys::{self, Sealed, Wrapped};

/// Where a node keeps its namespace keys: private storage of the
/// namespace id (never replicated).
const KEYS_SLOT: &[u8] = b"mero.namespace-keys";

/// Every key of one namespace, by epoch (a rotation may race: an epoch
/// can hold more than one key).
type Epochs = BTreeMap<u32, Vec<[u8; 32]>>;

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
            if let Some(bytes) = snap.private_get(&ContextId(group.id), KEYS_SLOT)? {
                match borsh::from_slice::<Epochs>(&bytes) {
                    Ok(k) => {
                        keys.insert(group.id, k);
                    }
                    Err(e) => tracing::warn!(error = %e, "undecodable namespace keys"),
                }
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

    /// The key to share with `members` of `ns`: the current one, or a new
    /// epoch after `newest` (the newest governance knows of) if `rotate`.
    pub(crate) fn share(
        &self,
        ns: &[u8; 32],
        newest: u32,
        members: &[[u8; 32]],
        rotate: bool,
    ) -> Result<Share> {
        let (epoch, key) = match (self.current(ns), rotate) {
            (Some((e, k)), false) => (e, k),
            (Some((e, _)), true) => (
                e.max(newest)
                    .checked_add(1)
                    .ok_or_else(|| NodeError::Internal("key epochs exhausted".into()))?,
                rand::random(),
            ),
            // The namespace's first key, made by its creator.
            (None, true) if newest == 0 => (0, rand::random()),
            (None, _) => {
                return Err(NodeError::Internal(
                    "this node holds no key of the namespace to share".into(),
                ));
            }
        };
        let wrapped = members
            .iter()
            .filter_map(|m| keys::wrap(&self.identity, m, ns, epoch, &key))
            .collect();
        Ok(Share {
            epoch,
            key,
            wrapped,
        })
    }

    /// Takes the keys wrapped for this node in `applied` ops of `ns`.
    pub(crate) async fn take_wrapped(&self, ns: &[u8; 32], applied: &[(OpId, SignedOp)]) {
        let me = self.identity.verifying_key().to_bytes();
        for (_, op) in applied {
            let Body::KeyShared { epoch, wrapped } = &op.op.body else {
                continue;
            };
            let Some(w) = wrapped.iter().find(|w| w.member == me) else {
                continue;
            };
            match keys::unwrap(&self.identity, &op.op.author, ns, *epoch, w) {
                Some(key) => {
                    if let Err(e) = self.remember(ns, *epoch, key).await {
                        tracing::warn!(error = %e, "storing a namespace key failed");
                    }
                }
                None => tracing::warn!("a namespace key wrapped for this node does not open"),
            }
        }
    }
}
