//! NEAR: ed25519 keys; implicit accounts are the hex of the key, named
//! accounts (`alice.near`) carry the key and stay unverified on chain.
//! Proofs are NEP-413 `signMessage` signatures.

use borsh::BorshSerialize;
use sha2::{Digest, Sha256};

use crate::{Chain, ChainIdentity, Challenge, Error, OnChain, Proof, Scheme, ed25519_verify};

/// The NEP-413 recipient our challenges name.
pub const RECIPIENT: &str = "mero";

/// NEP-413's tag, 2^31 + 413, prefixed so a signed message can never be a
/// valid transaction.
pub const NEP413_TAG: u32 = (1 << 31) + 413;

fn bad(account: &str, reason: &str) -> Error {
    Error::BadAccount {
        chain: Chain::Near,
        account: account.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Checks NEAR's account id rules: 2 to 64 characters of `a-z`, `0-9` and
/// the separators `-`, `_`, `.`, which may not lead, trail or follow one
/// another.
pub fn parse_account(account: &str) -> Result<&str, Error> {
    if !(2..=64).contains(&account.len()) {
        return Err(bad(account, "must be 2 to 64 characters"));
    }
    let mut previous_separator = true;
    for c in account.chars() {
        let separator = matches!(c, '-' | '_' | '.');
        if !separator && !c.is_ascii_lowercase() && !c.is_ascii_digit() {
            return Err(bad(account, "only a-z, 0-9, '-', '_' and '.' are allowed"));
        }
        if separator && previous_separator {
            return Err(bad(account, "a separator may not lead or follow another"));
        }
        previous_separator = separator;
    }
    if previous_separator {
        return Err(bad(account, "a separator may not trail"));
    }
    Ok(account)
}

/// The key of an implicit account (64 lower-case hex digits), if it is one.
pub fn implicit_key(account: &str) -> Option<[u8; 32]> {
    if account.len() != 64 || account.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let mut key = [0u8; 32];
    hex::decode_to_slice(account, &mut key).ok().map(|()| key)
}

/// Parses `ed25519:<base58>`, NEAR's text for a public key.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], Error> {
    let b58 = text
        .strip_prefix("ed25519:")
        .ok_or_else(|| Error::BadPublicKey("a NEAR key is `ed25519:<base58>`".into()))?;
    let bytes = bs58::decode(b58)
        .into_vec()
        .map_err(|e| Error::BadPublicKey(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| Error::BadPublicKey("not 32 bytes".into()))
}

/// NEAR's text for a public key.
pub fn format_public_key(key: &[u8; 32]) -> String {
    format!("ed25519:{}", bs58::encode(key).into_string())
}

#[derive(BorshSerialize)]
struct Nep413Payload<'a> {
    message: &'a str,
    nonce: [u8; 32],
    recipient: &'a str,
    callback_url: Option<String>,
}

/// What a NEP-413 signature signs: SHA-256 of borsh(tag) ‖
/// borsh({message, nonce, recipient, callbackUrl: None}).
pub fn nep413_hash(message: &str, nonce: [u8; 32], recipient: &str) -> Result<[u8; 32], Error> {
    let mut data = NEP413_TAG.to_le_bytes().to_vec();
    Nep413Payload {
        message,
        nonce,
        recipient,
        callback_url: None,
    }
    .serialize(&mut data)
    .map_err(|e| Error::BadSignature(e.to_string()))?;
    Ok(Sha256::digest(&data).into())
}

pub(crate) fn verify(challenge: &Challenge, proof: &Proof) -> Result<ChainIdentity, Error> {
    if proof.scheme != Scheme::Nep413 {
        return Err(Error::WrongScheme {
            chain: Chain::Near,
            scheme: proof.scheme,
        });
    }
    let implicit = implicit_key(&challenge.account);
    let key: [u8; 32] = match (implicit, &proof.public_key) {
        (Some(account_key), Some(given)) if given.as_slice() != account_key => {
            return Err(Error::AccountMismatch {
                claimed: challenge.account.clone(),
                signer: hex::encode(given),
            });
        }
        (Some(account_key), _) => account_key,
        (None, Some(given)) => given
            .as_slice()
            .try_into()
            .map_err(|_| Error::BadPublicKey("not 32 bytes".into()))?,
        (None, None) => return Err(Error::MissingPublicKey(Chain::Near)),
    };
    let hash = nep413_hash(&challenge.message(), challenge.nonce, RECIPIENT)?;
    ed25519_verify(&key, &hash, &proof.signature)?;
    Ok(ChainIdentity {
        chain: Chain::Near,
        account: challenge.account.clone(),
        public_key: key.to_vec(),
        on_chain: if implicit.is_some() {
            OnChain::Verified
        } else {
            OnChain::Unverified
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_rules() {
        for ok in ["alice.near", "a-b_c.testnet", "aa", &"f".repeat(64)] {
            assert!(parse_account(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a",
            "Alice.near",
            ".alice",
            "alice.",
            "a..b",
            "a b",
            &"f".repeat(65),
        ] {
            assert!(parse_account(bad).is_err(), "{bad}");
        }
    }
}
