//! Blobs: content-addressed files the node keeps beside the state, which an
//! app references by [`BlobId`]. Keep the id in state (a [`BlobId`] is
//! stored and sent as JSON as its base58 string, the form the node's HTTP
//! API gives for an upload, so a client passes on the id it got from
//! `PUT /admin-api/blobs?context_id=<CONTEXT>`); read the bytes with
//! [`size`], [`read`] or [`read_all`]; make one with [`create`].
//!
//! ```ignore
//! pub fn attach(&mut self, file: BlobId) -> app::Result<()> {
//!     self.file.set(file)
//! }
//!
//! pub fn file_text(&self) -> app::Result<Option<String>> {
//!     let Some(id) = self.file.get()? else { return Ok(None) };
//!     match blobs::read_all(&id)? {
//!         Some(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
//!         None => app::bail!("no blob {id} on this node or its members"),
//!     }
//! }
//! ```
//!
//! A call reads the blobs of its context: uploaded with its `context_id`,
//! made by [`create`] in it, or fetched for it. A node that does not hold a
//! blob for the call's context fetches it from the members that do; a blob
//! still arriving when the call nears its deadline fails the read with a
//! storage error saying so, and a later call reads it. Migrations cannot
//! read blobs (nodes hold different ones).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Result;
use crate::bindings::calimero::context::blobs as host;
use crate::key::StorageKey;

/// Most bytes the host returns from one [`read`].
pub const MAX_READ: u32 = 1 << 20;

/// A blob's id: the SHA-256 of its bytes. Shown, serialized and parsed as
/// base58, as the node's HTTP API shows blob ids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobId([u8; 32]);

impl BlobId {
    /// The id with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        BlobId(bytes)
    }

    /// Its 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why a string is not a [`BlobId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBlobId(String);

impl fmt::Display for InvalidBlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidBlobId {}

impl FromStr for BlobId {
    type Err = InvalidBlobId;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|e| InvalidBlobId(format!("a blob id is base58: {e}")))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            InvalidBlobId(format!("a blob id is 32 bytes, not {}", b.len()))
        })?;
        Ok(BlobId(bytes))
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({self})")
    }
}

impl Serialize for BlobId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl StorageKey for BlobId {
    fn to_key(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(BlobId)
    }
}

/// The size of blob `id`, or `None` if neither this node nor a connected
/// member of the context holds it.
pub fn size(id: &BlobId) -> Result<Option<u64>> {
    Ok(host::size(&id.0)?)
}

/// Up to `len` bytes of blob `id` from `offset`: fewer at its end, and at
/// most [`MAX_READ`] at once. `None` as for [`size`].
pub fn read(id: &BlobId, offset: u64, len: u32) -> Result<Option<Vec<u8>>> {
    Ok(host::read(&id.0, offset, len)?)
}

/// The whole of blob `id`, read [`MAX_READ`] bytes at a time; `None` as
/// for [`size`]. It is held in the call's memory (64 MiB by default), and
/// the bytes count against the call's blob read budget: for blobs of a few
/// MiB. Read a larger one piece by piece with [`read`].
pub fn read_all(id: &BlobId) -> Result<Option<Vec<u8>>> {
    let Some(size) = size(id)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(usize::try_from(size.min(16 << 20)).unwrap_or(0));
    while (out.len() as u64) < size {
        match read(id, out.len() as u64, MAX_READ)? {
            Some(bytes) if !bytes.is_empty() => out.extend_from_slice(&bytes),
            // Deleted or cut short under the call.
            _ => {
                return Err(crate::Error::msg(format!(
                    "blob {id} ended at {} of its {size} bytes",
                    out.len()
                )));
            }
        }
    }
    Ok(Some(out))
}

/// Stores `data` as a blob on this node and returns its id; the context's
/// members may fetch it from here. Only in a mutating method; the bytes
/// count against the call's write budget. The blob is stored at once, not
/// when the call commits: a failing call leaves it on this node,
/// unreferenced.
pub fn create(data: &[u8]) -> Result<BlobId> {
    let id = host::create(data)?;
    let id: [u8; 32] = id
        .try_into()
        .map_err(|_| crate::Error::msg("the host returned a blob id that is not 32 bytes"))?;
    Ok(BlobId(id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn ids_are_base58_in_json_and_refuse_anything_else() {
        let id = BlobId::from_bytes([7; 32]);
        let text = bs58::encode([7u8; 32]).into_string();
        assert_eq!(id.to_string(), text);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(text));
        let back: BlobId = serde_json::from_value(serde_json::json!(text)).unwrap();
        assert_eq!(back, id);
        for bad in ["0OIl", "abc", ""] {
            assert!(bad.parse::<BlobId>().is_err(), "{bad}");
            assert!(serde_json::from_value::<BlobId>(serde_json::json!(bad)).is_err());
        }
        assert_eq!(BlobId::from_key(&id.to_key()), Some(id));
    }
}
