//! Holding back a member's deltas while this node names its frontier.
//!
//! A removal, a demotion to read-only and a frontier named for them carry
//! the DAG heads this node holds (the member's accepted frontier): every
//! node then refuses the member's deltas outside their past. A delta of the
//! member merged here after the heads were read and before the op is
//! folded would be outside that past, refused everywhere else and kept
//! here. So the member's deltas are withheld from merging meanwhile (they
//! are judged again once the op is folded), and the heads are read only
//! once every merge begun before has committed.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::sync::{RwLock, RwLockReadGuard};

/// The members whose frontier this node is naming now, and the merges
/// running.
#[derive(Debug, Default)]
pub(crate) struct Withheld {
    /// How many namings of each member run now.
    authors: Mutex<HashMap<[u8; 32], usize>>,
    /// Held shared by each merge, for its whole commit; taken alone for an
    /// instant once a member is withheld, to wait for the merges before.
    merging: RwLock<()>,
}

/// A member withheld until this is dropped.
#[derive(Debug)]
pub(crate) struct Holding<'a> {
    withheld: &'a Withheld,
    member: [u8; 32],
}

impl Withheld {
    /// Withholds `member`'s deltas from merging until the guard is
    /// dropped; returns once every merge begun before has committed.
    pub(crate) async fn withhold(&self, member: [u8; 32]) -> Holding<'_> {
        *self
            .authors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(member)
            .or_default() += 1;
        // Made before waiting: dropped mid-wait, it still lets go.
        let holding = Holding {
            withheld: self,
            member,
        };
        drop(self.merging.write().await);
        holding
    }

    /// Held while merging: the guard, and the members whose deltas are
    /// not to be merged now.
    pub(crate) async fn merging(&self) -> (RwLockReadGuard<'_, ()>, HashSet<[u8; 32]>) {
        let guard = self.merging.read().await;
        let authors = self
            .authors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        (guard, authors)
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        let mut authors = self
            .withheld
            .authors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = authors.get_mut(&self.member) {
            *n -= 1;
            if *n == 0 {
                authors.remove(&self.member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_member_is_withheld_only_once_the_merges_before_committed() {
        let w = Arc::new(Withheld::default());
        let (merge, authors) = w.merging().await;
        assert!(authors.is_empty());
        let (held_tx, mut held_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let naming = {
            let w = w.clone();
            tokio::spawn(async move {
                let _holding = w.withhold([1; 32]).await;
                // Held while the frontier is read and the op folded.
                held_tx.send(()).unwrap();
                let _ = release_rx.await;
            })
        };
        // The merge begun before still runs: the naming cannot go on.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(held_rx.try_recv().is_err());
        drop(merge);
        held_rx.await.unwrap();
        // A merge begun now sees the member withheld.
        let (merge, authors) = w.merging().await;
        assert!(authors.contains(&[1; 32]));
        drop(merge);
        release_tx.send(()).unwrap();
        naming.await.unwrap();
        let (_merge, authors) = w.merging().await;
        assert!(authors.is_empty(), "let go once the naming is done");
    }

    #[tokio::test]
    async fn a_naming_dropped_while_it_waits_lets_go() {
        let w = Withheld::default();
        let (merge, _) = w.merging().await;
        let waiting = tokio::time::timeout(Duration::from_millis(20), w.withhold([2; 32])).await;
        assert!(waiting.is_err(), "it waits for the merge before");
        drop(merge);
        let (_merge, authors) = w.merging().await;
        assert!(authors.is_empty());
    }
}
