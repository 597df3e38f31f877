//! Ids: 32-byte values, derived with SHA-256 under distinct domain tags so
//! that ids of different kinds never collide.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Streams bytes written to it (a Borsh encoding, say) into a SHA-256
/// hasher, so an id is hashed without building the encoding first. Its
/// writes never fail.
#[derive(Debug)]
pub struct HashWriter<'a>(pub &'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The all-zero hash: the root of an empty state.
pub const ZERO_HASH: Hash = [0; 32];

macro_rules! id32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// From a slice of exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(bytes).ok().map(Self)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in &self.0[..6] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "..)")
            }
        }
    };
}

id32!(
    /// A context: one app instance with its own state.
    ContextId
);
id32!(
    /// An Ed25519 public key that authors changes.
    Author
);
id32!(
    /// A collection: a register, map, set, vector or counter.
    NodeId
);
id32!(
    /// An entry: one key of one collection. Spreads entries evenly over the
    /// Merkle trie.
    EntryId
);

pub(crate) fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update((tag.len() as u32).to_le_bytes());
    h.update(tag);
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

impl NodeId {
    /// The collection stored at the root of the state under `name`.
    pub fn root(name: &str) -> Self {
        NodeId(tagged_hash(b"mero.node.root", &[name.as_bytes()]))
    }

    /// The collection stored as the value at `key` of this map.
    pub fn child(&self, key: &[u8]) -> Self {
        NodeId(tagged_hash(b"mero.node.child", &[&self.0, key]))
    }
}

impl EntryId {
    /// The id of the entry at `key` of collection `node`.
    pub fn of(node: &NodeId, key: &[u8]) -> Self {
        EntryId(tagged_hash(b"mero.entry", &[&node.0, key]))
    }

    /// The Merkle bucket this entry falls in.
    pub fn bucket(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }
}
