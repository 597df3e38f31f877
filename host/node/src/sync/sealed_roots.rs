//! The roots a migration report names, kept to those who may see them.
//!
//! A report is sealed with the namespace's key, but a context of a
//! restricted subgroup is its members' alone: even its root hash tells an
//! outsider when it changes and lets it test a guessed state. So before a
//! report is signed, the roots of such contexts move out of the plain list
//! into one box per subgroup, sealed with that subgroup's key; a reader
//! opens the boxes it holds keys for and puts those roots back. The rest of
//! an entry (context, component, state version) stays plain: governance
//! already names the contexts, and the namespace's migration rollup needs
//! to judge every member's progress.

use borsh::{BorshDeserialize, BorshSerialize};

use super::wire::MigrationReport;
use crate::keys::Sealed;

/// What one sealed box holds: (context, root) pairs.
#[derive(BorshSerialize, BorshDeserialize)]
struct Roots(Vec<([u8; 32], [u8; 32])>);

impl MigrationReport {
    /// Moves the roots of contexts whose key is not the namespace's into
    /// boxes sealed with that key. `key_of(context)` names the key a
    /// context's gossip is sealed with; `seal(key, bytes)` seals with this
    /// node's current one (a key it does not hold: the root is left out).
    pub fn withhold_roots(
        &mut self,
        namespace: &[u8; 32],
        key_of: impl Fn(&[u8; 32]) -> [u8; 32],
        seal: impl Fn(&[u8; 32], &[u8]) -> Option<Sealed>,
    ) {
        let mut boxes: std::collections::BTreeMap<[u8; 32], Roots> = Default::default();
        for c in &mut self.contexts {
            let key = key_of(&c.context);
            if key == *namespace {
                continue;
            }
            if let Some(root) = c.root.take() {
                boxes
                    .entry(key)
                    .or_insert(Roots(Vec::new()))
                    .0
                    .push((c.context, root));
            }
        }
        for (key, roots) in boxes {
            let sealed = borsh::to_vec(&roots).ok().and_then(|b| seal(&key, &b));
            self.sealed_roots.extend(sealed);
        }
    }

    /// Puts back the withheld roots this node may see: `open` opens a box
    /// with the keys held here. Only entries of the report whose root was
    /// withheld are filled; the boxes are dropped either way.
    pub fn reveal_roots(&mut self, open: impl Fn(&Sealed) -> Option<Vec<u8>>) {
        for sealed in std::mem::take(&mut self.sealed_roots) {
            let Some(Roots(roots)) = open(&sealed).and_then(|b| borsh::from_slice(&b).ok()) else {
                continue;
            };
            for (context, root) in roots {
                if let Some(c) = self
                    .contexts
                    .iter_mut()
                    .find(|c| c.context == context && c.root.is_none())
                {
                    c.root = Some(root);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]

    use super::*;
    use crate::keys;
    use crate::sync::ReportedContext;

    const NS: [u8; 32] = [1; 32];
    const SUBGROUP: [u8; 32] = [2; 32];
    const KEY: [u8; 32] = [7; 32];

    fn entry(context: u8, root: u8) -> ReportedContext {
        ReportedContext {
            context: [context; 32],
            blob: [0; 32],
            state_version: 1,
            root: Some([root; 32]),
        }
    }

    /// Context 10 is the namespace's, 20 and 21 a restricted subgroup's.
    fn withheld() -> MigrationReport {
        let mut report = MigrationReport {
            contexts: vec![entry(10, 0xA0), entry(20, 0xB0), entry(21, 0xB1)],
            ..MigrationReport::default()
        };
        report.withhold_roots(
            &NS,
            |c| if c[0] == 10 { NS } else { SUBGROUP },
            |key, bytes| {
                (*key == SUBGROUP)
                    .then(|| keys::seal(key, 0, &KEY, bytes))
                    .flatten()
            },
        );
        report
    }

    #[test]
    fn a_subgroups_roots_travel_sealed_with_its_key_and_only_its_key_opens_them() {
        let sent = withheld();
        // As sent: the namespace's root plain, the subgroup's nowhere in
        // the clear.
        let roots: Vec<_> = sent.contexts.iter().map(|c| c.root).collect();
        assert_eq!(roots, vec![Some([0xA0; 32]), None, None]);
        assert_eq!(sent.sealed_roots.len(), 1);
        let bytes = borsh::to_vec(&sent).unwrap();
        for secret in [[0xB0u8; 32], [0xB1; 32]] {
            assert!(!bytes.windows(32).any(|w| w == secret));
        }

        // A subgroup member reads every root back.
        let mut member = sent.clone();
        member.reveal_roots(|s| keys::open(&KEY, s));
        assert_eq!(
            member.contexts,
            vec![entry(10, 0xA0), entry(20, 0xB0), entry(21, 0xB1)]
        );
        assert!(member.sealed_roots.is_empty());

        // An outsider (another key) reads the namespace's alone.
        let mut outsider = sent.clone();
        outsider.reveal_roots(|s| keys::open(&[8; 32], s));
        let roots: Vec<_> = outsider.contexts.iter().map(|c| c.root).collect();
        assert_eq!(roots, vec![Some([0xA0; 32]), None, None]);
    }

    #[test]
    fn a_box_fills_only_withheld_entries_and_a_missing_key_leaves_the_root_out() {
        // A box naming a plain entry's context does not replace its root.
        let mut report = withheld();
        let lie = Roots(vec![([10; 32], [0xEE; 32])]);
        let sealed = keys::seal(&SUBGROUP, 0, &KEY, &borsh::to_vec(&lie).unwrap()).unwrap();
        report.sealed_roots.push(sealed);
        report.reveal_roots(|s| keys::open(&KEY, s));
        assert_eq!(report.contexts[0].root, Some([0xA0; 32]));

        // A subgroup key this node lacks: no box, and the root left out.
        let mut report = MigrationReport {
            contexts: vec![entry(20, 0xB0)],
            ..MigrationReport::default()
        };
        report.withhold_roots(&NS, |_| SUBGROUP, |_, _| None);
        assert_eq!(report.contexts[0].root, None);
        assert!(report.sealed_roots.is_empty());
    }
}
