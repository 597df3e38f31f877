//! Namespace keys: what keeps replicated state away from non-members.
//!
//! Each namespace, and each of its restricted subgroups, has a 32-byte
//! symmetric key per epoch. Gossip on its contexts' topics is sealed with
//! the current key (ChaCha20-Poly1305), so a peer that subscribes without
//! being a member sees only ciphertext. The key reaches members wrapped for
//! each of them: X25519 agreement between the sharer's and the member's
//! Ed25519 keys (converted to Montgomery form), hashed with the namespace
//! (or subgroup), epoch and member into a wrapping key. Removing a member
//! rotates the key for those who remain. Which key seals what is
//! [`crate::governance::group_keys`]'s.

use borsh::{BorshDeserialize, BorshSerialize};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// A namespace key wrapped for one member.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Wrapped {
    /// Whom it is for.
    pub member: [u8; 32],
    /// AEAD nonce.
    pub nonce: [u8; 12],
    /// The sealed key.
    pub sealed: Vec<u8>,
}

/// Bytes sealed with a namespace key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Sealed {
    /// The namespace, or the restricted subgroup, whose key sealed them.
    pub namespace: [u8; 32],
    /// Which key.
    pub epoch: u32,
    /// AEAD nonce.
    pub nonce: [u8; 12],
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

fn wrapping_key(shared: &[u8; 32], ns: &[u8; 32], epoch: u32, member: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(
        [
            b"mero.nskey.wrap".as_slice(),
            shared,
            ns,
            &epoch.to_le_bytes(),
            member,
        ]
        .concat(),
    )
    .into()
}

fn agree(mine: &SigningKey, theirs: &[u8; 32]) -> Option<[u8; 32]> {
    let theirs = VerifyingKey::from_bytes(theirs).ok()?;
    Some((theirs.to_montgomery() * mine.to_scalar()).to_bytes())
}

/// Wraps `key` of namespace `ns`, epoch `epoch`, for `member`.
pub fn wrap(
    sharer: &SigningKey,
    member: &[u8; 32],
    ns: &[u8; 32],
    epoch: u32,
    key: &[u8; 32],
) -> Option<Wrapped> {
    let shared = agree(sharer, member)?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&wrapping_key(&shared, ns, epoch, member)));
    let nonce: [u8; 12] = rand::random();
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), key.as_slice())
        .ok()?;
    Some(Wrapped {
        member: *member,
        nonce,
        sealed,
    })
}

/// Unwraps a key `sharer` wrapped for this node (`me`).
pub fn unwrap(
    me: &SigningKey,
    sharer: &[u8; 32],
    ns: &[u8; 32],
    epoch: u32,
    w: &Wrapped,
) -> Option<[u8; 32]> {
    let shared = agree(me, sharer)?;
    let member = me.verifying_key().to_bytes();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&wrapping_key(&shared, ns, epoch, &member)));
    let key = cipher
        .decrypt(Nonce::from_slice(&w.nonce), w.sealed.as_slice())
        .ok()?;
    key.try_into().ok()
}

/// Seals `plaintext` with a namespace key.
pub fn seal(ns: &[u8; 32], epoch: u32, key: &[u8; 32], plaintext: &[u8]) -> Option<Sealed> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let nonce: [u8; 12] = rand::random();
    let ciphertext = cipher.encrypt(Nonce::from_slice(&nonce), plaintext).ok()?;
    Some(Sealed {
        namespace: *ns,
        epoch,
        nonce,
        ciphertext,
    })
}

/// Opens sealed bytes; `None` if the key is wrong or they were altered.
pub fn open(key: &[u8; 32], sealed: &Sealed) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            sealed.ciphertext.as_slice(),
        )
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn only_the_member_unwraps_and_only_the_key_opens() {
        let admin = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let eve = SigningKey::from_bytes(&[3; 32]);
        let ns = [9; 32];
        let key = [5; 32];
        let w = wrap(&admin, &bob.verifying_key().to_bytes(), &ns, 1, &key).unwrap();
        let a = admin.verifying_key().to_bytes();
        assert_eq!(unwrap(&bob, &a, &ns, 1, &w), Some(key));
        assert_eq!(unwrap(&eve, &a, &ns, 1, &w), None);
        assert_eq!(unwrap(&bob, &a, &ns, 2, &w), None, "bound to the epoch");
        assert_eq!(
            unwrap(&bob, &a, &[8; 32], 1, &w),
            None,
            "bound to the namespace"
        );

        let s = seal(&ns, 1, &key, b"state").unwrap();
        assert_eq!(open(&key, &s).as_deref(), Some(b"state".as_slice()));
        assert_eq!(open(&[6; 32], &s), None);
        let mut tampered = s.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(open(&key, &tampered), None);
    }
}
