//! The node's relayer queries and the attestations it signs (issue #23):
//! "what does the chain say", asked through `[chains]` in config.toml, and
//! signed with the node's key when it is to be shown to others.

use mero_chains::Chain;

use crate::error::Result;
use crate::governance::Namespace;
use crate::node::Node;
use crate::relayer::attestation::{self, Attestation, Claim, Statement};
use crate::relayer::{Amount, Reading};

impl Node {
    /// `account`'s native balance on `chain`, and the block it was read at.
    pub async fn chain_balance(&self, chain: Chain, account: &str) -> Result<Reading<Amount>> {
        let relayer = self.inner.relayers.get(chain)?;
        Ok(relayer.balance(account).await?)
    }

    /// `account`'s balance of `token` on `chain`, and the block.
    pub async fn chain_token_balance(
        &self,
        chain: Chain,
        token: &str,
        account: &str,
    ) -> Result<Reading<Amount>> {
        let relayer = self.inner.relayers.get(chain)?;
        Ok(relayer.token_balance(token, account).await?)
    }

    /// Asks `chain` about `statement` at its latest block and signs what it
    /// said with this node's key, holding or not (a claim that it does not
    /// hold is a claim too).
    pub async fn attest(&self, chain: Chain, statement: Statement) -> Result<Attestation> {
        let (statement, reading, holds) =
            attestation::observe(&self.inner.relayers, chain, statement).await?;
        let claim = Claim {
            chain,
            network: reading.network,
            block: reading.block,
            statement,
            observed: reading.value,
            holds,
            attested_by: self.public_key(),
            at_millis: mero_crdt::hlc::wall_millis(),
        };
        Ok(Attestation::sign(claim, &self.inner.identity))
    }

    /// The attestations members' nodes recorded in namespace `ns` (those
    /// that gated joins among them), in fold order; each verified as it
    /// was folded.
    pub fn attestations(&self, ns: &[u8; 32]) -> Result<Vec<Attestation>> {
        let state = self.inner.members.get(ns).ok_or_else(|| {
            crate::error::NodeError::not_found("NamespaceNotFound", "Namespace not found")
        })?;
        Ok(state.attestations.clone())
    }
}

/// The attestations recorded in `ns` about `member`'s proven chain
/// accounts, as apps read them (`context.chain-attestations`); none for a
/// non-member.
pub(crate) fn for_app(ns: &Namespace, member: &[u8; 32]) -> Vec<mero_runtime::ChainAttestation> {
    if !ns.is_member(member) {
        return Vec::new();
    }
    let accounts = ns.chain_identities.get(member).cloned().unwrap_or_default();
    ns.attestations
        .iter()
        .filter_map(|a| {
            let c = &a.claim;
            let (kind, account, token, at_least) = match &c.statement {
                Statement::Balance { account, at_least } => {
                    ("balance", account, None, Some(at_least.to_decimal()))
                }
                Statement::TokenBalance {
                    token,
                    account,
                    at_least,
                } => (
                    "token-balance",
                    account,
                    Some(token.clone()),
                    Some(at_least.to_decimal()),
                ),
                Statement::NearAccessKey { account, .. } => {
                    ("near-access-key", account, None, None)
                }
            };
            accounts
                .iter()
                .any(|i| i.chain == c.chain && i.account == *account)
                .then(|| mero_runtime::ChainAttestation {
                    chain: c.chain.to_string(),
                    network: c.network.clone(),
                    block_number: c.block.number,
                    block_hash: c.block.hash.clone(),
                    kind: kind.into(),
                    account: account.clone(),
                    token,
                    at_least,
                    observed: c.observed.clone(),
                    holds: c.holds,
                    attested_by: c.attested_by.to_vec(),
                    at_millis: c.at_millis,
                })
        })
        .collect()
}
