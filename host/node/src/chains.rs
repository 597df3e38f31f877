//! Chain identities in a namespace: the challenge a member signs with a
//! chain account's key, the governance op that records the proof, and its
//! check on every node. The verification itself is `mero_chains`'.
//!
//! A challenge needs no state: its nonce is derived from this node's own
//! (deterministic) signature of the namespace, the account and an expiry
//! on an hour boundary one to two hours ahead, so `chain-challenge` and
//! `prove-chain` compute the same one, across restarts, and nobody else
//! can. Each nonce proves once: governance keeps the used ones, and the
//! next challenge for the same account takes the next unused nonce.

use std::collections::BTreeMap;

use mero_chains::{Chain, ChainIdentity, Challenge, Proof, Scheme, Scope};
use sha2::{Digest, Sha256};

use mero_crdt::ContextId;

use crate::error::{NodeError, Result};
use crate::governance::invitation::{ChainProof, Condition, SignedInvitation};
use crate::governance::{Body, Namespace, Op};
use crate::membership::Membership;

/// How long a challenge's hour buckets are; a challenge expires one to two
/// of them after it is asked for.
pub const CHALLENGE_BUCKET_SECS: u64 = 3600;

const NONCE_DOMAIN: &[u8] = b"mero.chain-challenge.v1";

/// Whether `op` (proving `challenge` with `proof`) is valid where its
/// author stood: a member proving for itself, in this namespace, with a
/// nonce not used before, and (when `verify`) a signature that verifies at
/// the op's time. The fold re-checks all but the signature.
pub(crate) fn check(
    ns: &Namespace,
    op: &Op,
    challenge: &Challenge,
    proof: &Proof,
    verify: bool,
) -> std::result::Result<(), String> {
    if !ns.is_member(&op.author) {
        return Err("only a member proves a chain identity".into());
    }
    if challenge.member != op.author {
        return Err("the challenge names another member".into());
    }
    match challenge.scope {
        Scope::Namespace(id) if id == ns.id => {}
        Scope::Context(c) if ns.contexts.contains_key(&c) => {}
        _ => return Err("the challenge is for another namespace or context".into()),
    }
    if ns.chain_nonces.contains(&challenge.nonce) {
        return Err("replayed: this challenge's nonce has proven an identity already".into());
    }
    if verify {
        mero_chains::verify(challenge, proof, op.millis / 1000)
            .map_err(|e| format!("chain identity proof refused: {e}"))?;
    }
    Ok(())
}

/// Records a checked proof: its nonce is spent, and the author's identity
/// for that (chain, account) is replaced by this one.
pub(crate) fn fold(ns: &mut Namespace, op: &Op, challenge: &Challenge, proof: &Proof) {
    // Checked where its author stood; verified again for the canonical
    // account and the key, which the op does not carry as such.
    let Ok(identity) = mero_chains::verify(challenge, proof, op.millis / 1000) else {
        return;
    };
    ns.chain_nonces.insert(challenge.nonce);
    let ids = ns.chain_identities.entry(op.author).or_default();
    ids.retain(|i| !(i.chain == identity.chain && i.account == identity.account));
    ids.push(identity);
}

/// Whether `op` may set the protocol of `target`: the namespace's (by its
/// creator or an admin) or a context's of it (by its creator or an admin),
/// once.
pub(crate) fn check_protocol(
    ns: &Namespace,
    op: &Op,
    target: &[u8; 32],
) -> std::result::Result<(), String> {
    let creator = if *target == ns.id {
        ns.creator
    } else {
        ns.contexts
            .get(target)
            .map(|c| c.creator)
            .ok_or("no such context in the namespace")?
    };
    if op.author != creator && !ns.is_admin(&op.author) {
        return Err("only its creator or an admin sets a protocol".into());
    }
    if ns.protocols.contains_key(target) {
        return Err("the protocol is set already; it does not change".into());
    }
    Ok(())
}

/// A signature by a chain account's key of this node's challenge, as a
/// user gives it with a join (`--chain-signature`).
#[derive(Clone, Debug, Default)]
pub struct ChainSignature {
    /// The account it is for; `None`: the invitation's (in order).
    pub account: Option<String>,
    /// Hex `0x…` (Ethereum) or base64/hex (ed25519 chains).
    pub signature: String,
    /// The signer's key, where the account does not give it.
    pub public_key: Option<String>,
    /// The signing scheme, if not the chain's default.
    pub scheme: Option<Scheme>,
}

fn parse_proof(
    chain: Chain,
    account: &str,
    signature: &str,
    public_key: Option<&str>,
    scheme: Option<Scheme>,
) -> Result<Proof> {
    Ok(Proof {
        chain,
        account: account.to_owned(),
        scheme: scheme.unwrap_or(chain.default_scheme()),
        public_key: public_key
            .map(|k| mero_chains::parse_public_key(chain, k))
            .transpose()
            .map_err(|e| bad("InvalidChainProof", e))?,
        signature: mero_chains::parse_signature(chain, signature)
            .map_err(|e| bad("InvalidChainProof", e))?,
    })
}

fn now_secs() -> u64 {
    mero_crdt::hlc::wall_millis() / 1000
}

fn bad(kind: &'static str, e: impl std::fmt::Display) -> NodeError {
    NodeError::BadRequest {
        kind,
        message: e.to_string(),
    }
}

impl Membership {
    /// The challenge this node's member signs with `account`'s key to
    /// prove it in namespace `ns`; its `message()` is the text to sign.
    pub fn chain_challenge(&self, ns: &[u8; 32], chain: Chain, account: &str) -> Result<Challenge> {
        let expires = (now_secs() / CHALLENGE_BUCKET_SECS + 2) * CHALLENGE_BUCKET_SECS;
        self.challenge_expiring(ns, chain, account, expires)
    }

    fn challenge_expiring(
        &self,
        ns: &[u8; 32],
        chain: Chain,
        account: &str,
        expires: u64,
    ) -> Result<Challenge> {
        self.challenges_expiring(ns, chain, account, expires)
            .map(|(fresh, _)| fresh)
    }

    /// The first challenge of the sequence this account and expiry give
    /// whose nonce no proof has used, and those before it (spent).
    fn challenges_expiring(
        &self,
        ns: &[u8; 32],
        chain: Chain,
        account: &str,
        expires: u64,
    ) -> Result<(Challenge, Vec<Challenge>)> {
        // A joiner (before it knows the namespace) asks one too, to prove
        // the account an invitation is bound to: no nonce is spent that it
        // could know of, and its first join spends the one it signed.
        let state = self.get(ns);
        let account = mero_chains::canonical_account(chain, account)
            .map_err(|e| bad("InvalidChainAccount", e))?;
        let (me, _) = self.own_signature(&[]);
        let mut spent = Vec::new();
        for n in 0u64.. {
            let mut msg = NONCE_DOMAIN.to_vec();
            msg.extend_from_slice(ns);
            msg.extend_from_slice(chain.as_str().as_bytes());
            msg.push(0);
            msg.extend_from_slice(account.as_bytes());
            msg.push(0);
            msg.extend_from_slice(&expires.to_le_bytes());
            msg.extend_from_slice(&n.to_le_bytes());
            let (_, sig) = self.own_signature(&msg);
            let challenge = Challenge {
                scope: Scope::Namespace(*ns),
                member: me,
                chain,
                account: account.clone(),
                nonce: Sha256::digest(sig).into(),
                expires,
            };
            if !state
                .as_ref()
                .is_some_and(|s| s.chain_nonces.contains(&challenge.nonce))
            {
                return Ok((challenge, spent));
            }
            spent.push(challenge);
        }
        Err(NodeError::Internal("no unused challenge nonce".into()))
    }

    /// Attaches `account` to this node's member in `ns`: `signature` (and
    /// `public_key` where the account does not give it: ICP, named NEAR
    /// accounts) must sign this hour's or the last hour's challenge. The
    /// proof is verified here first, so a bad one is refused with its
    /// reason before any op is made; then every member's node verifies it
    /// again as it folds the op.
    pub async fn prove_chain(
        &self,
        ns: &[u8; 32],
        chain: Chain,
        account: &str,
        signature: &str,
        public_key: Option<&str>,
        scheme: Option<Scheme>,
    ) -> Result<ChainIdentity> {
        let state = self
            .get(ns)
            .ok_or_else(|| NodeError::not_found("NamespaceNotFound", "Namespace not found"))?;
        if !state.is_member(&self.own_signature(&[]).0) {
            return Err(NodeError::Forbidden {
                kind: "NotAMember",
                message: "this node is not a member of the namespace (a joiner proves an account with `namespace join --chain-signature`)".into(),
            });
        }
        let proof = parse_proof(chain, account, signature, public_key, scheme)?;
        let now = now_secs();
        let current = (now / CHALLENGE_BUCKET_SECS + 2) * CHALLENGE_BUCKET_SECS;
        let mut first_error = None;
        // This hour's challenge, then the last hour's (still unexpired).
        for expires in [current, current - CHALLENGE_BUCKET_SECS] {
            let (challenge, spent) = self.challenges_expiring(ns, chain, account, expires)?;
            match mero_chains::verify(&challenge, &proof, now) {
                Ok(identity) => {
                    self.change(ns, Body::ChainIdentityProven { challenge, proof })
                        .await?;
                    return Ok(identity);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            // Say so when it is a spent challenge's signature: "wrong
            // account" (what Ethereum's recovery gives) would mislead.
            if spent
                .iter()
                .any(|c| mero_chains::verify(c, &proof, now).is_ok())
            {
                return Err(bad(
                    "ChainProofRefused",
                    "chain identity proof refused: replayed (this signature's challenge has proven an identity already; ask a new `chain-challenge`)",
                ));
            }
        }
        Err(bad(
            "ChainProofRefused",
            format!(
                "chain identity proof refused: {} (sign the message of a fresh `chain-challenge`, valid 1 to 2 hours)",
                first_error.map(|e| e.to_string()).unwrap_or_default()
            ),
        ))
    }

    /// The proofs a join with `invitation` carries: one per chain account
    /// it is bound to, from `signatures` of this node's challenge for that
    /// account (this hour's or the last hour's, as `prove-chain`). A
    /// signature names its account, or is taken for the conditions in
    /// order. A signature that verifies against neither challenge is kept
    /// against the current one, so the join's check says why it fails.
    pub fn join_proofs(
        &self,
        invitation: &SignedInvitation,
        signatures: &[ChainSignature],
    ) -> Result<Vec<ChainProof>> {
        let ns = invitation.invitation.group_id;
        let now = now_secs();
        let current = (now / CHALLENGE_BUCKET_SECS + 2) * CHALLENGE_BUCKET_SECS;
        let mut unnamed = signatures.iter().filter(|s| s.account.is_none());
        let mut proofs = Vec::new();
        for cond in &invitation.conditions {
            let Condition::ChainAccount { chain, account } = cond else {
                continue;
            };
            let named = signatures.iter().find(|s| {
                s.account.as_deref().is_some_and(|a| {
                    mero_chains::canonical_account(*chain, a).is_ok_and(|a| a == *account)
                })
            });
            let Some(given) = named.or_else(|| unnamed.next()) else {
                continue;
            };
            let proof = parse_proof(
                *chain,
                given.account.as_deref().unwrap_or(account),
                &given.signature,
                given.public_key.as_deref(),
                given.scheme,
            )?;
            let mut chosen = None;
            for expires in [current, current - CHALLENGE_BUCKET_SECS] {
                let challenge = self.challenge_expiring(&ns, *chain, account, expires)?;
                if mero_chains::verify(&challenge, &proof, now).is_ok() {
                    chosen = Some(challenge);
                    break;
                }
                chosen.get_or_insert(challenge);
            }
            if let Some(challenge) = chosen {
                proofs.push(ChainProof { challenge, proof });
            }
        }
        Ok(proofs)
    }

    /// Associates namespace `ns` with a chain protocol (once).
    pub async fn set_namespace_protocol(&self, ns: &[u8; 32], protocol: Chain) -> Result<()> {
        self.change(
            ns,
            Body::ProtocolSet {
                target: *ns,
                protocol,
            },
        )
        .await
    }

    /// Associates a context with a chain protocol (once).
    pub async fn set_context_protocol(&self, ctx: &ContextId, protocol: Chain) -> Result<()> {
        let state = self
            .registering(ctx)
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?;
        self.change(
            &state.id,
            Body::ProtocolSet {
                target: ctx.0,
                protocol,
            },
        )
        .await
    }

    /// The protocols of the namespaces this node is in (by namespace id)
    /// and of their contexts (by context id): a context's own, else its
    /// namespace's.
    pub fn protocols(&self) -> (BTreeMap<[u8; 32], Chain>, BTreeMap<[u8; 32], Chain>) {
        let (mut namespaces, mut contexts) = (BTreeMap::new(), BTreeMap::new());
        for state in self.all() {
            let own = state.protocols.get(&state.id).copied();
            if let Some(p) = own {
                namespaces.insert(state.id, p);
            }
            for ctx in state.contexts.keys() {
                if let Some(p) = state.protocols.get(ctx).copied().or(own) {
                    contexts.insert(*ctx, p);
                }
            }
        }
        (namespaces, contexts)
    }

    /// The chain identities the members of `ns` have proven, by member.
    pub fn chain_identities(
        &self,
        ns: &[u8; 32],
    ) -> Result<BTreeMap<[u8; 32], Vec<ChainIdentity>>> {
        let state = self
            .get(ns)
            .ok_or_else(|| NodeError::not_found("NamespaceNotFound", "Namespace not found"))?;
        Ok(state
            .chain_identities
            .iter()
            .filter(|(m, _)| state.is_member(m))
            .map(|(m, ids)| (*m, ids.clone()))
            .collect())
    }
}

/// The members' chain identities as apps read them
/// (`context.chain-identities`): the executing member's proven accounts in
/// the namespace of the call's context, as this node's governance holds
/// them. Holds membership weakly: the runtime outlives nothing of it.
pub(crate) struct AppChainIdentities(pub(crate) std::sync::Weak<Membership>);

impl mero_runtime::ChainIdentities for AppChainIdentities {
    fn chain_identities(
        &self,
        ctx: ContextId,
        member: mero_crdt::Author,
    ) -> Vec<mero_runtime::ChainAccount> {
        let Some(members) = self.0.upgrade() else {
            return Vec::new();
        };
        let Some(state) = members.registering(&ctx) else {
            return Vec::new();
        };
        if !state.is_member(&member.0) {
            return Vec::new();
        }
        state
            .chain_identities
            .get(&member.0)
            .into_iter()
            .flatten()
            .map(|i| mero_runtime::ChainAccount {
                chain: i.chain.to_string(),
                account: i.account.clone(),
                verified_on_chain: i.on_chain == mero_chains::OnChain::Verified,
            })
            .collect()
    }

    fn chain_attestations(
        &self,
        ctx: ContextId,
        member: mero_crdt::Author,
    ) -> Vec<mero_runtime::ChainAttestation> {
        let Some(members) = self.0.upgrade() else {
            return Vec::new();
        };
        let Some(state) = members.registering(&ctx) else {
            return Vec::new();
        };
        crate::attestations::for_app(&state, &member.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]
    use ed25519_dalek::SigningKey;
    use mero_chains::signer;

    use super::*;
    use crate::governance::invitation::{Invitation, SignedInvitation};
    use crate::governance::{AppInfo, Refused, Role, SignedOp, caps};
    use mero_chains::ChainIdentity;

    fn key(k: &SigningKey) -> [u8; 32] {
        k.verifying_key().to_bytes()
    }

    /// A namespace by `admin` (at 1 s) that `bob` joined (at 2 s).
    fn namespace(admin: &SigningKey, bob: &SigningKey) -> Namespace {
        let (mut ns, create) = Namespace::create(
            admin,
            1_000,
            Body::Create {
                nonce: [1; 32],
                name: None,
                app: AppInfo {
                    id: [1; 32],
                    blob: [2; 32],
                    size: 3,
                    package: "p".into(),
                    version: "1".into(),
                    source: "s".into(),
                },
                default_capabilities: caps::DEFAULT,
                addrs: vec![],
            },
        )
        .unwrap();
        ns.apply(&create).unwrap();
        let invitation = SignedInvitation::sign(
            Invitation {
                inviter_identity: key(admin),
                group_id: ns.id,
                expiration_timestamp: 10_000,
                secret_salt: [9; 32],
                invited_role: Role::Member,
            },
            admin,
        )
        .unwrap();
        let join = ns
            .make(
                admin,
                2_000,
                Body::MemberJoined {
                    member: key(bob),
                    invitation,
                    addrs: vec![],
                },
            )
            .unwrap();
        ns.apply(&join).unwrap();
        ns
    }

    const STELLAR_SECRET: [u8; 32] = [42; 32];

    /// Bob's challenge for his Stellar account, expiring at 100 s.
    fn challenge(ns: &Namespace, bob: &SigningKey, nonce: u8) -> Challenge {
        Challenge::new(
            Scope::Namespace(ns.id),
            key(bob),
            Chain::Stellar,
            &signer::stellar_account(&STELLAR_SECRET),
            [nonce; 32],
            100,
        )
        .unwrap()
    }

    fn proof(challenge: &Challenge) -> Proof {
        Proof {
            chain: Chain::Stellar,
            account: challenge.account.clone(),
            scheme: Scheme::Sep53,
            public_key: None,
            signature: signer::stellar(&STELLAR_SECRET, challenge).to_vec(),
        }
    }

    fn op(ns: &Namespace, by: &SigningKey, millis: u64, c: Challenge, p: Proof) -> SignedOp {
        ns.make(
            by,
            millis,
            Body::ChainIdentityProven {
                challenge: c,
                proof: p,
            },
        )
        .unwrap()
    }

    fn refused(ns: &mut Namespace, by: &SigningKey, millis: u64, c: Challenge, p: Proof) -> String {
        let made = op(ns, by, millis, c, p);
        let before = (ns.chain_identities.clone(), ns.chain_nonces.clone());
        match ns.apply(&made) {
            Err(Refused::Invalid(why)) => {
                // Refused ops change nothing.
                assert_eq!(
                    before,
                    (ns.chain_identities.clone(), ns.chain_nonces.clone())
                );
                why
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_proof_is_recorded_on_every_replica() {
        let (admin, bob) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let mut ns = namespace(&admin, &bob);
        let mut replica = namespace(&admin, &bob);
        let c = challenge(&ns, &bob, 1);
        let p = proof(&c);
        let proven = op(&ns, &bob, 3_000, c.clone(), p);
        ns.apply(&proven).unwrap();
        // Another node folds the same op and verifies it itself.
        replica.apply(&proven).unwrap();
        for state in [&ns, &replica] {
            let ids = &state.chain_identities[&key(&bob)];
            assert_eq!(ids.len(), 1);
            assert_eq!(ids[0].account, c.account);
            assert_eq!(ids[0].on_chain, mero_chains::OnChain::Verified);
            assert!(state.chain_nonces.contains(&c.nonce));
        }
    }

    #[test]
    fn forged_expired_replayed_and_wrong_account_proofs_are_refused() {
        let (admin, bob) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let mut ns = namespace(&admin, &bob);

        let c = challenge(&ns, &bob, 1);
        let mut forged = proof(&c);
        forged.signature[3] ^= 1;
        let why = refused(&mut ns, &bob, 3_000, c.clone(), forged);
        assert!(why.contains("does not verify"), "{why}");

        // Op at 100 s: the challenge expired at 100 s.
        let why = refused(&mut ns, &bob, 100_000, c.clone(), proof(&c));
        assert!(why.contains("expired"), "{why}");

        // Signed by another Stellar key than the account's.
        let other = signer::stellar(&[43; 32], &c);
        let mut wrong = proof(&c);
        wrong.signature = other.to_vec();
        let why = refused(&mut ns, &bob, 3_000, c.clone(), wrong);
        assert!(why.contains("does not verify"), "{why}");

        // The proof names another account than the challenge.
        let mut wrong = proof(&c);
        wrong.account = signer::stellar_account(&[43; 32]);
        let why = refused(&mut ns, &bob, 3_000, c.clone(), wrong);
        assert!(why.contains("wrong account"), "{why}");

        // Bob's challenge presented by the admin.
        let why = refused(&mut ns, &admin, 3_000, c.clone(), proof(&c));
        assert!(why.contains("another member"), "{why}");

        // A non-member's.
        let eve = SigningKey::from_bytes(&[5; 32]);
        let mut ce = c.clone();
        ce.member = key(&eve);
        let why = refused(&mut ns, &eve, 3_000, ce.clone(), proof(&ce));
        assert!(why.contains("only a member"), "{why}");

        // Valid once; the same challenge again is a replay.
        ns.apply(&op(&ns, &bob, 3_000, c.clone(), proof(&c)))
            .unwrap();
        let why = refused(&mut ns, &bob, 4_000, c.clone(), proof(&c));
        assert!(why.contains("replayed"), "{why}");
        assert_eq!(ns.chain_identities[&key(&bob)].len(), 1);
    }

    #[test]
    fn a_protocol_is_set_once_by_the_creator_or_an_admin() {
        let (admin, bob) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let mut ns = namespace(&admin, &bob);
        let set = |ns: &Namespace, by: &SigningKey, target: [u8; 32], protocol| {
            ns.make(by, 3_000, Body::ProtocolSet { target, protocol })
                .unwrap()
        };
        let id = ns.id;
        let by_bob = set(&ns, &bob, id, Chain::Near);
        assert!(
            matches!(ns.apply(&by_bob), Err(Refused::Invalid(w)) if w.contains("creator or an admin"))
        );
        let unknown = set(&ns, &admin, [7; 32], Chain::Near);
        assert!(
            matches!(ns.apply(&unknown), Err(Refused::Invalid(w)) if w.contains("no such context"))
        );
        ns.apply(&set(&ns, &admin, id, Chain::Ethereum)).unwrap();
        assert_eq!(ns.protocols.get(&id), Some(&Chain::Ethereum));
        let again = set(&ns, &admin, id, Chain::Icp);
        assert!(matches!(ns.apply(&again), Err(Refused::Invalid(w)) if w.contains("set already")));
        assert_eq!(ns.protocols.get(&id), Some(&Chain::Ethereum));
    }

    #[test]
    fn concurrent_uses_of_one_nonce_prove_once() {
        let (admin, bob) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let base = namespace(&admin, &bob);
        let c = challenge(&base, &bob, 1);
        // Both made on the same heads: neither saw the other.
        let first = op(&base, &bob, 3_000, c.clone(), proof(&c));
        let second = op(&base, &bob, 3_001, c.clone(), proof(&c));
        let mut a = base.clone();
        a.apply(&first).unwrap();
        a.apply(&second).unwrap();
        let mut b = base.clone();
        b.apply(&second).unwrap();
        b.apply(&first).unwrap();
        assert_eq!(a.chain_identities, b.chain_identities);
        assert_eq!(a.chain_identities[&key(&bob)].len(), 1);
        assert_eq!(a.chain_nonces.len(), 1);
    }

    // ------------------------------------------- invitations bound to an account

    const ETH_SECRET: [u8; 32] = [77; 32];

    fn eth_account(secret: &[u8; 32]) -> String {
        signer::ethereum_address(secret).unwrap()
    }

    /// An invitation by `admin` bound to the Ethereum account of `secret`.
    fn bound_invitation(ns: &Namespace, admin: &SigningKey, salt: u8) -> SignedInvitation {
        SignedInvitation::sign_with(
            Invitation {
                inviter_identity: key(admin),
                group_id: ns.id,
                expiration_timestamp: 10_000,
                secret_salt: [salt; 32],
                invited_role: Role::Member,
            },
            vec![Condition::ChainAccount {
                chain: Chain::Ethereum,
                account: eth_account(&ETH_SECRET),
            }],
            admin,
        )
        .unwrap()
    }

    /// `who`'s proof of the Ethereum account of `secret` (the challenge
    /// names that account), nonce `nonce`, expiring at 100 s.
    fn eth_proof(ns: &Namespace, who: &SigningKey, secret: &[u8; 32], nonce: u8) -> ChainProof {
        let challenge = Challenge::new(
            Scope::Namespace(ns.id),
            key(who),
            Chain::Ethereum,
            &eth_account(secret),
            [nonce; 32],
            100,
        )
        .unwrap();
        let proof = Proof {
            chain: Chain::Ethereum,
            account: challenge.account.clone(),
            scheme: Scheme::Eip191,
            public_key: None,
            signature: signer::ethereum(secret, &challenge).unwrap().to_vec(),
        };
        ChainProof { challenge, proof }
    }

    /// The admin's op admitting `joiner` with `invitation` and `proofs`,
    /// at `millis`, sent through its Borsh encoding as peers see it.
    fn join_op(
        ns: &Namespace,
        admin: &SigningKey,
        joiner: &SigningKey,
        millis: u64,
        invitation: SignedInvitation,
        proofs: Vec<ChainProof>,
    ) -> SignedOp {
        let op = ns
            .make(
                admin,
                millis,
                Body::joining(key(joiner), invitation, proofs, vec![]),
            )
            .unwrap();
        borsh::from_slice(&borsh::to_vec(&op).unwrap()).unwrap()
    }

    type Snapshot = (
        Vec<[u8; 32]>,
        BTreeMap<[u8; 32], Vec<ChainIdentity>>,
        std::collections::BTreeSet<[u8; 32]>,
        BTreeMap<[u8; 32], [u8; 32]>,
    );

    fn snapshot(ns: &Namespace) -> Snapshot {
        (
            ns.members.keys().copied().collect(),
            ns.chain_identities.clone(),
            ns.chain_nonces.clone(),
            ns.spent_invitations.clone(),
        )
    }

    /// Applies `op`, expects a refusal that changes nothing, and returns
    /// the refusal's typed kind.
    fn join_refused(ns: &mut Namespace, op: &SignedOp) -> &'static str {
        let before = snapshot(ns);
        match ns.apply(op) {
            Err(Refused::Invalid(why)) => {
                assert_eq!(before, snapshot(ns), "a refused join changes nothing");
                crate::governance::invitation::ConditionError::kind_of_message(&why)
                    .unwrap_or_else(|| panic!("untyped refusal: {why}"))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_bound_invitation_admits_the_accounts_holder_on_every_replica() {
        let (admin, bob, carol) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
            SigningKey::from_bytes(&[3; 32]),
        );
        let mut ns = namespace(&admin, &bob);
        let mut replica = namespace(&admin, &bob);
        let p = eth_proof(&ns, &carol, &ETH_SECRET, 1);
        let join = join_op(
            &ns,
            &admin,
            &carol,
            3_000,
            bound_invitation(&ns, &admin, 8),
            vec![p.clone()],
        );
        ns.apply(&join).unwrap();
        replica.apply(&join).unwrap();
        for state in [&ns, &replica] {
            assert!(state.is_member(&key(&carol)));
            let ids = &state.chain_identities[&key(&carol)];
            assert_eq!(ids.len(), 1);
            assert_eq!(ids[0].account, eth_account(&ETH_SECRET));
            assert!(state.chain_nonces.contains(&p.challenge.nonce));
        }
    }

    #[test]
    fn a_join_without_the_bound_accounts_proof_is_refused_on_every_node() {
        let (admin, bob, carol) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
            SigningKey::from_bytes(&[3; 32]),
        );
        let mut ns = namespace(&admin, &bob);
        let inv = bound_invitation(&ns, &admin, 8);

        // No proof.
        let op = join_op(&ns, &admin, &carol, 3_000, inv.clone(), vec![]);
        assert_eq!(join_refused(&mut ns, &op), "ChainProofRequired");

        // Forged: the signature altered.
        let mut forged = eth_proof(&ns, &carol, &ETH_SECRET, 1);
        forged.proof.signature[5] ^= 1;
        let op = join_op(&ns, &admin, &carol, 3_000, inv.clone(), vec![forged]);
        assert_eq!(join_refused(&mut ns, &op), "ChainProofForged");

        // Forged: signed by another key, claiming the bound account.
        let mut other_key = eth_proof(&ns, &carol, &ETH_SECRET, 1);
        other_key.proof.signature = signer::ethereum(&[78; 32], &other_key.challenge)
            .unwrap()
            .to_vec();
        let op = join_op(&ns, &admin, &carol, 3_000, inv.clone(), vec![other_key]);
        assert_eq!(join_refused(&mut ns, &op), "ChainProofForged");

        // Expired: admitted at 100 s, the challenge expired at 100 s.
        let op = join_op(
            &ns,
            &admin,
            &carol,
            100_000,
            inv.clone(),
            vec![eth_proof(&ns, &carol, &ETH_SECRET, 1)],
        );
        assert_eq!(join_refused(&mut ns, &op), "ChainProofExpired");

        // Wrong account: a valid proof of another account.
        let op = join_op(
            &ns,
            &admin,
            &carol,
            3_000,
            inv.clone(),
            vec![eth_proof(&ns, &carol, &[78; 32], 1)],
        );
        assert_eq!(join_refused(&mut ns, &op), "ChainProofWrongAccount");

        // Another joiner's proof (Bob's challenge) for Carol's join.
        let op = join_op(
            &ns,
            &admin,
            &carol,
            3_000,
            inv.clone(),
            vec![eth_proof(&ns, &bob, &ETH_SECRET, 1)],
        );
        assert_eq!(join_refused(&mut ns, &op), "ChainProofWrongChallenge");

        // The invitation stripped of its condition no longer verifies.
        let mut stripped = inv.clone();
        stripped.conditions.clear();
        let op = join_op(&ns, &admin, &carol, 3_000, stripped, vec![]);
        assert!(matches!(ns.apply(&op), Err(Refused::Invalid(w)) if w.contains("forged")));

        // Replayed: Carol joins; Dave's proof reuses her challenge's nonce.
        let p = eth_proof(&ns, &carol, &ETH_SECRET, 1);
        ns.apply(&join_op(&ns, &admin, &carol, 3_000, inv, vec![p]))
            .unwrap();
        let dave = SigningKey::from_bytes(&[4; 32]);
        let op = join_op(
            &ns,
            &admin,
            &dave,
            4_000,
            bound_invitation(&ns, &admin, 10),
            vec![eth_proof(&ns, &dave, &ETH_SECRET, 1)],
        );
        assert_eq!(join_refused(&mut ns, &op), "ChainProofReplayed");
        // With a fresh nonce it is admitted.
        let op = join_op(
            &ns,
            &admin,
            &dave,
            4_000,
            bound_invitation(&ns, &admin, 10),
            vec![eth_proof(&ns, &dave, &ETH_SECRET, 2)],
        );
        ns.apply(&op).unwrap();
        assert!(ns.is_member(&key(&dave)));
    }

    #[test]
    fn concurrent_joins_with_one_nonce_admit_one_on_every_replica() {
        let (admin, bob) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let (carol, dave) = (
            SigningKey::from_bytes(&[3; 32]),
            SigningKey::from_bytes(&[4; 32]),
        );
        let base = namespace(&admin, &bob);
        // Both made on the same heads (by two admitting nodes), each valid
        // where it stood; one nonce between them.
        let first = join_op(
            &base,
            &admin,
            &carol,
            3_000,
            bound_invitation(&base, &admin, 8),
            vec![eth_proof(&base, &carol, &ETH_SECRET, 1)],
        );
        let second = join_op(
            &base,
            &admin,
            &dave,
            3_001,
            bound_invitation(&base, &admin, 10),
            vec![eth_proof(&base, &dave, &ETH_SECRET, 1)],
        );
        let mut a = base.clone();
        a.apply_all(vec![first.clone(), second.clone()]);
        let mut b = base.clone();
        b.apply_all(vec![second, first]);
        assert_eq!(snapshot(&a), snapshot(&b));
        assert!(a.is_member(&key(&carol)));
        assert!(!a.is_member(&key(&dave)));
    }
}
