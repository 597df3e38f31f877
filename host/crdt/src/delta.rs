//! Ops and deltas: what a call changed, in a form any replica can verify and
//! merge without running the app.

use std::collections::{HashSet, VecDeque};

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::id::{Author, ContextId, HashWriter, NodeId};
use crate::limits::{MAX_KEY_LEN, MAX_OPS_PER_DELTA, MAX_VALUE_LEN};

/// Join `entry` into the entry at (`node`, `key`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Op {
    /// The collection.
    pub node: NodeId,
    /// The key within it.
    pub key: Vec<u8>,
    /// The state to join in.
    pub entry: Entry,
}

/// An event an app emitted during the call that produced a delta.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Event {
    /// The event's name.
    pub kind: String,
    /// Its JSON payload.
    pub data: Vec<u8>,
}

/// Id of a delta: hash of its encoding.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize,
)]
pub struct DeltaId(pub [u8; 32]);

impl std::fmt::Debug for DeltaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeltaId(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// Everything one committed call changed in one context.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Delta {
    /// Encoding version; 1.
    pub version: u8,
    /// The context changed.
    pub context: ContextId,
    /// The member that executed the call and signs the delta.
    pub author: Author,
    /// The context's DAG heads when the call ran: what it had seen.
    pub parents: Vec<DeltaId>,
    /// The governance heads of the context's namespace its author had seen:
    /// receivers judge the author's authority there (empty outside one).
    pub governance: Vec<[u8; 32]>,
    /// The state version (layout) of the app its author ran: a receiver
    /// still on an older layout holds it until its own upgrade migrated
    /// the context, so it is never applied to the layout it was not
    /// written for.
    pub layout: u32,
    /// When the call committed; after every op's stamp.
    pub hlc: Hlc,
    /// The state changes.
    pub ops: Vec<Op>,
    /// Events the call emitted.
    pub events: Vec<Event>,
}

const DELTA_DOMAIN: &[u8] = b"mero.delta.v1";

impl Delta {
    /// The delta's id.
    pub fn id(&self) -> DeltaId {
        let mut h = Sha256::new();
        h.update(DELTA_DOMAIN);
        // The hasher never fails a write, and Borsh fails otherwise only on
        // a length over u32::MAX: a delta decoded from the wire cannot have
        // one, and a local one is bounded by the call's budgets long before.
        let _ = borsh::to_writer(&mut HashWriter(&mut h), self);
        DeltaId(h.finalize().into())
    }

    /// Checks the structural limits a receiver relies on.
    pub fn validate(&self) -> Result<()> {
        if self.version != 1 {
            return Err(Error::MalformedDelta(format!(
                "unknown version {}",
                self.version
            )));
        }
        if self.ops.len() > MAX_OPS_PER_DELTA {
            return Err(Error::MalformedDelta(format!(
                "{} ops is over the limit",
                self.ops.len()
            )));
        }
        for op in &self.ops {
            self.check_bound(op)?;
            if op.key.len() > MAX_KEY_LEN {
                return Err(Error::KeyTooLong {
                    len: op.key.len(),
                    max: MAX_KEY_LEN,
                });
            }
            let register = match &op.entry {
                Entry::Register(r) => Some(r),
                Entry::Authored(a) => Some(&a.register),
                _ => None,
            };
            if let Some(r) = register {
                let len = r.value.as_ref().map_or(0, Vec::len);
                if len > MAX_VALUE_LEN {
                    return Err(Error::ValueTooLarge {
                        len,
                        max: MAX_VALUE_LEN,
                    });
                }
            }
        }
        Ok(())
    }

    /// Refuses an op its author could not have written in this delta: the
    /// signature covers the ops, not who they claim wrote them, so without
    /// this a writer could stamp another member's name or a far-future
    /// clock on a value, or raise another member's counter slot.
    fn check_bound(&self, op: &Op) -> Result<()> {
        let refuse = |why: String| Err(Error::UnboundOp(why));
        match &op.entry {
            Entry::Register(r) => {
                if r.stamp.author != self.author {
                    return refuse("a register stamped by another author".into());
                }
                if r.stamp.hlc > self.hlc {
                    return refuse("a register stamped after its delta".into());
                }
            }
            Entry::Presence(p) => {
                // Adds are the author's own inserts; removes name the
                // inserts it observed, of any author, but none it cannot
                // have seen yet.
                if p.adds.iter().any(|(a, _)| *a != self.author) {
                    return refuse("an insert by another author".into());
                }
                if p.adds
                    .iter()
                    .chain(p.removes.iter())
                    .any(|(_, t)| *t > self.hlc)
                {
                    return refuse("a presence clock after its delta".into());
                }
            }
            Entry::Counter(_) => {
                // A counter slot is keyed by its owner's key.
                if op.key.as_slice() != self.author.0.as_slice() {
                    return refuse("another author's counter slot".into());
                }
            }
            Entry::Authored(a) => {
                // Only the owner writes an authored element, so both the
                // creation and the write are the author's own.
                if a.owner() != self.author {
                    return refuse("an authored element owned by another member".into());
                }
                if a.register.stamp.author != self.author {
                    return refuse("an authored element stamped by another author".into());
                }
                if a.register.stamp.hlc > self.hlc || a.created.hlc > a.register.stamp.hlc {
                    return refuse("an authored element's clocks out of order".into());
                }
            }
        }
        Ok(())
    }
}

/// A delta with its author's Ed25519 signature.
///
/// An author that commits many deltas at once signs them with one signature:
/// over the root of a Merkle tree of their ids. Each delta carries its path
/// to that root ([`BatchProof`]), so it still verifies on its own, wherever
/// it travels. A delta signed alone has an empty proof and its signature
/// covers its id.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedDelta {
    /// The delta.
    pub delta: Delta,
    /// Signature by `delta.author` over the domain tag and the delta id, or
    /// over the batch domain tag, the batch root and the batch size.
    pub signature: [u8; 64],
    /// Where the delta sits in the batch signed at once.
    pub proof: BatchProof,
}

/// A delta's place in the batch its author signed with one signature: the
/// sibling hashes from its id up to the batch root.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BatchProof {
    /// Its position in the batch.
    pub index: u32,
    /// How many deltas the batch holds; 0 or 1 for a delta signed alone.
    pub size: u32,
    /// Sibling hashes, leaf level first. A node without a sibling (the last
    /// of an odd level) moves up unchanged and has no entry.
    pub siblings: Vec<[u8; 32]>,
}

/// The most deltas one signature may cover: bounds the proof's length.
pub const MAX_SIGNED_BATCH: u32 = 1 << 16;

const BATCH_DOMAIN: &[u8] = b"mero.delta.batch.v1";

fn batch_node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    crate::id::tagged_hash(BATCH_DOMAIN, &[left, right])
}

fn signing_message(id: &DeltaId) -> Vec<u8> {
    [DELTA_DOMAIN, &id.0].concat()
}

fn batch_message(root: &[u8; 32], size: u32) -> Vec<u8> {
    [BATCH_DOMAIN, root, &size.to_le_bytes()].concat()
}

impl BatchProof {
    /// What the signature covers for the delta `id`, or why the proof is
    /// malformed.
    fn message(&self, id: &DeltaId) -> std::result::Result<Vec<u8>, &'static str> {
        if self.size <= 1 {
            if self.index != 0 || !self.siblings.is_empty() {
                return Err("a delta signed alone has no batch proof");
            }
            return Ok(signing_message(id));
        }
        if self.size > MAX_SIGNED_BATCH || self.index >= self.size {
            return Err("batch position out of range");
        }
        let (mut hash, mut at, mut width) = (id.0, self.index, self.size);
        let mut siblings = self.siblings.iter();
        while width > 1 {
            if at ^ 1 < width {
                let sibling = siblings.next().ok_or("batch proof too short")?;
                hash = if at & 1 == 0 {
                    batch_node(&hash, sibling)
                } else {
                    batch_node(sibling, &hash)
                };
            }
            at >>= 1;
            width = width.div_ceil(2);
        }
        if siblings.next().is_some() {
            return Err("batch proof too long");
        }
        Ok(batch_message(&hash, self.size))
    }
}

const VERIFIED_DOMAIN: &[u8] = b"mero.delta.verified-batch.v1";

/// How many verified batch signatures [`VerifiedBatches`] remembers.
const VERIFIED_BATCHES: usize = 1024;

/// Batch signatures already checked (by author, signed message and
/// signature): a receiver checks the one signature of a batch once, not
/// once for each of its deltas (a third or more of what receiving a delta
/// cost). Bounded, oldest out; only a signature that verified goes in.
#[derive(Debug)]
pub struct VerifiedBatches {
    seen: std::sync::Mutex<Seen>,
    /// How many it remembers.
    cap: usize,
}

impl Default for VerifiedBatches {
    fn default() -> Self {
        VerifiedBatches::holding(VERIFIED_BATCHES)
    }
}

/// Digests remembered, and their order of arrival.
type Seen = (HashSet<[u8; 32]>, VecDeque<[u8; 32]>);

impl VerifiedBatches {
    /// One that remembers `cap` signatures: a snapshot's whole history is
    /// checked with room for every batch in it, whose deltas arrive in any
    /// order (with less, they would push each other out and be checked
    /// again, once per delta).
    pub fn holding(cap: usize) -> Self {
        VerifiedBatches {
            seen: std::sync::Mutex::default(),
            cap,
        }
    }

    fn holds(&self, digest: &[u8; 32]) -> bool {
        self.seen.lock().is_ok_and(|seen| seen.0.contains(digest))
    }

    fn insert(&self, digest: [u8; 32]) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let (set, order) = &mut *seen;
        if set.insert(digest) {
            order.push_back(digest);
            if order.len() > self.cap
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }
}

/// One signature over many deltas, with each delta's proof.
#[derive(Clone, Debug)]
pub struct BatchSignature {
    /// The signature every delta of the batch carries.
    pub signature: [u8; 64],
    /// Each delta's proof, in the order of the ids signed.
    pub proofs: Vec<BatchProof>,
}

impl SignedDelta {
    /// Signs `delta`; its author must be `key`'s public key.
    pub fn sign(delta: Delta, key: &SigningKey) -> Self {
        SignedDelta::sign_as(delta.id(), delta, key)
    }

    /// Signs `delta`, whose id the caller has computed already.
    pub fn sign_as(id: DeltaId, delta: Delta, key: &SigningKey) -> Self {
        debug_assert_eq!(id, delta.id());
        let signature = key.sign(&signing_message(&id)).to_bytes();
        SignedDelta {
            delta,
            signature,
            proof: BatchProof::default(),
        }
    }

    /// Signs the deltas with ids `ids` at once, for the cost of one
    /// signature. One id is signed as [`sign_as`](Self::sign_as) would.
    /// At most [`MAX_SIGNED_BATCH`] ids.
    pub fn sign_batch(ids: &[DeltaId], key: &SigningKey) -> BatchSignature {
        let size = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        if let [id] = ids {
            return BatchSignature {
                signature: key.sign(&signing_message(id)).to_bytes(),
                proofs: vec![BatchProof::default()],
            };
        }
        let mut proofs: Vec<BatchProof> = (0..size)
            .map(|index| BatchProof {
                index,
                size,
                siblings: Vec::new(),
            })
            .collect();
        // Each level's nodes, and which of the original deltas lie under
        // each node: they all take that node's sibling into their proofs.
        let mut level: Vec<([u8; 32], Vec<usize>)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.0, vec![i]))
            .collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            let mut nodes = level.into_iter();
            while let Some((left, mut under)) = nodes.next() {
                match nodes.next() {
                    Some((right, right_under)) => {
                        for &i in &under {
                            proofs[i].siblings.push(right);
                        }
                        for &i in &right_under {
                            proofs[i].siblings.push(left);
                        }
                        under.extend(right_under);
                        next.push((batch_node(&left, &right), under));
                    }
                    None => next.push((left, under)),
                }
            }
            level = next;
        }
        let Some((root, _)) = level.first() else {
            // Nothing to sign.
            return BatchSignature {
                signature: [0; 64],
                proofs: Vec::new(),
            };
        };
        BatchSignature {
            signature: key.sign(&batch_message(root, size)).to_bytes(),
            proofs,
        }
    }

    /// Checks limits and the signature; returns the delta's id.
    pub fn verify(&self) -> Result<DeltaId> {
        self.verify_in(None)
    }

    /// [`verify`](Self::verify), checking a batch signature once for all
    /// the deltas of its batch that `verified` sees: the others of the
    /// batch only walk their proof up to the root it covers.
    pub fn verify_with(&self, verified: &VerifiedBatches) -> Result<DeltaId> {
        self.verify_in(Some(verified))
    }

    fn verify_in(&self, verified: Option<&VerifiedBatches>) -> Result<DeltaId> {
        self.delta.validate()?;
        let id = self.delta.id();
        let bad = || Error::BadSignature(format!("{id:?}"));
        let message = self
            .proof
            .message(&id)
            .map_err(|e| Error::MalformedDelta(e.to_string()))?;
        // Only batches repeat: a delta signed alone is its own message.
        let seen = verified.filter(|_| self.proof.size > 1).map(|v| {
            let digest = crate::id::tagged_hash(
                VERIFIED_DOMAIN,
                &[&self.delta.author.0[..], &message[..], &self.signature[..]],
            );
            (v, digest)
        });
        if let Some((v, digest)) = &seen
            && v.holds(digest)
        {
            return Ok(id);
        }
        let key = VerifyingKey::from_bytes(&self.delta.author.0).map_err(|_| bad())?;
        key.verify(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| bad())?;
        if let Some((v, digest)) = seen {
            v.insert(digest);
        }
        Ok(id)
    }

    /// Encodes for storage or the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding into a Vec cannot fail.
        borsh::to_vec(self).unwrap_or_default()
    }

    /// Decodes bytes from storage or the wire.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        borsh::from_slice(bytes).map_err(|e| Error::MalformedDelta(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Register, Stamp};

    fn delta(author: Author) -> Delta {
        Delta {
            version: 1,
            context: ContextId([7; 32]),
            author,
            parents: vec![],
            governance: Vec::new(),
            layout: 0,
            hlc: Hlc {
                millis: 1,
                counter: 0,
            },
            ops: vec![Op {
                node: NodeId::root("x"),
                key: vec![],
                entry: Entry::Register(Register {
                    stamp: Stamp {
                        hlc: Hlc {
                            millis: 1,
                            counter: 0,
                        },
                        author,
                    },
                    value: Some(b"v".to_vec()),
                }),
            }],
            events: vec![],
        }
    }

    #[test]
    fn signed_delta_verifies_and_tampering_is_caught() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let author = Author(key.verifying_key().to_bytes());
        let signed = SignedDelta::sign(delta(author), &key);
        let round = SignedDelta::from_bytes(&signed.to_bytes()).unwrap();
        assert_eq!(round.verify().unwrap(), signed.delta.id());

        let mut tampered = signed.clone();
        tampered.delta.hlc.millis = 2;
        assert!(matches!(tampered.verify(), Err(Error::BadSignature(_))));

        let other = SigningKey::from_bytes(&[4; 32]);
        let forged = SignedDelta::sign(delta(author), &other);
        assert!(matches!(forged.verify(), Err(Error::BadSignature(_))));
    }

    fn at(millis: u64) -> Hlc {
        Hlc { millis, counter: 0 }
    }

    #[test]
    fn an_authored_element_is_refused_unless_its_delta_author_owns_it() {
        let (a, b) = (Author([1; 32]), Author([2; 32]));
        let element = |owner: Author, writer: Author, created: u64, written: u64| {
            Entry::Authored(crate::entry::Authored {
                created: Stamp {
                    hlc: at(created),
                    author: owner,
                },
                version: 1,
                register: Register {
                    stamp: Stamp {
                        hlc: at(written),
                        author: writer,
                    },
                    value: Some(b"v".to_vec()),
                },
            })
        };
        assert!(
            with_op(a, b"k".to_vec(), element(a, a, 1, 2))
                .validate()
                .is_ok()
        );
        // Member a rewriting b's element, under either name.
        for forged in [
            element(b, a, 1, 2),
            element(b, b, 1, 2),
            element(a, b, 1, 2),
        ] {
            let refused = with_op(a, b"k".to_vec(), forged).validate();
            assert!(matches!(refused, Err(Error::UnboundOp(_))), "{refused:?}");
        }
        // Clocks: written before created, or after the delta.
        for bad in [element(a, a, 3, 2), element(a, a, 1, 11)] {
            assert!(with_op(a, b"k".to_vec(), bad).validate().is_err());
        }
    }

    /// `delta(author)` with its one op replaced by `entry` at `key`,
    /// committed at 10 ms.
    fn with_op(author: Author, key: Vec<u8>, entry: Entry) -> Delta {
        let mut d = delta(author);
        d.hlc = at(10);
        d.ops = vec![Op {
            node: NodeId::root("x"),
            key,
            entry,
        }];
        d
    }

    fn register(author: Author, millis: u64) -> Entry {
        Entry::Register(Register {
            stamp: Stamp {
                hlc: at(millis),
                author,
            },
            value: Some(b"v".to_vec()),
        })
    }

    #[test]
    fn ops_are_bound_to_their_deltas_author_and_clock() {
        use crate::entry::{Clocks, CounterSlot, Presence};
        let key = SigningKey::from_bytes(&[3; 32]);
        let me = Author(key.verifying_key().to_bytes());
        let other = Author([9; 32]);
        let unbound = |d: Delta| {
            let signed = SignedDelta::sign(d, &key);
            matches!(signed.verify(), Err(Error::UnboundOp(_)))
        };
        let fine = |d: Delta| SignedDelta::sign(d, &key).verify().is_ok();

        // Registers: the author's own stamp, at or before the delta's clock.
        assert!(fine(with_op(me, vec![], register(me, 10))));
        assert!(unbound(with_op(me, vec![], register(other, 5))));
        assert!(unbound(with_op(me, vec![], register(me, 11))));
        let mut far = with_op(me, vec![], register(me, u64::MAX));
        far.hlc = at(10);
        assert!(unbound(far));

        // Presence: inserts only by the author; a removal may name what it
        // observed of others, but nothing after its own clock.
        let add = |a, t| {
            Entry::Presence(Presence {
                adds: Clocks::one(a, at(t)),
                removes: Clocks::default(),
            })
        };
        let remove = |a, t| {
            Entry::Presence(Presence {
                adds: Clocks::default(),
                removes: Clocks::one(a, at(t)),
            })
        };
        assert!(fine(with_op(me, b"k".to_vec(), add(me, 9))));
        assert!(unbound(with_op(me, b"k".to_vec(), add(other, 9))));
        assert!(unbound(with_op(me, b"k".to_vec(), add(me, 11))));
        assert!(fine(with_op(me, b"k".to_vec(), remove(other, 9))));
        assert!(unbound(with_op(me, b"k".to_vec(), remove(other, 11))));

        // Counters: only the slot keyed by the author.
        let slot = Entry::Counter(CounterSlot {
            increments: 1_000_000,
            decrements: 0,
        });
        assert!(fine(with_op(me, me.0.to_vec(), slot.clone())));
        assert!(unbound(with_op(me, other.0.to_vec(), slot.clone())));
        assert!(unbound(with_op(me, b"any".to_vec(), slot)));
    }

    /// `n` distinct deltas by `key`'s author, signed at once.
    fn batch(n: usize, key: &SigningKey) -> Vec<SignedDelta> {
        let author = Author(key.verifying_key().to_bytes());
        let deltas: Vec<Delta> = (0..n)
            .map(|i| {
                let mut d = delta(author);
                d.hlc.counter = i as u32;
                d
            })
            .collect();
        let ids: Vec<DeltaId> = deltas.iter().map(Delta::id).collect();
        let signed = SignedDelta::sign_batch(&ids, key);
        assert_eq!(signed.proofs.len(), n);
        deltas
            .into_iter()
            .zip(signed.proofs)
            .map(|(delta, proof)| SignedDelta {
                delta,
                signature: signed.signature,
                proof,
            })
            .collect()
    }

    #[test]
    fn every_delta_of_a_batch_verifies_on_its_own() {
        let key = SigningKey::from_bytes(&[3; 32]);
        for n in [1, 2, 3, 4, 5, 7, 8, 12, 33] {
            let signed = batch(n, &key);
            for d in &signed {
                let round = SignedDelta::from_bytes(&d.to_bytes()).unwrap();
                assert_eq!(round.verify().unwrap(), d.delta.id(), "batch of {n}");
                // A proof is a path up a tree of n leaves.
                assert!(d.proof.siblings.len() <= n.next_power_of_two().trailing_zeros() as usize);
            }
            assert!(signed.iter().all(|d| d.signature == signed[0].signature));
        }
        // One delta is signed exactly as `sign` signs it.
        assert_eq!(
            batch(1, &key)[0],
            SignedDelta::sign(batch(1, &key)[0].delta.clone(), &key)
        );
    }

    #[test]
    fn a_batch_signature_checked_once_still_refuses_what_it_does_not_cover() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let signed = batch(5, &key);
        let verified = VerifiedBatches::default();
        for d in &signed {
            assert_eq!(d.verify_with(&verified).unwrap(), d.delta.id());
        }
        // The batch's signature went in once; singletons never do.
        assert_eq!(verified.seen.lock().unwrap().1.len(), 1);
        let alone = batch(1, &key);
        alone[0].verify_with(&verified).unwrap();
        assert_eq!(verified.seen.lock().unwrap().1.len(), 1);

        // With the batch's signature remembered, a delta changed after
        // signing, a proof moved to another delta, or another author's
        // claim to the signature are refused all the same.
        let mut changed = signed[1].clone();
        changed.delta.hlc.counter += 100;
        assert!(changed.verify_with(&verified).is_err());
        let mut moved = signed[1].clone();
        moved.proof = signed[2].proof.clone();
        assert!(moved.verify_with(&verified).is_err());
        let other = SigningKey::from_bytes(&[4; 32]);
        let mut claimed = signed[1].clone();
        claimed.delta.author = Author(other.verifying_key().to_bytes());
        assert!(claimed.verify_with(&verified).is_err());
        // A forged signature is not remembered: refused again.
        let mut forged = batch(3, &other);
        for d in &mut forged {
            d.signature[0] ^= 1;
        }
        for d in &forged {
            assert!(d.verify_with(&verified).is_err());
        }
        assert_eq!(verified.seen.lock().unwrap().1.len(), 1);
    }

    #[test]
    fn remembered_batch_signatures_are_bounded() {
        let verified = VerifiedBatches::default();
        for i in 0..(VERIFIED_BATCHES + 10) as u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&i.to_le_bytes());
            verified.insert(digest);
        }
        let seen = verified.seen.lock().unwrap();
        assert_eq!(seen.0.len(), VERIFIED_BATCHES);
        assert_eq!(seen.1.len(), VERIFIED_BATCHES);
        assert!(!seen.0.contains(&[0; 32]), "the oldest went out first");
    }

    #[test]
    fn a_batch_proof_cannot_be_moved_or_bent() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let signed = batch(5, &key);
        let rejected = |d: &SignedDelta| d.verify().is_err();

        // Another delta's proof, or another position.
        let mut moved = signed[1].clone();
        moved.proof = signed[2].proof.clone();
        assert!(rejected(&moved));
        let mut shifted = signed[1].clone();
        shifted.proof.index = 0;
        assert!(rejected(&shifted));
        // Another size, a sibling changed, dropped or added.
        let mut resized = signed[1].clone();
        resized.proof.size = 6;
        assert!(rejected(&resized));
        let mut bent = signed[1].clone();
        bent.proof.siblings[0][0] ^= 1;
        assert!(rejected(&bent));
        let mut short = signed[1].clone();
        short.proof.siblings.pop();
        assert!(matches!(short.verify(), Err(Error::MalformedDelta(_))));
        let mut long = signed[1].clone();
        long.proof.siblings.push([0; 32]);
        assert!(matches!(long.verify(), Err(Error::MalformedDelta(_))));
        // Out of range, or a proof on a delta that claims to stand alone.
        let mut beyond = signed[1].clone();
        beyond.proof.index = 5;
        assert!(matches!(beyond.verify(), Err(Error::MalformedDelta(_))));
        let mut huge = signed[1].clone();
        huge.proof.size = MAX_SIGNED_BATCH + 1;
        assert!(matches!(huge.verify(), Err(Error::MalformedDelta(_))));
        let mut alone = signed[1].clone();
        alone.proof.size = 1;
        assert!(matches!(alone.verify(), Err(Error::MalformedDelta(_))));
        // A changed delta, or a batch signed by another key.
        let mut tampered = signed[1].clone();
        tampered.delta.hlc.millis = 2;
        assert!(rejected(&tampered));
        let other = SigningKey::from_bytes(&[4; 32]);
        let mut forged = batch(5, &other)[1].clone();
        forged.delta.author = signed[1].delta.author;
        assert!(rejected(&forged));
        // The untouched ones still verify.
        assert!(signed.iter().all(|d| d.verify().is_ok()));
    }

    #[test]
    fn oversized_keys_are_malformed() {
        let mut d = delta(Author([1; 32]));
        d.ops[0].key = vec![0; MAX_KEY_LEN + 1];
        assert!(matches!(d.validate(), Err(Error::KeyTooLong { .. })));
    }
}
