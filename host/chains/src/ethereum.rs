//! Ethereum: secp256k1 keys, EIP-55 addresses, EIP-191 `personal_sign` and
//! EIP-712 typed data; the signer's address is recovered from the signature.

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::{Chain, ChainIdentity, Challenge, Error, OnChain, Proof, Scheme};

/// A 20-byte address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address(pub [u8; 20]);

fn keccak(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

fn bad(account: &str, reason: &str) -> Error {
    Error::BadAccount {
        chain: Chain::Ethereum,
        account: account.to_owned(),
        reason: reason.to_owned(),
    }
}

impl Address {
    /// Parses `0x` + 40 hex digits. All-lower or all-upper case is taken as
    /// is; mixed case must be the EIP-55 checksum, so a mistyped address is
    /// caught.
    pub fn parse(text: &str) -> Result<Address, Error> {
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| bad(text, "must start with 0x"))?;
        if digits.len() != 40 {
            return Err(bad(text, "must have 40 hex digits"));
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| bad(text, "not hex"))?;
        let address = Address(bytes);
        let lower = digits.chars().all(|c| !c.is_ascii_uppercase());
        let upper = digits.chars().all(|c| !c.is_ascii_lowercase());
        if !lower && !upper && address.to_checksum() != text {
            return Err(bad(text, "mixed case that is not its EIP-55 checksum"));
        }
        Ok(address)
    }

    /// The EIP-55 text: a hex letter is upper case where the matching
    /// nibble of keccak256(lower-case hex) is 8 or more.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
            out.push(if nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }

    /// The address of a key: the last 20 bytes of keccak256 of its
    /// uncompressed point without the 0x04 tag.
    pub fn of_key(key: &VerifyingKey) -> Address {
        let point = key.to_encoded_point(false);
        let hash = keccak(&point.as_bytes()[1..]);
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&hash[12..]);
        Address(bytes)
    }
}

/// EIP-191 version 0x45 (`personal_sign`): keccak256 of
/// `"\x19Ethereum Signed Message:\n" ++ len ++ message`.
pub fn personal_sign_hash(message: &[u8]) -> [u8; 32] {
    let mut data = format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
    data.extend_from_slice(message);
    keccak(&data)
}

/// The EIP-712 domain: `EIP712Domain(string name,string version)` with
/// name "mero" and version "1" (no chain id: the proof is about a key,
/// not a chain's state).
pub const DOMAIN_NAME: &str = "mero";
/// See [`DOMAIN_NAME`].
pub const DOMAIN_VERSION: &str = "1";
/// The primary type signed.
pub const PRIMARY_TYPE: &str =
    "ChainIdentity(string scope,string member,address account,bytes32 nonce,uint64 expires)";

/// The EIP-712 digest of a challenge: keccak256(0x1901 ‖ domainSeparator ‖
/// hashStruct(ChainIdentity{scope, member, account, nonce, expires})),
/// where `scope` is "namespace:<hex>" or "context:<base58>" and `member`
/// the member's key in base58.
pub fn typed_data_hash(challenge: &Challenge) -> Result<[u8; 32], Error> {
    let account = Address::parse(&challenge.account)?;
    let domain_type = keccak(b"EIP712Domain(string name,string version)");
    let mut domain = Vec::with_capacity(96);
    domain.extend_from_slice(&domain_type);
    domain.extend_from_slice(&keccak(DOMAIN_NAME.as_bytes()));
    domain.extend_from_slice(&keccak(DOMAIN_VERSION.as_bytes()));
    let domain_separator = keccak(&domain);

    let scope = challenge.scope.to_string().replace(": ", ":");
    let member = bs58::encode(challenge.member).into_string();
    let mut data = Vec::with_capacity(6 * 32);
    data.extend_from_slice(&keccak(PRIMARY_TYPE.as_bytes()));
    data.extend_from_slice(&keccak(scope.as_bytes()));
    data.extend_from_slice(&keccak(member.as_bytes()));
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(&account.0);
    data.extend_from_slice(&challenge.nonce);
    data.extend_from_slice(&[0u8; 24]);
    data.extend_from_slice(&challenge.expires.to_be_bytes());
    let struct_hash = keccak(&data);

    let mut out = Vec::with_capacity(66);
    out.extend_from_slice(&[0x19, 0x01]);
    out.extend_from_slice(&domain_separator);
    out.extend_from_slice(&struct_hash);
    Ok(keccak(&out))
}

/// The key that signed `digest` with a 65-byte `r ‖ s ‖ v` signature
/// (`v` 27/28 or 0/1). High-`s` signatures are refused, as Ethereum does.
pub fn recover(digest: &[u8; 32], signature: &[u8]) -> Result<VerifyingKey, Error> {
    if signature.len() != 65 {
        return Err(Error::BadSignature(format!(
            "{} bytes, not 65 (r ‖ s ‖ v)",
            signature.len()
        )));
    }
    let v = match signature[64] {
        27 | 28 => signature[64] - 27,
        0 | 1 => signature[64],
        other => return Err(Error::BadSignature(format!("v = {other}"))),
    };
    let sig = Signature::from_slice(&signature[..64]).map_err(|_| Error::SignatureMismatch)?;
    if sig.normalize_s().is_some() {
        return Err(Error::SignatureMismatch);
    }
    let id = RecoveryId::from_byte(v).ok_or_else(|| Error::BadSignature(format!("v = {v}")))?;
    VerifyingKey::recover_from_prehash(digest, &sig, id).map_err(|_| Error::SignatureMismatch)
}

pub(crate) fn verify(challenge: &Challenge, proof: &Proof) -> Result<ChainIdentity, Error> {
    let digest = match proof.scheme {
        Scheme::Eip191 => personal_sign_hash(challenge.message().as_bytes()),
        Scheme::Eip712 => typed_data_hash(challenge)?,
        scheme => {
            return Err(Error::WrongScheme {
                chain: Chain::Ethereum,
                scheme,
            });
        }
    };
    let key = recover(&digest, &proof.signature)?;
    let signer = Address::of_key(&key).to_checksum();
    // A signature over another message recovers some other key: to the
    // member that is a wrong account, as it is for a key that is not the
    // account's.
    if signer != challenge.account {
        return Err(Error::AccountMismatch {
            claimed: challenge.account.clone(),
            signer,
        });
    }
    Ok(ChainIdentity {
        chain: Chain::Ethereum,
        account: signer,
        public_key: key.to_encoded_point(true).as_bytes().to_vec(),
        on_chain: OnChain::Verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_vectors_from_the_eip() {
        for text in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert_eq!(
                Address::parse(text).map(|a| a.to_checksum()),
                Ok(text.to_owned())
            );
        }
        assert!(Address::parse("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
        assert!(Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_ok());
    }

    #[test]
    fn personal_sign_hash_of_hello_world() {
        // web3.eth.accounts.hashMessage("Hello World")
        assert_eq!(
            hex::encode(personal_sign_hash(b"Hello World")),
            "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"
        );
    }
}
