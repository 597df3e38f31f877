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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]
    use ed25519_dalek::SigningKey;
    use mero_chains::{Challenge, Proof, Scheme, Scope, signer};

    use super::*;
    use crate::governance::invitation::{Invitation, SignedInvitation};
    use crate::governance::{Body, Refused, Role, SignedOp};
    use crate::relayer::BlockRef;
    use crate::relayer::attestation::Claim;

    const SECRET: [u8; 32] = [77; 32];
    const TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

    fn key(k: &SigningKey) -> [u8; 32] {
        k.verifying_key().to_bytes()
    }

    fn account() -> String {
        signer::ethereum_address(&SECRET).unwrap()
    }

    fn namespace(admin: &SigningKey) -> Namespace {
        crate::governance::tests::created(admin).0
    }

    fn invitation(ns: &Namespace, admin: &SigningKey) -> SignedInvitation {
        SignedInvitation::sign_with(
            Invitation {
                inviter_identity: key(admin),
                group_id: ns.id,
                expiration_timestamp: 10_000,
                secret_salt: [9; 32],
                invited_role: Role::Member,
            },
            vec![
                Condition::ChainAccount {
                    chain: Chain::Ethereum,
                    account: account(),
                },
                Condition::TokenBalance {
                    chain: Chain::Ethereum,
                    token: TOKEN.into(),
                    at_least: "100".into(),
                },
            ],
            admin,
        )
        .unwrap()
    }

    fn join(ns: &Namespace, admin: &SigningKey, joiner: &SigningKey, millis: u64) -> SignedOp {
        let challenge = Challenge::new(
            Scope::Namespace(ns.id),
            key(joiner),
            Chain::Ethereum,
            &account(),
            [3; 32],
            10_000,
        )
        .unwrap();
        let proof = Proof {
            chain: Chain::Ethereum,
            account: challenge.account.clone(),
            scheme: Scheme::Eip191,
            public_key: None,
            signature: signer::ethereum(&SECRET, &challenge).unwrap().to_vec(),
        };
        ns.make(
            admin,
            millis,
            Body::joining(
                key(joiner),
                invitation(ns, admin),
                vec![ChainProof { challenge, proof }],
                vec![],
            ),
        )
        .unwrap()
    }

    fn attestation(by: &SigningKey, at_least: u128, holds: bool, millis: u64) -> Attestation {
        Attestation::sign(
            Claim {
                chain: Chain::Ethereum,
                network: "eip155:31337".into(),
                block: BlockRef {
                    number: 5,
                    hash: format!("0x{}", "ab".repeat(32)),
                },
                statement: Statement::TokenBalance {
                    token: TOKEN.into(),
                    account: account(),
                    at_least: Amount::from_u128(at_least),
                },
                observed: "250".into(),
                holds,
                attested_by: key(by),
                at_millis: millis,
            },
            by,
        )
    }

    fn refused(ns: &mut Namespace, op: &SignedOp) -> String {
        let before = (ns.members.len(), ns.attestations.len());
        match ns.apply(op) {
            Err(Refused::Invalid(why)) => {
                assert_eq!(before, (ns.members.len(), ns.attestations.len()));
                why
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_gated_join_needs_its_authors_attestation_and_every_replica_checks_it() {
        let (admin, joiner) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let mut ns = namespace(&admin);

        // No attestation: refused.
        let op = join(&ns, &admin, &joiner, 3_000);
        let why = refused(&mut ns, &op);
        assert!(why.contains("token balance not attested"), "{why}");

        // Attestations that do not answer: not holding, a lower minimum,
        // too old.
        for (min, holds, at) in [(100, false, 2_500), (99, true, 2_500)] {
            let op = ns
                .make(
                    &admin,
                    2_600,
                    Body::ChainAttested {
                        attestation: attestation(&admin, min, holds, at),
                    },
                )
                .unwrap();
            ns.apply(&op).unwrap();
        }
        let op = join(&ns, &admin, &joiner, 3_000);
        let why = refused(&mut ns, &op);
        assert!(why.contains("token balance not attested"), "{why}");

        // Forged (signed by another key than it names) or recorded by
        // another node than the attesting one: refused.
        let eve = SigningKey::from_bytes(&[5; 32]);
        let mut forged = attestation(&admin, 100, true, 2_900);
        forged.claim.observed = "1000".into();
        let op = ns
            .make(
                &admin,
                2_950,
                Body::ChainAttested {
                    attestation: forged,
                },
            )
            .unwrap();
        assert!(refused(&mut ns, &op).contains("attestation refused"));
        let op = ns
            .make(
                &admin,
                2_950,
                Body::ChainAttested {
                    attestation: attestation(&eve, 100, true, 2_900),
                },
            )
            .unwrap();
        assert!(refused(&mut ns, &op).contains("recorded by the node that made it"));

        // The admitting member's own, holding, recent: admitted, on every
        // replica that folds both ops.
        let attested = ns
            .make(
                &admin,
                2_950,
                Body::ChainAttested {
                    attestation: attestation(&admin, 100, true, 2_900),
                },
            )
            .unwrap();
        let mut replica = ns.clone();
        ns.apply(&attested).unwrap();
        let joined = join(&ns, &admin, &joiner, 3_000);
        ns.apply(&joined).unwrap();
        assert!(ns.is_member(&key(&joiner)));
        replica.apply(&attested).unwrap();
        replica.apply(&joined).unwrap();
        assert!(replica.is_member(&key(&joiner)));
        assert_eq!(replica.attestations.len(), 3);

        // Older than ATTESTATION_MAX_AGE_MILLIS at the join: refused.
        let mut late = namespace(&admin);
        let op = late
            .make(
                &admin,
                2_950,
                Body::ChainAttested {
                    attestation: attestation(&admin, 100, true, 2_900),
                },
            )
            .unwrap();
        late.apply(&op).unwrap();
        let op = join(
            &late,
            &admin,
            &joiner,
            2_900 + ATTESTATION_MAX_AGE_MILLIS + 1,
        );
        let why = refused(&mut late, &op);
        assert!(why.contains("not attested"), "{why}");
    }
}
