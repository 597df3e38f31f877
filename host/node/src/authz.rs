//! Who may do what: every "may X do Y" the node asks, answered here and
//! only here, from a namespace's governance (its folded state) alone: calls,
//! authoring and receiving deltas, serving catch-up, subscribing to events,
//! creating contexts, inviting, reading a group. Each refusal is a named
//! [`Denied`], never a literal at the call site.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mero_crdt::{ContextId, Delta};

use crate::governance::{Denial, Namespace, OpId, Refused, Role, caps, unknown_cut};

/// Why something is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Not (or no longer) a member of the context's namespace or group.
    #[error("this node is not a member (or no longer one) of the context's namespace or group")]
    NotAMember,
    /// Not a member of the group asked about.
    #[error("this node is not a member of the group")]
    NotInGroup,
    /// A read-only member tried to write.
    #[error(
        "this node is a read-only member of the context's namespace: it may call views, not mutating methods"
    )]
    ReadOnly,
    /// A member without the capability the action needs.
    #[error("this node's member may not {0}")]
    MissingCapability(&'static str),
    /// The governance fold refuses the change, and says why.
    #[error("{0}")]
    Governance(String),
}

impl Denied {
    /// The refusal as the executor reports a call it may not run.
    pub(crate) fn into_exec(self) -> mero_executor::ExecError {
        mero_executor::ExecError::Denied {
            kind: self.kind(),
            message: self.to_string(),
        }
    }

    /// A stable name of the refusal, as the API reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            Denied::NotAMember => "NotAMember",
            Denied::NotInGroup => "NotAGroupMember",
            Denied::ReadOnly => "ReadOnlyMember",
            Denied::MissingCapability(_) => "MissingCapability",
            Denied::Governance(_) => "GovernanceRefused",
        }
    }
}

/// Whether `who` may call views (`mutating` false) or mutating methods of
/// `ctx`, in namespace `ns` (`None`: the context has no namespace here).
pub(crate) fn may_call(
    ns: Option<&Namespace>,
    who: &[u8; 32],
    ctx: &ContextId,
    mutating: bool,
) -> Result<(), Denied> {
    let Some(ns) = ns else {
        return Err(Denied::NotAMember);
    };
    may_read(ns, who, ctx)?;
    if mutating && !ns.may_write(who) {
        return Err(Denied::ReadOnly);
    }
    Ok(())
}

/// Whether `who` may read `ctx`: see its state, take or serve its catch-up,
/// subscribe to its events. Members of its group may.
pub(crate) fn may_read(ns: &Namespace, who: &[u8; 32], ctx: &ContextId) -> Result<(), Denied> {
    if ns.may_read(who, &ctx.0) {
        Ok(())
    } else {
        Err(Denied::NotAMember)
    }
}

/// Whether `who` may author deltas of `ctx` now: a member of its group that
/// is not read-only. Snapshots and parents are taken only from such peers.
pub(crate) fn may_author(ns: &Namespace, who: &[u8; 32], ctx: &ContextId) -> bool {
    ns.may_write(who) && ns.may_read(who, &ctx.0)
}

/// Judges a received delta of a context of `ns` (see
/// [`Namespace::judge`]): its author must be a member that may write at the
/// governance heads it names, and those must cover what its parents named.
/// Every node with the same ops judges alike, in any order of arrival.
pub(crate) fn judge(
    ns: Option<&Namespace>,
    cuts: &Cuts,
    delta: &Delta,
    parents: &[Vec<OpId>],
) -> Result<(), Denial> {
    let Some(ns) = ns else {
        return Err(Denial::NotYet(
            "the context's namespace is not known here".into(),
        ));
    };
    let (author, context, cut) = (&delta.author.0, &delta.context.0, &delta.governance);
    if ns.is_tip(cut) {
        return ns.judge_at(ns, author, context, cut, parents);
    }
    let at = cuts.at(ns, cut)?;
    ns.judge_at(&at, author, context, cut, parents)
}

/// The governance states at the cuts deltas name, for one run of
/// judgements over one namespace state: a catch-up or a snapshot's
/// history judges thousands of deltas naming a few cuts, and each state is
/// a replay of the log. Bounded.
#[derive(Debug, Default)]
pub(crate) struct Cuts(Mutex<HashMap<Vec<OpId>, Arc<Namespace>>>);

/// Most states a [`Cuts`] holds before it starts over.
const CUTS: usize = 64;

impl Cuts {
    fn at(&self, ns: &Namespace, cut: &[OpId]) -> Result<Arc<Namespace>, Denial> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = held.get(cut) {
            return Ok(at.clone());
        }
        let at = Arc::new(ns.at(cut).map_err(unknown_cut)?.into_owned());
        if held.len() >= CUTS {
            held.clear();
        }
        held.insert(cut.to_vec(), at.clone());
        Ok(at)
    }
}

/// Whether a received delta may be applied to this node's copy now, by the
/// state layout it was written under (`local`: the layout the context runs
/// here). One written under a newer layout waits (`NotYet`, fetched again
/// later) until this node's own upgrade has migrated the context, so it is
/// never applied to a layout it was not written for, nor read by the
/// migration as old state. One written under an older layout, after this
/// node migrated past it, is refused.
pub(crate) fn judge_layout(local: Option<u32>, delta: &Delta) -> Result<(), Denial> {
    match local {
        Some(here) if delta.layout > here => Err(Denial::NotYet(format!(
            "written under state version {}; the context still runs {here} here until its upgrade migrates it",
            delta.layout
        ))),
        // Written before its author heard of the upgrade this node ran:
        // its ops name the old layout's collections. Its author re-runs the
        // call under the new version (see `upgrades::rejoin`).
        Some(here) if delta.layout < here => Err(Denial::Refused(format!(
            "written under state version {} after the context moved to {here}",
            delta.layout
        ))),
        _ => Ok(()),
    }
}

/// Whether `who` may read the roster of a group of `ns` (its members and
/// registered contexts): any member of the namespace. Not secret from them:
/// each holds the whole governance log those rosters are folded from.
pub(crate) fn may_read_roster(ns: &Namespace, who: &[u8; 32]) -> Result<(), Denied> {
    if ns.is_member(who) {
        Ok(())
    } else {
        Err(Denied::NotInGroup)
    }
}

/// Whether `who` may see group `group` of `ns`: subscribe to its events.
pub(crate) fn may_see_group(
    ns: &Namespace,
    who: &[u8; 32],
    group: &[u8; 32],
) -> Result<(), Denied> {
    if ns.in_group(who, group) {
        Ok(())
    } else {
        Err(Denied::NotInGroup)
    }
}

/// Whether `who` may create a context in `group` of `ns`: a member of the
/// group holding create-context (admins hold every capability).
pub(crate) fn may_create_context(
    ns: &Namespace,
    who: &[u8; 32],
    group: &[u8; 32],
) -> Result<(), Denied> {
    if !ns.is_member(who) || !ns.in_group(who, group) {
        return Err(Denied::NotInGroup);
    }
    if !ns.allowed(who, caps::CREATE_CONTEXT) {
        return Err(Denied::MissingCapability(
            "create contexts in the group (it needs the create-context capability)",
        ));
    }
    Ok(())
}

/// Whether `who` may move `group`'s contexts to another application
/// version: admins only, as the governance fold also requires.
pub(crate) fn may_upgrade(ns: &Namespace, who: &[u8; 32], group: &[u8; 32]) -> Result<(), Denied> {
    if !ns.in_group(who, group) {
        return Err(Denied::NotInGroup);
    }
    if !ns.is_admin(who) {
        return Err(Denied::MissingCapability(
            "upgrade the group (only admins upgrade a group's application)",
        ));
    }
    Ok(())
}

/// Whether `who` may invite a member with `role` into `ns`.
pub(crate) fn may_invite(ns: &Namespace, who: &[u8; 32], role: Role) -> Result<(), Denied> {
    if !ns.is_member(who) {
        return Err(Denied::NotInGroup);
    }
    if !ns.allowed(who, caps::INVITE_MEMBERS) || (role == Role::Admin && !ns.is_admin(who)) {
        return Err(Denied::MissingCapability(
            "invite (it needs the invite-members capability; only admins invite admins)",
        ));
    }
    Ok(())
}

/// Whether `who` may read `ns`'s governance log (anti-entropy, refreshes).
pub(crate) fn may_read_governance(ns: &Namespace, who: &[u8; 32]) -> bool {
    ns.is_member(who)
}

/// Whether `who` may fetch the component with content hash `blob`: it is a
/// member of a namespace that runs it.
pub(crate) fn may_fetch_blob<'a>(
    namespaces: impl IntoIterator<Item = &'a Namespace>,
    who: &[u8; 32],
    blob: &[u8; 32],
) -> bool {
    namespaces.into_iter().any(|s| {
        s.is_member(who)
            && (s.app.as_ref().is_some_and(|a| a.blob == *blob)
                || s.app_history.iter().any(|a| a.blob == *blob))
    })
}

/// Whether the change `op` (authored by `who` on `ns`'s heads) would apply:
/// tried on a copy, so a refusal changes nothing and says why.
pub(crate) fn may_change(
    ns: &Namespace,
    who: &[u8; 32],
    op: &crate::governance::SignedOp,
) -> Result<(), Denied> {
    if !ns.is_member(who) {
        return Err(Denied::Governance("this node is not a member".into()));
    }
    match ns.clone().apply(op) {
        Ok(_) => Ok(()),
        Err(Refused::Invalid(why)) => Err(Denied::Governance(why)),
        Err(other) => Err(Denied::Governance(format!("{other:?}"))),
    }
}

/// Whether an op is a member's request to join (the only op a non-member
/// may submit) signed by the member itself.
pub(crate) fn is_own_join_request(
    op: &crate::governance::SignedOp,
    asker: Option<[u8; 32]>,
) -> bool {
    op.op
        .body
        .join()
        .is_some_and(|j| *j.member == op.op.author && Some(op.op.author) == asker)
        && op.verify().is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::governance::invitation::{Invitation, SignedInvitation};
    use crate::governance::{AppInfo, Body};

    fn key(k: &SigningKey) -> [u8; 32] {
        k.verifying_key().to_bytes()
    }

    /// A namespace by `admin` with `bob` a member and `carol` read-only.
    fn namespace(admin: &SigningKey, bob: &SigningKey, carol: &SigningKey) -> Namespace {
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
        for (who, role) in [(bob, Role::Member), (carol, Role::ReadOnly)] {
            let invitation = SignedInvitation::sign(
                Invitation {
                    inviter_identity: key(admin),
                    group_id: ns.id,
                    expiration_timestamp: 10_000,
                    // One invitation per member: each admits one key.
                    secret_salt: key(who),
                    invited_role: role,
                },
                admin,
            )
            .unwrap();
            let op = ns
                .make(
                    admin,
                    2_000,
                    Body::MemberJoined {
                        member: key(who),
                        invitation,
                        addrs: vec![],
                    },
                )
                .unwrap();
            ns.apply(&op).unwrap();
        }
        ns
    }

    #[test]
    fn each_question_is_answered_from_governance_with_its_named_refusal() {
        let (admin, bob, carol, eve) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
            SigningKey::from_bytes(&[3; 32]),
            SigningKey::from_bytes(&[4; 32]),
        );
        let ns = namespace(&admin, &bob, &carol);
        let ctx = ContextId([5; 32]);
        assert_eq!(may_call(Some(&ns), &key(&bob), &ctx, true), Ok(()));
        assert_eq!(may_call(Some(&ns), &key(&carol), &ctx, false), Ok(()));
        assert_eq!(
            may_call(Some(&ns), &key(&carol), &ctx, true),
            Err(Denied::ReadOnly)
        );
        assert_eq!(
            may_call(Some(&ns), &key(&eve), &ctx, false),
            Err(Denied::NotAMember)
        );
        assert_eq!(
            may_call(None, &key(&bob), &ctx, false),
            Err(Denied::NotAMember)
        );
        assert!(may_author(&ns, &key(&bob), &ctx));
        assert!(!may_author(&ns, &key(&carol), &ctx));
        assert_eq!(
            may_create_context(&ns, &key(&bob), &ns.id),
            Err(Denied::MissingCapability(
                "create contexts in the group (it needs the create-context capability)"
            ))
        );
        assert_eq!(may_create_context(&ns, &key(&admin), &ns.id), Ok(()));
        assert_eq!(
            may_create_context(&ns, &key(&eve), &ns.id),
            Err(Denied::NotInGroup)
        );
        assert!(may_invite(&ns, &key(&bob), Role::Member).is_err());
        assert_eq!(may_invite(&ns, &key(&admin), Role::Admin), Ok(()));
        assert!(may_read_governance(&ns, &key(&carol)));
        assert!(!may_read_governance(&ns, &key(&eve)));
        assert!(may_fetch_blob([&ns], &key(&carol), &[2; 32]));
        assert!(!may_fetch_blob([&ns], &key(&eve), &[2; 32]));
        assert!(!may_fetch_blob([&ns], &key(&carol), &[3; 32]));
        let demote = ns
            .make(
                &bob,
                3_000,
                Body::RoleSet {
                    member: key(&admin),
                    role: Role::Member,
                },
            )
            .unwrap();
        assert_eq!(
            may_change(&ns, &key(&bob), &demote).unwrap_err().kind(),
            "GovernanceRefused"
        );
        assert_eq!(Denied::NotInGroup.kind(), "NotAGroupMember");
    }

    #[test]
    fn a_delta_of_a_newer_layout_waits_and_one_of_an_older_is_refused() {
        let delta = |layout| Delta {
            version: 1,
            context: ContextId([1; 32]),
            author: mero_crdt::Author([2; 32]),
            parents: vec![],
            governance: vec![],
            layout,
            hlc: Default::default(),
            ops: vec![],
            events: vec![],
        };
        assert!(matches!(
            judge_layout(Some(1), &delta(2)),
            Err(Denial::NotYet(_))
        ));
        assert_eq!(judge_layout(Some(2), &delta(2)), Ok(()));
        // One of an older layout, past the migration, never applies: its
        // author re-runs the call under the new version.
        assert!(matches!(
            judge_layout(Some(2), &delta(1)),
            Err(Denial::Refused(_))
        ));
        assert_eq!(judge_layout(None, &delta(3)), Ok(()));
    }

    /// Judged at a cut that is not the tip, a delta gets the verdict the
    /// namespace gives, from a state replayed once for every delta naming
    /// that cut.
    #[test]
    fn deltas_naming_an_older_cut_are_judged_alike_from_one_replay() {
        let (admin, bob, carol) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
            SigningKey::from_bytes(&[3; 32]),
        );
        let mut ns = namespace(&admin, &bob, &carol);
        let context = crate::governance::tests::register_context(&mut ns, &admin, 9, 2_500);
        let cut: Vec<OpId> = ns.heads.iter().copied().collect();
        // The tip moves on: the cut is an older view now.
        let demote = ns
            .make(
                &admin,
                3_000,
                Body::RoleSet {
                    member: key(&bob),
                    role: Role::ReadOnly,
                },
            )
            .unwrap();
        ns.apply(&demote).unwrap();
        assert!(!ns.is_tip(&cut));
        let cuts = Cuts::default();
        // `who`'s delta of the context naming `governance`.
        let delta = |who: &SigningKey, governance: Vec<OpId>| Delta {
            version: 1,
            context: ContextId(context),
            author: mero_crdt::Author(key(who)),
            parents: vec![],
            governance,
            layout: 1,
            hlc: mero_crdt::Hlc::default(),
            ops: vec![],
            events: vec![],
        };
        for who in [&bob, &carol, &admin, &bob] {
            assert_eq!(
                judge(Some(&ns), &cuts, &delta(who, cut.clone()), &[]),
                ns.judge(&key(who), &context, &cut, &[]),
            );
        }
        assert_eq!(cuts.0.lock().unwrap().len(), 1, "one replay for the cut");
        // A cut naming ops not known here waits.
        let delta = delta(&bob, vec![[7; 32]]);
        assert!(matches!(
            judge(Some(&ns), &cuts, &delta, &[]),
            Err(Denial::NotYet(_))
        ));
    }
}
