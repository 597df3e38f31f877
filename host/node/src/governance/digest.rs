//! Digests of Borsh encodings: what op ids, namespace ids and signed
//! invitation messages are made of. Encoding streams into the hash, so an
//! id never rests on an encoding that silently failed.

use borsh::BorshSerialize;
use mero_crdt::id::HashWriter;
use sha2::{Digest, Sha256};

/// A value could not be encoded (Borsh refuses lengths beyond `u32`).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {what}: {source}")]
pub struct EncodeError {
    what: &'static str,
    #[source]
    source: std::io::Error,
}

/// SHA-256 of `prefix` (each part in turn) and then the Borsh encoding of
/// `value`, named `what` in an error.
pub fn digest(
    what: &'static str,
    prefix: &[&[u8]],
    value: &impl BorshSerialize,
) -> Result<[u8; 32], EncodeError> {
    let mut h = Sha256::new();
    for part in prefix {
        h.update(part);
    }
    borsh::to_writer(&mut HashWriter(&mut h), value)
        .map_err(|source| EncodeError { what, source })?;
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn the_digest_is_of_the_prefix_and_the_whole_encoding() {
        let value = (7u32, vec![1u8, 2, 3]);
        let mut expected = Sha256::new();
        expected.update(b"ab");
        expected.update(b"c");
        expected.update(borsh::to_vec(&value).unwrap());
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(digest("pair", &[b"ab", b"c"], &value).unwrap(), expected);
    }
}
