//! Ops and deltas: what a call changed, in a form any replica can verify and
//! merge without running the app.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::entry::Entry;
use crate::hlc::Hlc;
use crate::id::{Author, ContextId, NodeId};
use crate::{Error, MAX_KEY_LEN, MAX_OPS_PER_DELTA, MAX_VALUE_LEN, Result};

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
        // Encoding into a hasher cannot fail: it only writes bytes.
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
            if op.key.len() > MAX_KEY_LEN {
                return Err(Error::KeyTooLong {
                    len: op.key.len(),
                    max: MAX_KEY_LEN,
                });
            }
            if let Entry::Register(r) = &op.entry {
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
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A delta with its author's Ed25519 signature over its id.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedDelta {
    /// The delta.
    pub delta: Delta,
    /// Signature by `delta.author` over the domain tag and the delta id.
    pub signature: [u8; 64],
}

fn signing_message(id: &DeltaId) -> Vec<u8> {
    [DELTA_DOMAIN, &id.0].concat()
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
        SignedDelta { delta, signature }
    }

    /// Checks limits and the signature; returns the delta's id.
    pub fn verify(&self) -> Result<DeltaId> {
        self.delta.validate()?;
        let id = self.delta.id();
        let bad = || Error::BadSignature(format!("{id:?}"));
        let key = VerifyingKey::from_bytes(&self.delta.author.0).map_err(|_| bad())?;
        key.verify(
            &signing_message(&id),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| bad())?;
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

    #[test]
    fn oversized_keys_are_malformed() {
        let mut d = delta(Author([1; 32]));
        d.ops[0].key = vec![0; MAX_KEY_LEN + 1];
        assert!(matches!(d.validate(), Err(Error::KeyTooLong { .. })));
    }
}
