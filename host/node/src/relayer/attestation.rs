//! Attestations: a node's signed claim of what a chain said (which chain
//! and network, which block, which statement, what it read, whether the
//! statement holds).
//!
//! Trust model: the signature proves which node claimed it, not that the
//! chain agrees. A node that checks an attestation trusts the attesting
//! node (its relayer and its RPC endpoint); anyone who doubts it can ask
//! the chain at the named block themselves.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use mero_chains::Chain;

use super::{Amount, BlockRef, Reading, RelayerError, Relayers};

/// Prefixed to what is signed, so no other signature of the node's key
/// reads as an attestation.
const DOMAIN: &[u8] = b"mero.attestation.v1\0";

/// What is claimed about the chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Statement {
    /// `account` holds at least `at_least` of the chain's native unit.
    Balance {
        /// The account, canonical.
        account: String,
        /// The least amount, in the smallest unit.
        at_least: Amount,
    },
    /// `account` holds at least `at_least` of token `token`.
    TokenBalance {
        /// The token contract, canonical.
        token: String,
        /// The account, canonical.
        account: String,
        /// The least amount, in the token's base unit.
        at_least: Amount,
    },
    /// `public_key` is an access key of NEAR account `account`.
    NearAccessKey {
        /// The account.
        account: String,
        /// The key.
        public_key: String,
    },
}

/// The signed part of an attestation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Claim {
    /// The chain asked.
    pub chain: Chain,
    /// Its network (`eip155:31337`).
    pub network: String,
    /// The block read.
    pub block: BlockRef,
    /// What is claimed.
    pub statement: Statement,
    /// What the chain said: the amount read, or `true`/`false`.
    pub observed: String,
    /// Whether the statement holds at that block.
    pub holds: bool,
    /// The attesting node's key.
    pub attested_by: [u8; 32],
    /// When, Unix milliseconds.
    pub at_millis: u64,
}

/// A claim and the attesting node's Ed25519 signature of it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Attestation {
    /// The claim.
    pub claim: Claim,
    /// Over [`DOMAIN`] and the claim's Borsh encoding.
    pub signature: [u8; 64],
}

/// Why an attestation does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The signer's key is not a valid Ed25519 key.
    #[error("the attesting key is not an Ed25519 public key")]
    BadKey,
    /// The signature is not the named node's over this claim.
    #[error("the signature is not the attesting node's over this claim (forged or altered)")]
    BadSignature,
}

fn signed_bytes(claim: &Claim) -> Vec<u8> {
    let mut bytes = DOMAIN.to_vec();
    // Borsh of plain data into a Vec does not fail.
    bytes.extend(borsh::to_vec(claim).unwrap_or_default());
    bytes
}

impl Attestation {
    /// `claim` signed by `key` (whose public key it must name).
    pub fn sign(claim: Claim, key: &SigningKey) -> Attestation {
        let signature = key.sign(&signed_bytes(&claim)).to_bytes();
        Attestation { claim, signature }
    }

    /// Whether the signature is the attesting node's over the claim.
    pub fn verify(&self) -> Result<(), AttestationError> {
        let key = VerifyingKey::from_bytes(&self.claim.attested_by)
            .map_err(|_| AttestationError::BadKey)?;
        key.verify(
            &signed_bytes(&self.claim),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| AttestationError::BadSignature)
    }
}

/// Canonical accounts for the statement, then the chain's answer at one
/// block, and whether the statement holds there.
pub async fn observe(
    relayers: &Relayers,
    chain: Chain,
    statement: Statement,
) -> Result<(Statement, Reading<String>, bool), RelayerError> {
    let relayer = relayers.get(chain)?;
    let canonical = |a: &str| {
        mero_chains::canonical_account(chain, a)
            .map_err(|e| RelayerError::BadInput(format!("`{a}` is not a {chain} account: {e}")))
    };
    let amount = |r: Reading<Amount>, at_least: &Amount| {
        let holds = r.value >= *at_least;
        (
            Reading {
                value: r.value.to_decimal(),
                block: r.block,
                network: r.network,
            },
            holds,
        )
    };
    Ok(match statement {
        Statement::Balance { account, at_least } => {
            let account = if chain == Chain::Ethereum {
                canonical(&account)?
            } else {
                account
            };
            let (r, holds) = amount(relayer.balance(&account).await?, &at_least);
            (Statement::Balance { account, at_least }, r, holds)
        }
        Statement::TokenBalance {
            token,
            account,
            at_least,
        } => {
            let (token, account) = if chain == Chain::Ethereum {
                (canonical(&token)?, canonical(&account)?)
            } else {
                (token, account)
            };
            let (r, holds) = amount(relayer.token_balance(&token, &account).await?, &at_least);
            (
                Statement::TokenBalance {
                    token,
                    account,
                    at_least,
                },
                r,
                holds,
            )
        }
        Statement::NearAccessKey {
            account,
            public_key,
        } => {
            let r = relayer.near_access_key(&account, &public_key).await?;
            let holds = r.value;
            (
                Statement::NearAccessKey {
                    account,
                    public_key,
                },
                Reading {
                    value: r.value.to_string(),
                    block: r.block,
                    network: r.network,
                },
                holds,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    fn claim(key: &SigningKey) -> Claim {
        Claim {
            chain: Chain::Ethereum,
            network: "eip155:31337".into(),
            block: BlockRef {
                number: 7,
                hash: format!("0x{}", "ab".repeat(32)),
            },
            statement: Statement::TokenBalance {
                token: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
                account: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
                at_least: Amount::from_u128(100),
            },
            observed: "250".into(),
            holds: true,
            attested_by: key.verifying_key().to_bytes(),
            at_millis: 1,
        }
    }

    #[test]
    fn a_signed_attestation_verifies_and_an_altered_one_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let a = Attestation::sign(claim(&key), &key);
        a.verify().unwrap();

        let mut altered = a.clone();
        altered.claim.holds = false;
        assert_eq!(altered.verify(), Err(AttestationError::BadSignature));
        let mut altered = a.clone();
        altered.claim.block.number = 8;
        assert_eq!(altered.verify(), Err(AttestationError::BadSignature));
        // Signed by another node than the one it names.
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = Attestation::sign(claim(&key), &other);
        assert_eq!(forged.verify(), Err(AttestationError::BadSignature));
        // Round-trips through its encoding.
        let back: Attestation = borsh::from_slice(&borsh::to_vec(&a).unwrap()).unwrap();
        back.verify().unwrap();
    }
}
