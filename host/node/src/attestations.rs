//! The node's relayer queries and the attestations it signs (issue #23):
//! "what does the chain say", asked through `[chains]` in config.toml, and
//! signed with the node's key when it is to be shown to others.

use mero_chains::Chain;

use crate::error::Result;
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
