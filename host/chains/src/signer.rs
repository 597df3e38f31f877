//! Signing a challenge as a wallet of the chain would, for this
//! workspace's tests and tools. Whether real wallets agree is what the
//! interop fixtures check; this only spares in-process tests a Python or
//! Node runtime.

use ed25519_dalek::{Signer, SigningKey};

use crate::{Challenge, Error, near, stellar};

/// A Stellar account from `secret` and its SEP-53 signature of
/// `challenge`'s message.
pub fn stellar(secret: &[u8; 32], challenge: &Challenge) -> [u8; 64] {
    let key = SigningKey::from_bytes(secret);
    key.sign(&stellar::sep53_hash(challenge.message().as_bytes()))
        .to_bytes()
}

/// The `G…` account of `secret`.
pub fn stellar_account(secret: &[u8; 32]) -> String {
    stellar::encode_account(&SigningKey::from_bytes(secret).verifying_key().to_bytes())
}

/// A NEAR key's NEP-413 signature of `challenge`.
pub fn near(secret: &[u8; 32], challenge: &Challenge) -> Result<[u8; 64], Error> {
    let key = SigningKey::from_bytes(secret);
    let hash = near::nep413_hash(&challenge.message(), challenge.nonce, near::RECIPIENT)?;
    Ok(key.sign(&hash).to_bytes())
}

/// The implicit NEAR account of `secret`.
pub fn near_implicit_account(secret: &[u8; 32]) -> String {
    hex::encode(SigningKey::from_bytes(secret).verifying_key().to_bytes())
}

/// An Ethereum key's address (EIP-55) and its `personal_sign` (EIP-191)
/// signature of `challenge`'s message, `r ‖ s ‖ v` with `v` 27 or 28.
pub fn ethereum(secret: &[u8; 32], challenge: &Challenge) -> Result<[u8; 65], Error> {
    let key = k256::ecdsa::SigningKey::from_slice(secret)
        .map_err(|e| Error::BadPublicKey(e.to_string()))?;
    let digest = crate::ethereum::personal_sign_hash(challenge.message().as_bytes());
    let (sig, id) = key
        .sign_prehash_recoverable(&digest)
        .map_err(|_| Error::SignatureMismatch)?;
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + id.to_byte();
    Ok(out)
}

/// The EIP-55 address of an Ethereum secret key.
pub fn ethereum_address(secret: &[u8; 32]) -> Result<String, Error> {
    let key = k256::ecdsa::SigningKey::from_slice(secret)
        .map_err(|e| Error::BadPublicKey(e.to_string()))?;
    Ok(crate::ethereum::Address::of_key(key.verifying_key()).to_checksum())
}
