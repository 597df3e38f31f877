//! Chain identity proofs: a member of a namespace (or context) proves that it
//! holds an account on NEAR, Ethereum, ICP or Stellar by signing a
//! [`Challenge`] with that chain's key, in that chain's own signing
//! convention, so that the wallets and libraries of the chain can produce it:
//!
//! | chain | key | account | what is signed |
//! |---|---|---|---|
//! | Ethereum | secp256k1 | EIP-55 address, recovered from the signature | EIP-191 `personal_sign` of [`Challenge::message`], or EIP-712 typed data ([`ethereum::typed_data_hash`]) |
//! | NEAR | ed25519 | implicit (hex of the key) or named (`alice.near`, key given) | NEP-413 `signMessage` payload, recipient [`near::RECIPIENT`], nonce = the challenge's |
//! | ICP | ed25519 | self-authenticating principal (SHA-224 of the DER key), text with CRC32 | the message bytes (ICP has no message-signing standard) |
//! | Stellar | ed25519 | `G…` strkey with CRC16 | SEP-53: SHA-256 of `"Stellar Signed Message:\n"` ++ message |
//!
//! A named NEAR account is checked only as far as the key goes: whether the
//! account holds that access key is the chain's to say, so such identities
//! are [`OnChain::Unverified`]. Replay (nonce reuse) is the caller's to
//! refuse: this crate is pure and keeps no state.

mod challenge;
pub mod ethereum;
pub mod icp;
pub mod interop;
pub mod near;
pub mod signer;
pub mod stellar;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

pub use challenge::{Challenge, Scope};

/// A chain whose accounts members can prove.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    /// NEAR Protocol.
    Near,
    /// Ethereum (and EVM chains: the address is the same).
    Ethereum,
    /// The Internet Computer.
    Icp,
    /// Stellar.
    Stellar,
}

impl Chain {
    /// Every chain, in the order the CLI lists them.
    pub const ALL: [Chain; 4] = [Chain::Near, Chain::Ethereum, Chain::Icp, Chain::Stellar];

    /// Its name on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Near => "near",
            Chain::Ethereum => "ethereum",
            Chain::Icp => "icp",
            Chain::Stellar => "stellar",
        }
    }

    /// The scheme a proof uses when none is named.
    pub fn default_scheme(self) -> Scheme {
        match self {
            Chain::Near => Scheme::Nep413,
            Chain::Ethereum => Scheme::Eip191,
            Chain::Icp => Scheme::IcpEd25519,
            Chain::Stellar => Scheme::Sep53,
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Chain {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "near" => Ok(Chain::Near),
            "ethereum" | "eth" => Ok(Chain::Ethereum),
            "icp" => Ok(Chain::Icp),
            "stellar" | "xlm" => Ok(Chain::Stellar),
            _ => Err(Error::UnknownChain(s.to_owned())),
        }
    }
}

/// How the challenge was signed.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Ethereum `personal_sign` (EIP-191 version 0x45).
    Eip191,
    /// Ethereum typed data (EIP-712), see [`ethereum::typed_data_hash`].
    Eip712,
    /// NEAR's `signMessage` (NEP-413).
    Nep413,
    /// ICP: ed25519 over the message bytes.
    #[serde(rename = "icp-ed25519")]
    IcpEd25519,
    /// Stellar's message signing (SEP-53).
    Sep53,
}

impl Scheme {
    /// The chain it belongs to.
    pub fn chain(self) -> Chain {
        match self {
            Scheme::Eip191 | Scheme::Eip712 => Chain::Ethereum,
            Scheme::Nep413 => Chain::Near,
            Scheme::IcpEd25519 => Chain::Icp,
            Scheme::Sep53 => Chain::Stellar,
        }
    }

    /// Its name in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Eip191 => "eip191",
            Scheme::Eip712 => "eip712",
            Scheme::Nep413 => "nep413",
            Scheme::IcpEd25519 => "icp-ed25519",
            Scheme::Sep53 => "sep53",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "eip191" | "personal_sign" => Ok(Scheme::Eip191),
            "eip712" => Ok(Scheme::Eip712),
            "nep413" => Ok(Scheme::Nep413),
            "icp-ed25519" | "icp" => Ok(Scheme::IcpEd25519),
            "sep53" => Ok(Scheme::Sep53),
            _ => Err(Error::UnknownScheme(s.to_owned())),
        }
    }
}

/// What a member presents: a signature over a challenge's message.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Proof {
    /// The chain.
    pub chain: Chain,
    /// The account claimed, as the member wrote it.
    pub account: String,
    /// How it was signed.
    pub scheme: Scheme,
    /// The signer's raw public key, where the account does not give it
    /// (ICP principals, named NEAR accounts).
    pub public_key: Option<Vec<u8>>,
    /// The signature, decoded.
    pub signature: Vec<u8>,
}

/// Whether the chain itself was asked that the account is the key's.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OnChain {
    /// The account is a function of the key (an address, a principal, a
    /// strkey, an implicit NEAR account): the signature proves it.
    Verified,
    /// A named NEAR account: the key is proven, but not that the account
    /// holds it as an access key (a relayer's question).
    Unverified,
}

/// A verified chain identity.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChainIdentity {
    /// The chain.
    pub chain: Chain,
    /// The account, in its canonical text (EIP-55, principal text, strkey).
    pub account: String,
    /// The key that signed (SEC1 compressed for Ethereum, raw ed25519
    /// otherwise).
    pub public_key: Vec<u8>,
    /// Whether the account is bound to the key by the chain's rules alone.
    pub on_chain: OnChain,
}

/// Why a proof, an account or a key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not one of the four.
    #[error("unknown chain `{0}` (expected near, ethereum, icp or stellar)")]
    UnknownChain(String),
    /// Not a known scheme.
    #[error("unknown signing scheme `{0}` (expected eip191, eip712, nep413, icp-ed25519 or sep53)")]
    UnknownScheme(String),
    /// The scheme is another chain's.
    #[error("scheme {scheme} is not a {chain} signing scheme")]
    WrongScheme {
        /// The chain.
        chain: Chain,
        /// The scheme given.
        scheme: Scheme,
    },
    /// The account's text is malformed or its checksum is wrong.
    #[error("invalid {chain} account `{account}`: {reason}")]
    BadAccount {
        /// The chain.
        chain: Chain,
        /// The text given.
        account: String,
        /// What is wrong.
        reason: String,
    },
    /// The public key is malformed.
    #[error("invalid public key: {0}")]
    BadPublicKey(String),
    /// The signature's encoding is malformed.
    #[error("invalid signature: {0}")]
    BadSignature(String),
    /// The chain needs the signer's key and none was given.
    #[error("a {0} proof for this account needs the signer's public key")]
    MissingPublicKey(Chain),
    /// The signature does not verify.
    #[error("the signature does not verify: forged, or not over this challenge")]
    SignatureMismatch,
    /// The proof's chain is not the challenge's.
    #[error("the proof is for {proof}, the challenge for {challenge}")]
    ChainMismatch {
        /// The challenge's.
        challenge: Chain,
        /// The proof's.
        proof: Chain,
    },
    /// The key (or the signature) belongs to another account.
    #[error("wrong account: the challenge is for {claimed}, the signer is {signer}")]
    AccountMismatch {
        /// The account the challenge names.
        claimed: String,
        /// The account the signer's key gives.
        signer: String,
    },
    /// The challenge expired.
    #[error("the challenge expired at {expires} (now {now}, Unix seconds)")]
    Expired {
        /// When it expired.
        expires: u64,
        /// The time it was checked at.
        now: u64,
    },
}

/// The account in its canonical text, or why it is not one.
pub fn canonical_account(chain: Chain, account: &str) -> Result<String, Error> {
    match chain {
        Chain::Ethereum => ethereum::Address::parse(account).map(|a| a.to_checksum()),
        Chain::Near => near::parse_account(account).map(|a| a.to_owned()),
        Chain::Icp => icp::parse_principal(account).map(|p| icp::principal_to_text(&p)),
        Chain::Stellar => stellar::parse_account(account).map(|k| stellar::encode_account(&k)),
    }
}

/// Decodes a signature as the chain's wallets print it: hex (with or
/// without `0x`) for all, base64 too for the ed25519 chains.
pub fn parse_signature(chain: Chain, text: &str) -> Result<Vec<u8>, Error> {
    let text = text.trim();
    let hex_text = text.strip_prefix("0x").unwrap_or(text);
    let expected = if chain == Chain::Ethereum { 65 } else { 64 };
    if hex_text.len() == expected * 2
        && let Ok(bytes) = hex::decode(hex_text)
    {
        return Ok(bytes);
    }
    if chain != Chain::Ethereum
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
        && bytes.len() == expected
    {
        return Ok(bytes);
    }
    Err(Error::BadSignature(format!(
        "expected {expected} bytes as hex{}",
        if chain == Chain::Ethereum {
            " (0x…)"
        } else {
            " or base64"
        }
    )))
}

/// Decodes a public key as the chain prints it: `ed25519:<base58>` for
/// NEAR, a `G…` strkey for Stellar, DER (hex) or raw hex/base64 for ICP.
pub fn parse_public_key(chain: Chain, text: &str) -> Result<Vec<u8>, Error> {
    let text = text.trim();
    let key: Option<[u8; 32]> = match chain {
        Chain::Near => Some(near::parse_public_key(text)?),
        Chain::Stellar => Some(stellar::parse_account(text)?),
        Chain::Icp => {
            let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text))
                .ok()
                .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .ok_or_else(|| Error::BadPublicKey("expected hex or base64".into()))?;
            Some(icp::raw_key(&bytes)?)
        }
        Chain::Ethereum => None,
    };
    key.map(|k| k.to_vec()).ok_or_else(|| {
        Error::BadPublicKey(
            "Ethereum proofs carry no key: it is recovered from the signature".into(),
        )
    })
}

/// Checks `proof` against `challenge` at `now` (Unix seconds): the chain,
/// the account, the expiry and the signature in the chain's convention.
pub fn verify(challenge: &Challenge, proof: &Proof, now: u64) -> Result<ChainIdentity, Error> {
    if proof.chain != challenge.chain {
        return Err(Error::ChainMismatch {
            challenge: challenge.chain,
            proof: proof.chain,
        });
    }
    if proof.scheme.chain() != proof.chain {
        return Err(Error::WrongScheme {
            chain: proof.chain,
            scheme: proof.scheme,
        });
    }
    let account = canonical_account(proof.chain, &proof.account)?;
    if account != challenge.account {
        return Err(Error::AccountMismatch {
            claimed: challenge.account.clone(),
            signer: account,
        });
    }
    if now >= challenge.expires {
        return Err(Error::Expired {
            expires: challenge.expires,
            now,
        });
    }
    match proof.chain {
        Chain::Ethereum => ethereum::verify(challenge, proof),
        Chain::Near => near::verify(challenge, proof),
        Chain::Icp => icp::verify(challenge, proof),
        Chain::Stellar => stellar::verify(challenge, proof),
    }
}

/// An ed25519 verification, strict (no small-order keys, canonical `s`).
pub(crate) fn ed25519_verify(key: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), Error> {
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| Error::BadPublicKey(format!("{} bytes, not 32", key.len())))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|e| Error::BadPublicKey(e.to_string()))?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| Error::BadSignature(format!("{} bytes, not 64", signature.len())))?;
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&signature))
        .map_err(|_| Error::SignatureMismatch)
}
