//! The message a member signs.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Chain, Error, canonical_account};

/// What the proof is for: a namespace, or one context.
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
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
pub enum Scope {
    /// A namespace, by id (written in hex, as the CLI prints it).
    Namespace([u8; 32]),
    /// A context, by id (written in base58, as the CLI prints it).
    Context([u8; 32]),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Namespace(id) => write!(f, "namespace: {}", hex::encode(id)),
            Scope::Context(id) => write!(f, "context: {}", bs58::encode(id).into_string()),
        }
    }
}

/// A challenge: everything the signature binds. Its [`Challenge::message`]
/// is what the member signs with the chain's key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Challenge {
    /// The namespace or context.
    pub scope: Scope,
    /// The member's (node identity's) public key.
    pub member: [u8; 32],
    /// The chain.
    pub chain: Chain,
    /// The account, canonical (see [`canonical_account`]).
    pub account: String,
    /// Random; a namespace accepts each nonce once.
    pub nonce: [u8; 32],
    /// Unix seconds after which no proof of it is accepted.
    pub expires: u64,
}

impl Challenge {
    /// A challenge for `account`, canonicalised (so a differently cased
    /// Ethereum address is the same challenge).
    pub fn new(
        scope: Scope,
        member: [u8; 32],
        chain: Chain,
        account: &str,
        nonce: [u8; 32],
        expires: u64,
    ) -> Result<Challenge, Error> {
        Ok(Challenge {
            scope,
            member,
            chain,
            account: canonical_account(chain, account)?,
            nonce,
            expires,
        })
    }

    /// The text signed, line by line; each line names what it binds, so a
    /// wallet shows the user what it is signing. Pinned by the interop
    /// fixtures, which build it in Python independently.
    pub fn message(&self) -> String {
        format!(
            "mero chain identity proof\nchain: {}\naccount: {}\n{}\nmember: {}\nnonce: {}\nexpires: {}",
            self.chain,
            self.account,
            self.scope,
            bs58::encode(self.member).into_string(),
            hex::encode(self.nonce),
            self.expires,
        )
    }
}
