//! Relayers and attestations (issue #23): what a chain says, read through
//! the node's configured relayer (`[chains.<chain>] rpc_url`), and claims
//! about it signed by the node. Answers are wrapped in `data`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /admin-api/chains/{chain}/balance`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BalanceRequest {
    /// The account (`0x…` for Ethereum).
    pub account: String,
    /// A token contract: its balance instead of the native one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// What the chain said, at which block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainReading {
    /// The chain.
    pub chain: String,
    /// Its network: `eip155:<chain id>` for Ethereum.
    pub network: String,
    /// The block read.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: String,
    /// The account, canonical.
    pub account: String,
    /// The token, canonical, when one was asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The balance in the smallest unit (wei, the token's base unit), as
    /// decimal digits (it may exceed 64 bits).
    pub balance: String,
}

/// A statement about the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Statement {
    /// `account` holds at least `atLeast` of the native unit.
    Balance {
        /// The account.
        account: String,
        /// Decimal, smallest unit.
        at_least: String,
    },
    /// `account` holds at least `atLeast` of `token`.
    TokenBalance {
        /// The token contract.
        token: String,
        /// The account.
        account: String,
        /// Decimal, the token's base unit.
        at_least: String,
    },
    /// `publicKey` is an access key of NEAR account `account` (no relayer
    /// for NEAR in this build: refused saying so).
    NearAccessKey {
        /// The account.
        account: String,
        /// The key.
        public_key: String,
    },
}

/// `POST /admin-api/chains/{chain}/attest`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestRequest {
    /// What to attest.
    pub statement: Statement,
}

/// A node's signed claim of what a chain said. Verify it with
/// `POST /admin-api/attestations/verify` (or Ed25519 over
/// `"mero.attestation.v1\0"` and the claim's Borsh encoding with
/// `attestedBy`). The signature proves which node claimed it, not that the
/// chain agrees: it is as good as the attesting node and its RPC endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attestation {
    /// The chain.
    pub chain: String,
    /// Its network: `eip155:<chain id>` for Ethereum.
    pub network: String,
    /// The block the chain was read at.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: String,
    /// What is claimed (accounts canonical).
    pub statement: Statement,
    /// What the chain said: the amount read, or `true`/`false`.
    pub observed: String,
    /// Whether the statement holds at that block.
    pub holds: bool,
    /// Hex Ed25519 key of the attesting node.
    pub attested_by: String,
    /// When, Unix milliseconds.
    pub at_millis: u64,
    /// Hex Ed25519 signature.
    pub signature: String,
}

/// `POST /admin-api/attestations/verify`: the signature checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttestationVerified {
    /// Always true (a bad one is a 400 saying why).
    pub valid: bool,
    /// Hex key of the node whose claim it is.
    pub attested_by: String,
    /// Whether the statement held, as that node claims.
    pub holds: bool,
}

/// `GET /admin-api/namespaces/{id}/attestations`: those members' nodes
/// recorded (e.g. before admitting a join gated by a token balance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attestations {
    /// In the order governance folded them.
    pub attestations: Vec<Attestation>,
}
