//! The Internet Computer: a self-authenticating principal is SHA-224 of
//! the DER-encoded public key followed by 0x02; its text is base32 of
//! CRC32 ‖ bytes, lower case, in groups of five joined by `-`.

use crc::{CRC_32_ISO_HDLC, Crc};
use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha224};

use crate::{Chain, ChainIdentity, Challenge, Error, OnChain, Proof, Scheme, ed25519_verify};

/// The DER (SubjectPublicKeyInfo) prefix of an ed25519 key, OID 1.3.101.112.
pub const ED25519_DER_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The last byte of a self-authenticating principal.
pub const SELF_AUTHENTICATING: u8 = 0x02;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

fn bad(account: &str, reason: &str) -> Error {
    Error::BadAccount {
        chain: Chain::Icp,
        account: account.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The self-authenticating principal of an ed25519 key.
pub fn principal_of_key(key: &[u8; 32]) -> Vec<u8> {
    let mut der = ED25519_DER_PREFIX.to_vec();
    der.extend_from_slice(key);
    let mut principal = Sha224::digest(&der).to_vec();
    principal.push(SELF_AUTHENTICATING);
    principal
}

/// The textual form of a principal.
pub fn principal_to_text(principal: &[u8]) -> String {
    let mut data = CRC32.checksum(principal).to_be_bytes().to_vec();
    data.extend_from_slice(principal);
    let text = BASE32_NOPAD.encode(&data).to_ascii_lowercase();
    let groups: Vec<&str> = text
        .as_bytes()
        .chunks(5)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    groups.join("-")
}

/// The bytes of a principal's text; refuses a bad checksum or anything but
/// the canonical form.
pub fn parse_principal(text: &str) -> Result<Vec<u8>, Error> {
    let compact: String = text.chars().filter(|c| *c != '-').collect();
    let data = BASE32_NOPAD
        .decode(compact.to_ascii_uppercase().as_bytes())
        .map_err(|_| bad(text, "not base32"))?;
    if data.len() < 4 || data.len() > 4 + 29 {
        return Err(bad(text, "a principal is at most 29 bytes"));
    }
    let (crc, principal) = data.split_at(4);
    if crc != CRC32.checksum(principal).to_be_bytes() {
        return Err(bad(text, "checksum mismatch"));
    }
    if principal_to_text(principal) != text {
        return Err(bad(text, "not canonical (lower case, groups of five)"));
    }
    Ok(principal.to_vec())
}

/// The raw 32-byte key from raw or DER bytes.
pub fn raw_key(bytes: &[u8]) -> Result<[u8; 32], Error> {
    let raw = match bytes.len() {
        32 => bytes,
        44 if bytes[..12] == ED25519_DER_PREFIX => &bytes[12..],
        n => {
            return Err(Error::BadPublicKey(format!(
                "{n} bytes: expected a raw (32) or DER (44) ed25519 key"
            )));
        }
    };
    raw.try_into()
        .map_err(|_| Error::BadPublicKey("not 32 bytes".into()))
}

pub(crate) fn verify(challenge: &Challenge, proof: &Proof) -> Result<ChainIdentity, Error> {
    if proof.scheme != Scheme::IcpEd25519 {
        return Err(Error::WrongScheme {
            chain: Chain::Icp,
            scheme: proof.scheme,
        });
    }
    let key = raw_key(
        proof
            .public_key
            .as_deref()
            .ok_or(Error::MissingPublicKey(Chain::Icp))?,
    )?;
    let signer = principal_to_text(&principal_of_key(&key));
    if signer != challenge.account {
        return Err(Error::AccountMismatch {
            claimed: challenge.account.clone(),
            signer,
        });
    }
    ed25519_verify(&key, challenge.message().as_bytes(), &proof.signature)?;
    Ok(ChainIdentity {
        chain: Chain::Icp,
        account: signer,
        public_key: key.to_vec(),
        on_chain: OnChain::Verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_principals() {
        assert_eq!(principal_to_text(&[]), "aaaaa-aa");
        assert_eq!(principal_to_text(&[4]), "2vxsx-fae");
        assert_eq!(parse_principal("2vxsx-fae"), Ok(vec![4]));
        assert!(parse_principal("2vxsx-fea").is_err());
        assert!(parse_principal("2VXSX-FAE").is_err());
    }
}
