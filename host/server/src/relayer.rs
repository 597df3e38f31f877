//! `/admin-api/chains/{chain}/…` and `/admin-api/attestations/verify`:
//! what a chain says through the node's relayer, and attestations (issue
//! #23). They ask the operator's RPC endpoint and sign with the node's
//! key, so they need `admin` (no entry in the permission table).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use mero_api::Data;
use mero_api::ids::hex32;
use mero_api::relayer::{
    AttestRequest, Attestation, AttestationVerified, Attestations, BalanceRequest, ChainReading,
    Statement,
};
use mero_node::Node;
use mero_node::mero_chains::{self, Chain};
use mero_node::relayer::attestation::{self as att, Claim};
use mero_node::relayer::{Amount, BlockRef};

use crate::admin::json_body;
use crate::error::{ApiError, ApiResult};

fn chain(s: &str) -> ApiResult<Chain> {
    s.parse()
        .map_err(|e: mero_chains::Error| ApiError::bad("InvalidChain", e.to_string()))
}

fn amount(text: &str) -> ApiResult<Amount> {
    Amount::from_decimal(text).map_err(|e| ApiError::bad("InvalidAmount", e.to_string()))
}

/// The node's statement from the API's.
pub(crate) fn statement_from(s: &Statement) -> ApiResult<att::Statement> {
    Ok(match s {
        Statement::Balance { account, at_least } => att::Statement::Balance {
            account: account.clone(),
            at_least: amount(at_least)?,
        },
        Statement::TokenBalance {
            token,
            account,
            at_least,
        } => att::Statement::TokenBalance {
            token: token.clone(),
            account: account.clone(),
            at_least: amount(at_least)?,
        },
        Statement::NearAccessKey {
            account,
            public_key,
        } => att::Statement::NearAccessKey {
            account: account.clone(),
            public_key: public_key.clone(),
        },
    })
}

/// The API's statement from the node's.
pub(crate) fn statement_dto(s: &att::Statement) -> Statement {
    match s {
        att::Statement::Balance { account, at_least } => Statement::Balance {
            account: account.clone(),
            at_least: at_least.to_decimal(),
        },
        att::Statement::TokenBalance {
            token,
            account,
            at_least,
        } => Statement::TokenBalance {
            token: token.clone(),
            account: account.clone(),
            at_least: at_least.to_decimal(),
        },
        att::Statement::NearAccessKey {
            account,
            public_key,
        } => Statement::NearAccessKey {
            account: account.clone(),
            public_key: public_key.clone(),
        },
    }
}

/// An attestation as the API shows it.
pub(crate) fn attestation_dto(a: &att::Attestation) -> Attestation {
    let c = &a.claim;
    Attestation {
        chain: c.chain.to_string(),
        network: c.network.clone(),
        block_number: c.block.number,
        block_hash: c.block.hash.clone(),
        statement: statement_dto(&c.statement),
        observed: c.observed.clone(),
        holds: c.holds,
        attested_by: hex32(&c.attested_by),
        at_millis: c.at_millis,
        signature: hex::encode(a.signature),
    }
}

/// The node's attestation from the API's (exactly: any change of a field
/// fails the signature).
pub(crate) fn attestation_from(a: &Attestation) -> ApiResult<att::Attestation> {
    let bad = |m: String| ApiError::bad("InvalidAttestation", m);
    let mut attested_by = [0u8; 32];
    hex::decode_to_slice(&a.attested_by, &mut attested_by)
        .map_err(|e| bad(format!("attestedBy is not 32 hex bytes: {e}")))?;
    let mut signature = [0u8; 64];
    hex::decode_to_slice(&a.signature, &mut signature)
        .map_err(|e| bad(format!("signature is not 64 hex bytes: {e}")))?;
    Ok(att::Attestation {
        claim: Claim {
            chain: chain(&a.chain)?,
            network: a.network.clone(),
            block: BlockRef {
                number: a.block_number,
                hash: a.block_hash.clone(),
            },
            statement: statement_from(&a.statement)?,
            observed: a.observed.clone(),
            holds: a.holds,
            attested_by,
            at_millis: a.at_millis,
        },
        signature,
    })
}

/// An account's balance (native, or of `token`) as the chain says at its
/// latest block, through this node's relayer for the chain. Only Ethereum
/// has one in this build; it needs `[chains.ethereum] rpc_url`.
#[utoipa::path(post, path = "/admin-api/chains/{chain}/balance", tag = "chains",
    params(("chain" = String, Path, description = "near, ethereum, icp or stellar")),
    request_body = BalanceRequest,
    responses((status = 200, body = ChainReading), (status = 400, body = mero_api::ErrorBody),
        (status = 504, body = mero_api::ErrorBody)))]
pub(crate) async fn balance(
    State(node): State<Node>,
    Path(chain_name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<ChainReading>>> {
    let req: BalanceRequest = json_body(&body)?;
    let chain = chain(&chain_name)?;
    let canonical =
        |a: &str| mero_chains::canonical_account(chain, a).unwrap_or_else(|_| a.to_owned());
    let reading = match &req.token {
        Some(token) => node.chain_token_balance(chain, token, &req.account).await?,
        None => node.chain_balance(chain, &req.account).await?,
    };
    Ok(Json(Data::new(ChainReading {
        chain: chain.to_string(),
        network: reading.network,
        block_number: reading.block.number,
        block_hash: reading.block.hash,
        account: canonical(&req.account),
        token: req.token.as_deref().map(canonical),
        balance: reading.value.to_decimal(),
    })))
}

/// Asks the chain about a statement at its latest block and returns the
/// answer signed by this node: held or not (`holds`), with the block and
/// what was read.
#[utoipa::path(post, path = "/admin-api/chains/{chain}/attest", tag = "chains",
    params(("chain" = String, Path, description = "near, ethereum, icp or stellar")),
    request_body = AttestRequest,
    responses((status = 200, body = Attestation), (status = 400, body = mero_api::ErrorBody),
        (status = 504, body = mero_api::ErrorBody)))]
pub(crate) async fn attest(
    State(node): State<Node>,
    Path(chain_name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<Attestation>>> {
    let req: AttestRequest = json_body(&body)?;
    let chain = chain(&chain_name)?;
    let a = node.attest(chain, statement_from(&req.statement)?).await?;
    Ok(Json(Data::new(attestation_dto(&a))))
}

/// Checks an attestation's signature (by any node: `attestedBy` names it).
/// Refused (400, `AttestationRefused`) when forged or altered. It does not
/// ask the chain: whoever trusts the attesting node trusts the claim.
#[utoipa::path(post, path = "/admin-api/attestations/verify", tag = "chains",
    request_body = Attestation,
    responses((status = 200, body = AttestationVerified), (status = 400, body = mero_api::ErrorBody)))]
pub(crate) async fn verify(body: Bytes) -> ApiResult<Json<Data<AttestationVerified>>> {
    let dto: Attestation = json_body(&body)?;
    let a = attestation_from(&dto)?;
    a.verify()
        .map_err(|e| ApiError::bad("AttestationRefused", format!("attestation refused: {e}")))?;
    Ok(Json(Data::new(AttestationVerified {
        valid: true,
        attested_by: dto.attested_by,
        holds: a.claim.holds,
    })))
}

/// `<chain>:<token>:<at least>` as an invitation's token-balance
/// condition; the invitation must bind an account on that chain (the one
/// whose balance counts).
pub(crate) fn token_balance_condition(
    text: &str,
    conditions: &[mero_node::Condition],
) -> ApiResult<mero_node::Condition> {
    let bad = |m: String| ApiError::bad("InvalidTokenBalance", m);
    let mut parts = text.splitn(3, ':');
    let (Some(chain_name), Some(token), Some(at_least)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!(
            "`{text}`: give a token balance as <chain>:<token>:<at least>, e.g. ethereum:0x…:100"
        )));
    };
    let chain: Chain = chain_name
        .parse()
        .map_err(|e: mero_chains::Error| bad(e.to_string()))?;
    let token = mero_chains::canonical_account(chain, token)
        .map_err(|e| bad(format!("the token `{token}`: {e}")))?;
    let at_least = amount(at_least)?.to_decimal();
    if mero_node::relayer::gate::bound_account(conditions, chain).is_none() {
        return Err(bad(format!(
            "`{text}`: the invitation must also bind the joiner's {chain} account (--chain-account {chain}:<account>), whose balance counts"
        )));
    }
    Ok(mero_node::Condition::TokenBalance {
        chain,
        token,
        at_least,
    })
}

/// The attestations members' nodes recorded in the namespace's governance
/// (each verified by every node as it folded it): those that admitted
/// joins gated by a token balance among them.
#[utoipa::path(get, path = "/admin-api/namespaces/{id}/attestations", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    responses((status = 200, body = Attestations), (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn list(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Attestations>>> {
    let ns = crate::admin::group_id(&id)?;
    let attestations = node
        .attestations(&ns)?
        .iter()
        .map(attestation_dto)
        .collect();
    Ok(Json(Data::new(Attestations { attestations })))
}
