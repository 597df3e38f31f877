//! `/admin-api/namespaces/:id/chain-*`: a member proves a NEAR, Ethereum,
//! ICP or Stellar account (issue #23). The challenge's message is signed
//! by the account's key outside the node (a wallet); the proof becomes a
//! governance op that every member's node verifies.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use mero_api::Data;
use mero_api::chains::{
    ChainChallenge, ChainChallengeRequest, ChainIdentities, ChainIdentity, Protocols,
    ProveChainRequest, SetProtocolRequest,
};
use mero_api::ids::hex32;
use mero_node::Node;
use mero_node::mero_chains::{self, Chain, Scheme};

use crate::admin::{group_id, json_body};
use crate::error::{ApiError, ApiResult};

fn chain(s: &str) -> ApiResult<Chain> {
    s.parse()
        .map_err(|e: mero_chains::Error| ApiError::bad("InvalidChain", e.to_string()))
}

/// How each chain's wallets sign the message.
fn signing(chain: Chain) -> &'static str {
    match chain {
        Chain::Ethereum => {
            "EIP-191 personal_sign of the message (or EIP-712 typed data ChainIdentity, scheme eip712); signature 0x-hex r||s||v"
        }
        Chain::Near => {
            "NEP-413 signMessage of the message, recipient \"mero\", nonce = the challenge's nonce; signature base64 or hex; named accounts also give the public key (ed25519:...)"
        }
        Chain::Icp => {
            "ed25519 over the message's UTF-8 bytes (Ed25519KeyIdentity.sign); signature hex or base64; give the public key (DER or raw, hex)"
        }
        Chain::Stellar => "SEP-53 message signing (Keypair.sign_message); signature base64 or hex",
    }
}

pub(crate) fn identity_dto(member: &[u8; 32], id: &mero_chains::ChainIdentity) -> ChainIdentity {
    ChainIdentity {
        member: hex32(member),
        chain: id.chain.to_string(),
        account: id.account.clone(),
        public_key: hex::encode(&id.public_key),
        on_chain: match id.on_chain {
            mero_chains::OnChain::Verified => "verified".into(),
            mero_chains::OnChain::Unverified => "unverified".into(),
        },
    }
}

/// The challenge this node's member signs with the account's key: the
/// namespace, the member, the account, a nonce and an expiry (one to two
/// hours ahead). Changes nothing.
#[utoipa::path(post, path = "/admin-api/namespaces/{id}/chain-challenge", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    request_body = ChainChallengeRequest,
    responses((status = 200, body = ChainChallenge), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn challenge(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<ChainChallenge>>> {
    let req: ChainChallengeRequest = json_body(&body)?;
    let ns = group_id(&id)?;
    let chain = chain(&req.chain)?;
    let c = node
        .membership()
        .chain_challenge(&ns, chain, &req.account)?;
    Ok(Json(Data::new(ChainChallenge {
        message: c.message(),
        chain: chain.to_string(),
        account: c.account.clone(),
        namespace_id: hex32(&ns),
        member: hex32(&c.member),
        nonce: hex::encode(c.nonce),
        expires: c.expires,
        signing: signing(chain).into(),
    })))
}

/// Attaches a chain identity to this node's member: the signature of its
/// current challenge is verified here, then recorded as a governance op
/// that every member's node verifies again. Forged, expired, replayed and
/// wrong-account proofs are refused (400) and change nothing.
#[utoipa::path(post, path = "/admin-api/namespaces/{id}/chain-identities", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    request_body = ProveChainRequest,
    responses((status = 200, body = ChainIdentity), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn prove(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<ChainIdentity>>> {
    let req: ProveChainRequest = json_body(&body)?;
    let ns = group_id(&id)?;
    let chain = chain(&req.chain)?;
    let scheme = req
        .scheme
        .as_deref()
        .map(str::parse::<Scheme>)
        .transpose()
        .map_err(|e| ApiError::bad("InvalidChainProof", e.to_string()))?;
    let identity = node
        .membership()
        .prove_chain(
            &ns,
            chain,
            &req.account,
            &req.signature,
            req.public_key.as_deref(),
            scheme,
        )
        .await?;
    Ok(Json(Data::new(identity_dto(&node.public_key(), &identity))))
}

/// The chain identities the namespace's members have proven.
#[utoipa::path(get, path = "/admin-api/namespaces/{id}/chain-identities", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    responses((status = 200, body = ChainIdentities), (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn list(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<ChainIdentities>>> {
    let ns = group_id(&id)?;
    let identities = node
        .membership()
        .chain_identities(&ns)?
        .iter()
        .flat_map(|(m, ids)| ids.iter().map(move |i| identity_dto(m, i)))
        .collect();
    Ok(Json(Data::new(ChainIdentities { identities })))
}

fn protocol(s: &str) -> ApiResult<Chain> {
    s.parse()
        .map_err(|e: mero_chains::Error| ApiError::bad("InvalidProtocol", e.to_string()))
}

/// Associates a namespace with a chain protocol (NEAR, Ethereum, ICP,
/// Stellar), recorded in governance; set once, by its creator or an admin.
#[utoipa::path(put, path = "/admin-api/namespaces/{id}/protocol", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    request_body = SetProtocolRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_namespace_protocol(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: SetProtocolRequest = json_body(&body)?;
    let ns = group_id(&id)?;
    node.membership()
        .set_namespace_protocol(&ns, protocol(&req.protocol)?)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// Associates a context with a chain protocol, recorded in its namespace's
/// governance; set once, by its creator or an admin.
#[utoipa::path(put, path = "/admin-api/contexts/{id}/protocol", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    request_body = SetProtocolRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_context_protocol(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: SetProtocolRequest = json_body(&body)?;
    let ctx = mero_api::ids::parse_b58(&id, "context id")
        .map_err(|m| ApiError::bad("InvalidContextId", m))?;
    node.membership()
        .set_context_protocol(&mero_node::ContextId(ctx), protocol(&req.protocol)?)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// The chain protocol of each namespace and context this node is in.
#[utoipa::path(get, path = "/admin-api/protocols", tag = "contexts",
    responses((status = 200, body = Protocols)))]
pub(crate) async fn protocols(State(node): State<Node>) -> ApiResult<Json<Data<Protocols>>> {
    let (namespaces, contexts) = node.membership().protocols();
    Ok(Json(Data::new(Protocols {
        namespaces: namespaces
            .iter()
            .map(|(id, p)| (hex32(id), p.to_string()))
            .collect(),
        contexts: contexts
            .iter()
            .map(|(id, p)| (mero_api::ids::b58(id), p.to_string()))
            .collect(),
    })))
}
