//! Chain identities (issue #23): the challenge a member signs with a NEAR,
//! Ethereum, ICP or Stellar key, the proof it attaches, and the identities
//! a namespace's members have proven. Answers are wrapped in `data`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /admin-api/namespaces/:id/chain-challenge`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainChallengeRequest {
    /// `near`, `ethereum`, `icp` or `stellar`.
    pub chain: String,
    /// The account: `0x…` (Ethereum), `alice.near` or 64 hex (NEAR), a
    /// principal (ICP), `G…` (Stellar).
    pub account: String,
}

/// The challenge to sign: `message` is the exact text.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainChallenge {
    /// The text to sign with the account's key, in the chain's own
    /// convention (`signing` says which).
    pub message: String,
    /// The chain.
    pub chain: String,
    /// The account, canonical (EIP-55 for Ethereum).
    pub account: String,
    /// Hex namespace id.
    pub namespace_id: String,
    /// Hex key of the member proving.
    pub member: String,
    /// Hex nonce; each proves once.
    pub nonce: String,
    /// Unix seconds; no proof of it is accepted from then on.
    pub expires: u64,
    /// How to sign it, e.g. "EIP-191 personal_sign (or EIP-712 typed data
    /// with --scheme eip712)".
    pub signing: String,
}

/// `POST /admin-api/namespaces/:id/chain-identities`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProveChainRequest {
    /// The chain.
    pub chain: String,
    /// The account.
    pub account: String,
    /// `0x…` hex for Ethereum; base64 or hex for the ed25519 chains.
    pub signature: String,
    /// The signer's key where the account does not give it: ICP (hex DER
    /// or raw) and named NEAR accounts (`ed25519:<base58>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `eip191` (default for Ethereum) or `eip712`; the other chains have
    /// one each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
}

/// A proven chain identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainIdentity {
    /// Hex key of the member.
    pub member: String,
    /// The chain.
    pub chain: String,
    /// The account, canonical.
    pub account: String,
    /// Hex key that signed (SEC1 compressed for Ethereum).
    pub public_key: String,
    /// `verified` when the account is a function of the key; `unverified`
    /// for named NEAR accounts (the account's access keys are not checked).
    pub on_chain: String,
}

/// `GET /admin-api/namespaces/:id/chain-identities`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainIdentities {
    /// Every member's, members in key order.
    pub identities: Vec<ChainIdentity>,
}

/// `PUT /admin-api/namespaces/:id/protocol` and
/// `PUT /admin-api/contexts/:id/protocol`: set once, at creation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetProtocolRequest {
    /// `near`, `ethereum`, `icp` or `stellar`.
    pub protocol: String,
}

/// `GET /admin-api/protocols`: the chain protocol of each namespace (hex
/// id) and context (base58 id) this node is in that has one; a context
/// without its own has its namespace's.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Protocols {
    /// By hex namespace id.
    pub namespaces: std::collections::BTreeMap<String, String>,
    /// By base58 context id.
    pub contexts: std::collections::BTreeMap<String, String>,
}
