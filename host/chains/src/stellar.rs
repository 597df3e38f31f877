//! Stellar: ed25519 keys written as `G…` strkeys (base32 of a version byte,
//! the key and a CRC16-XModem checksum); messages are signed per SEP-53.

use crc::{CRC_16_XMODEM, Crc};
use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

use crate::{Chain, ChainIdentity, Challenge, Error, OnChain, Proof, Scheme, ed25519_verify};

/// The strkey version byte of an account id (`G`): 6 << 3.
pub const ACCOUNT_VERSION: u8 = 6 << 3;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

fn bad(account: &str, reason: &str) -> Error {
    Error::BadAccount {
        chain: Chain::Stellar,
        account: account.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The `G…` strkey of a key.
pub fn encode_account(key: &[u8; 32]) -> String {
    let mut data = Vec::with_capacity(35);
    data.push(ACCOUNT_VERSION);
    data.extend_from_slice(key);
    let crc = CRC16.checksum(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    BASE32_NOPAD.encode(&data)
}

/// The key of a `G…` strkey; refuses another version byte, a bad checksum
/// or a non-canonical encoding.
pub fn parse_account(text: &str) -> Result<[u8; 32], Error> {
    if text.len() != 56 {
        return Err(bad(text, "an account id is 56 characters"));
    }
    let data = BASE32_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| bad(text, "not base32"))?;
    let [version, rest @ ..] = data.as_slice() else {
        return Err(bad(text, "empty"));
    };
    if *version != ACCOUNT_VERSION {
        return Err(bad(text, "not an account id (G…)"));
    }
    let (payload, crc) = rest.split_at(rest.len().saturating_sub(2));
    let key: [u8; 32] = payload
        .try_into()
        .map_err(|_| bad(text, "not 32 bytes of key"))?;
    if crc != CRC16.checksum(&data[..33]).to_le_bytes() {
        return Err(bad(text, "checksum mismatch"));
    }
    // Base32 has trailing bits; only the canonical text is an account.
    if encode_account(&key) != text {
        return Err(bad(text, "not canonical"));
    }
    Ok(key)
}

/// SEP-53: SHA-256 of `"Stellar Signed Message:\n"` ‖ message.
pub fn sep53_hash(message: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"Stellar Signed Message:\n");
    hasher.update(message);
    hasher.finalize().into()
}

pub(crate) fn verify(challenge: &Challenge, proof: &Proof) -> Result<ChainIdentity, Error> {
    if proof.scheme != Scheme::Sep53 {
        return Err(Error::WrongScheme {
            chain: Chain::Stellar,
            scheme: proof.scheme,
        });
    }
    let key = parse_account(&challenge.account)?;
    if let Some(given) = &proof.public_key
        && given.as_slice() != key
    {
        return Err(Error::AccountMismatch {
            claimed: challenge.account.clone(),
            signer: given
                .as_slice()
                .try_into()
                .map(|k| encode_account(&k))
                .unwrap_or_else(|_| hex::encode(given)),
        });
    }
    ed25519_verify(
        &key,
        &sep53_hash(challenge.message().as_bytes()),
        &proof.signature,
    )?;
    Ok(ChainIdentity {
        chain: Chain::Stellar,
        account: challenge.account.clone(),
        public_key: key.to_vec(),
        on_chain: OnChain::Verified,
    })
}
