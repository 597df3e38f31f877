//! Invitations gated by a token balance (issue #23): the governance side.
//!
//! The admitting member's node asks the chain through its relayer whether
//! the joiner's account (the invitation's bound chain account) holds at
//! least the invitation's minimum, records its signed attestation as a
//! [`Body::ChainAttested`] op, then the join. Every node checks, as it
//! folds the join, that such an attestation by the join's author precedes
//! it: recent, for that account, token and minimum, and holding. Other
//! nodes trust the admitting node's claim (its signature proves who made
//! it, not that the chain agrees); they do not ask the chain themselves.
//! Pure: no I/O, deterministic at every node.

use mero_chains::{Chain, ChainIdentity};

use super::Amount;
use super::attestation::{Attestation, Statement};
use crate::governance::invitation::{ChainProof, Condition, ConditionError};
use crate::governance::{Namespace, Op};

/// How long before the join its attestation may have been made.
pub const ATTESTATION_MAX_AGE_MILLIS: u64 = 10 * 60 * 1000;

/// Whether `op` may record `attestation`: by a member, who is the
/// attesting node, with a signature that verifies.
pub(crate) fn check_attestation(
    ns: &Namespace,
    op: &Op,
    attestation: &Attestation,
) -> Result<(), String> {
    if !ns.is_member(&op.author) {
        return Err("only a member records an attestation".into());
    }
    if attestation.claim.attested_by != op.author {
        return Err("an attestation is recorded by the node that made it".into());
    }
    attestation
        .verify()
        .map_err(|e| format!("attestation refused: {e}"))
}

/// The account a token-balance condition on `chain` is about: the
/// invitation's bound account on that chain.
pub fn bound_account(conditions: &[Condition], chain: Chain) -> Option<&str> {
    conditions.iter().find_map(|c| match c {
        Condition::ChainAccount { chain: c, account } if *c == chain => Some(account.as_str()),
        _ => None,
    })
}

/// Whether `statement` about `account` answers the condition.
fn answers(statement: &Statement, token: &str, account: &str, at_least: &Amount) -> bool {
    matches!(statement, Statement::TokenBalance { token: t, account: a, at_least: l }
        if t == token && a == account && l >= at_least)
}

/// Whether every token-balance condition of a join is met by an
/// attestation its author recorded before it (see the module's doc).
pub(crate) fn check_token_conditions(
    ns: &Namespace,
    op: &Op,
    conditions: &[Condition],
    met: &[(ChainProof, ChainIdentity)],
) -> Result<(), ConditionError> {
    for cond in conditions {
        let Condition::TokenBalance {
            chain,
            token,
            at_least,
        } = cond
        else {
            continue;
        };
        let unattested = |why: String| ConditionError::TokenBalanceUnattested(why);
        let min = Amount::from_decimal(at_least)
            .map_err(|e| unattested(format!("the invitation's minimum: {e}")))?;
        let account = met
            .iter()
            .find(|(_, id)| id.chain == *chain)
            .map(|(_, id)| id.account.as_str())
            .ok_or_else(|| unattested(format!("no {chain} account was proven with the join")))?;
        let found = ns.attestations.iter().any(|a| {
            let c = &a.claim;
            c.attested_by == op.author
                && c.chain == *chain
                && c.holds
                && c.at_millis <= op.millis
                && op.millis - c.at_millis <= ATTESTATION_MAX_AGE_MILLIS
                && answers(&c.statement, token, account, &min)
        });
        if !found {
            return Err(unattested(format!(
                "no attestation by the admitting member that {account} holds {cond}"
            )));
        }
    }
    Ok(())
}
