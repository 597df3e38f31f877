//! Which key seals a group's contexts, who must hold it, and what a node
//! must do for that to stay true.
//!
//! The namespace key is every member's. A restricted subgroup has a key of
//! its own (a *key group*), so that a namespace member outside it sees its
//! contexts' gossip as ciphertext only; an open subgroup uses the key of its
//! nearest restricted ancestor, else the namespace's. A key group's key is
//! for its *key members*: whoever is in any group sealed with it.
//!
//! Governance records, per key group, the newest epoch shared and whom it
//! was wrapped for (`GroupKeyShared` ops). From that, [`Namespace::key_work`]
//! tells a node whether it must make the first key, share the current one
//! with members that lack it, or rotate because someone who holds it is no
//! longer a key member (removed from the group or the namespace, or the
//! group's visibility changed). One node acts: the smallest key among the
//! key members that may manage the group (and, to share, hold the key), so
//! that every node, folding the same ops, agrees on who.

use std::collections::BTreeSet;

use super::{Namespace, Refused};
use crate::keys::Wrapped;

/// A key group's key as governance knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupKey {
    /// The newest epoch shared.
    pub epoch: u32,
    /// The members that epoch was wrapped for, and those who shared it.
    pub holders: BTreeSet<[u8; 32]>,
}

/// What a node must do for a key group's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyWork {
    /// Make a new epoch (the first, or after a holder left) for `members`.
    Rotate {
        /// The key group.
        group: [u8; 32],
        /// Every key member.
        members: Vec<[u8; 32]>,
    },
    /// Wrap the current epoch for `members`, who lack it.
    Share {
        /// The key group.
        group: [u8; 32],
        /// The key members without it.
        members: Vec<[u8; 32]>,
    },
}

impl Namespace {
    /// The id of the key that seals `group`'s contexts: the nearest
    /// restricted group from `group` up, else the namespace.
    pub fn key_group(&self, group: &[u8; 32]) -> [u8; 32] {
        let mut at = *group;
        // Parents are created before children; the bound guards the walk.
        for _ in 0..=self.groups.len() {
            match self.groups.get(&at) {
                Some(g) if !g.open => return at,
                Some(g) => at = g.parent,
                None => break,
            }
        }
        self.id
    }

    /// The key that seals `context`'s gossip (the namespace's for a
    /// context not registered here).
    pub fn key_of_context(&self, context: &[u8; 32]) -> [u8; 32] {
        self.group_of(context)
            .map_or(self.id, |g| self.key_group(&g))
    }

    /// Whether `group` is a subgroup with a key of its own.
    pub fn is_key_group(&self, group: &[u8; 32]) -> bool {
        self.groups.get(group).is_some_and(|g| !g.open)
    }

    /// Every namespace member in some group sealed with `key`'s key.
    pub fn key_members(&self, key: &[u8; 32]) -> BTreeSet<[u8; 32]> {
        let sealed_with: Vec<[u8; 32]> = self
            .groups
            .keys()
            .filter(|g| self.key_group(g) == *key)
            .copied()
            .collect();
        self.members
            .keys()
            .filter(|m| sealed_with.iter().any(|g| self.in_group(m, g)))
            .copied()
            .collect()
    }

    /// Checks a `GroupKeyShared` op by `author`.
    pub(super) fn check_group_key(
        &self,
        author: &[u8; 32],
        group: &[u8; 32],
        epoch: u32,
    ) -> Result<(), Refused> {
        if !self.is_key_group(group) {
            return Err(Refused::Invalid(
                "only a restricted subgroup has a key of its own".into(),
            ));
        }
        self.check_group_manage(author, group, 0)?;
        if !self.key_members(group).contains(author) {
            return Err(Refused::Invalid(
                "the author is not a member of the subgroup".into(),
            ));
        }
        let next = match self.group_keys.get(group) {
            None => 0,
            Some(k) => k
                .epoch
                .checked_add(1)
                .ok_or_else(|| Refused::Invalid("key epochs exhausted".into()))?,
        };
        // A share of an older epoch is harmless; one that skips ahead
        // would leave members unable to tell which key is current.
        if epoch > next {
            return Err(Refused::Invalid("a key epoch that skips ahead".into()));
        }
        Ok(())
    }

    /// Folds a `GroupKeyShared` op.
    pub(super) fn fold_group_key(
        &mut self,
        author: &[u8; 32],
        group: &[u8; 32],
        epoch: u32,
        wrapped: &[Wrapped],
    ) {
        let for_them = wrapped.iter().map(|w| w.member).chain([*author]);
        match self.group_keys.get_mut(group) {
            Some(k) if k.epoch == epoch => k.holders.extend(for_them),
            Some(k) if k.epoch > epoch => {}
            _ => {
                self.group_keys.insert(
                    *group,
                    GroupKey {
                        epoch,
                        holders: for_them.collect(),
                    },
                );
            }
        }
    }

    /// What `me`'s node must do for the key groups' keys now.
    pub fn key_work(&self, me: &[u8; 32]) -> Vec<KeyWork> {
        let mut work = Vec::new();
        for group in self.groups.keys().filter(|g| self.is_key_group(g)) {
            let members = self.key_members(group);
            let may_manage = |m: &&[u8; 32]| self.check_group_manage(m, group, 0).is_ok();
            // Sets iterate in key order: the first is the smallest.
            let rotator = members.iter().find(may_manage);
            let rotate = KeyWork::Rotate {
                group: *group,
                members: members.iter().copied().collect(),
            };
            let Some(key) = self.group_keys.get(group) else {
                if rotator == Some(me) {
                    work.push(rotate);
                }
                continue;
            };
            if key.holders.iter().any(|h| !members.contains(h)) {
                if rotator == Some(me) {
                    work.push(rotate);
                }
                continue;
            }
            let missing: Vec<[u8; 32]> = members.difference(&key.holders).copied().collect();
            if missing.is_empty() {
                continue;
            }
            match members
                .iter()
                .filter(may_manage)
                .find(|m| key.holders.contains(*m))
            {
                Some(sharer) if sharer == me => work.push(KeyWork::Share {
                    group: *group,
                    members: missing,
                }),
                Some(_) => {}
                // Nobody who may manage the group holds its key: a new one.
                None if rotator == Some(me) => work.push(rotate),
                None => {}
            }
        }
        work
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::governance::tests::namespace_with;
    use crate::governance::{Body, Role, SignedOp, scoped_id};

    fn key(k: &SigningKey) -> [u8; 32] {
        k.verifying_key().to_bytes()
    }

    fn op(ns: &Namespace, by: &SigningKey, body: Body) -> SignedOp {
        ns.make(by, 5_000, body).unwrap()
    }

    /// Makes the op of `body` by `by` and applies it.
    fn apply(ns: &mut Namespace, by: &SigningKey, body: Body) {
        let op = op(ns, by, body);
        ns.apply(&op).unwrap();
    }

    /// Creates a subgroup of `parent` by `by`; returns its id.
    fn group(
        ns: &mut Namespace,
        by: &SigningKey,
        salt: u8,
        parent: [u8; 32],
        open: bool,
    ) -> [u8; 32] {
        let group = scoped_id(&ns.id, &key(by), &[salt; 32]);
        apply(
            ns,
            by,
            Body::GroupCreated {
                group,
                salt: [salt; 32],
                parent,
                name: None,
                open,
            },
        );
        group
    }

    fn shared(
        ns: &Namespace,
        by: &SigningKey,
        group: [u8; 32],
        epoch: u32,
        to: &[&SigningKey],
    ) -> SignedOp {
        let wrapped = to
            .iter()
            .map(|k| Wrapped {
                member: key(k),
                nonce: [0; 12],
                sealed: vec![],
            })
            .collect();
        op(
            ns,
            by,
            Body::GroupKeyShared {
                group,
                epoch,
                wrapped,
            },
        )
    }

    #[test]
    fn a_restricted_subgroup_seals_with_its_own_key_and_open_ones_beneath_use_it() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member)]);
        let root = ns.id;
        let open = group(&mut ns, &alice, 1, root, true);
        let secret = group(&mut ns, &alice, 2, root, false);
        let inner = group(&mut ns, &alice, 3, secret, true);
        assert_eq!(ns.key_group(&open), root);
        assert_eq!(ns.key_group(&secret), secret);
        assert_eq!(ns.key_group(&inner), secret);
        assert_eq!(ns.key_group(&root), root);
        // Bob is in the namespace, not in the restricted group.
        assert_eq!(ns.key_members(&secret), BTreeSet::from([key(&alice)]));
        apply(
            &mut ns,
            &alice,
            Body::GroupMemberAdded {
                group: inner,
                member: key(&bob),
            },
        );
        // Admitted to the open group beneath, which the secret key seals:
        // he must hold that key, though not in the secret group itself.
        assert!(!ns.in_group(&key(&bob), &secret));
        assert_eq!(
            ns.key_members(&secret),
            BTreeSet::from([key(&alice), key(&bob)])
        );
    }

    #[test]
    fn the_key_is_made_shared_with_newcomers_and_rotated_when_a_holder_goes() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member), (&carol, Role::Member)]);
        let root = ns.id;
        let secret = group(&mut ns, &alice, 2, root, false);
        let rotate = |members: &[&SigningKey]| KeyWork::Rotate {
            group: secret,
            members: members.iter().map(|k| key(k)).collect(),
        };
        // A new restricted group: its manager makes the first key; no one
        // else has anything to do.
        assert_eq!(ns.key_work(&key(&alice)), vec![rotate(&[&alice])]);
        assert!(ns.key_work(&key(&bob)).is_empty());
        ns.apply(&shared(&ns, &alice, secret, 0, &[&alice]))
            .unwrap();
        assert!(ns.key_work(&key(&alice)).is_empty());

        // A newcomer gets the current key from a holder.
        for member in [&bob, &carol] {
            apply(
                &mut ns,
                &alice,
                Body::GroupMemberAdded {
                    group: secret,
                    member: key(member),
                },
            );
        }
        let mut newcomers = vec![key(&bob), key(&carol)];
        newcomers.sort_unstable();
        assert_eq!(
            ns.key_work(&key(&alice)),
            vec![KeyWork::Share {
                group: secret,
                members: newcomers
            }]
        );
        ns.apply(&shared(&ns, &alice, secret, 0, &[&bob, &carol]))
            .unwrap();
        assert!(ns.key_work(&key(&alice)).is_empty());

        // Bob leaves the group: a new epoch for those who stay.
        apply(
            &mut ns,
            &alice,
            Body::GroupMemberRemoved {
                group: secret,
                member: key(&bob),
            },
        );
        let mut stay = vec![&alice, &carol];
        stay.sort_by_key(|k| key(k));
        assert_eq!(ns.key_work(&key(&alice)), vec![rotate(&stay)]);
        ns.apply(&shared(&ns, &alice, secret, 1, &stay)).unwrap();
        assert_eq!(ns.group_keys[&secret].epoch, 1);
        assert!(ns.key_work(&key(&alice)).is_empty());

        // Carol leaves the namespace: rotated again.
        apply(
            &mut ns,
            &alice,
            Body::MemberRemoved {
                member: key(&carol),
                frontier: vec![],
            },
        );
        assert_eq!(ns.key_work(&key(&alice)), vec![rotate(&[&alice])]);

        // Made open, the group uses the namespace key: nothing to keep.
        apply(
            &mut ns,
            &alice,
            Body::GroupVisibilitySet {
                group: secret,
                open: true,
            },
        );
        assert!(ns.key_work(&key(&alice)).is_empty());
        assert_eq!(ns.key_group(&secret), root);
    }

    #[test]
    fn only_a_manager_inside_the_group_shares_its_key_one_epoch_at_a_time() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member), (&carol, Role::Member)]);
        let root = ns.id;
        let open = group(&mut ns, &alice, 1, root, true);
        let secret = group(&mut ns, &alice, 2, root, false);
        apply(
            &mut ns,
            &alice,
            Body::GroupMemberAdded {
                group: secret,
                member: key(&bob),
            },
        );
        let refused = |ns: &mut Namespace, op: SignedOp| {
            assert!(matches!(ns.apply(&op), Err(Refused::Invalid(_))), "{op:?}")
        };
        // An open group has no key of its own.
        let o = shared(&ns, &alice, open, 0, &[&alice]);
        refused(&mut ns, o);
        // A member of the group that may not manage it; a namespace
        // member outside it.
        let o = shared(&ns, &bob, secret, 0, &[&bob]);
        refused(&mut ns, o);
        let o = shared(&ns, &carol, secret, 0, &[&carol]);
        refused(&mut ns, o);
        // The first key is epoch 0; then one at a time.
        let o = shared(&ns, &alice, secret, 1, &[&alice]);
        refused(&mut ns, o);
        ns.apply(&shared(&ns, &alice, secret, 0, &[&alice, &bob]))
            .unwrap();
        let o = shared(&ns, &alice, secret, 2, &[&alice]);
        refused(&mut ns, o);
        ns.apply(&shared(&ns, &alice, secret, 1, &[&alice, &bob]))
            .unwrap();
        // An older epoch shared late changes nothing.
        ns.apply(&shared(&ns, &alice, secret, 0, &[&carol]))
            .unwrap();
        assert_eq!(
            ns.group_keys[&secret],
            GroupKey {
                epoch: 1,
                holders: BTreeSet::from([key(&alice), key(&bob)]),
            }
        );
    }
}
