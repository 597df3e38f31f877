//! Members' migration reports (heartbeats), kept in memory: the last signed
//! report of each member per namespace, and this node's own sequence.
//!
//! What is received is checked here: the author's signature (over every
//! counter), its membership of the namespace at the governance this node
//! holds, the sender's clock within a minute of ours, the size, and a sequence
//! above the last one seen. Plain bookkeeping, below the node, which builds
//! the `migration-status` rollup from it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use crate::governance::Namespace;
use crate::keys::Sealed;
use crate::sync::{Heartbeat, MigrationReport};

/// Most contexts one report may list.
const MAX_CONTEXTS: usize = 10_000;

/// How far a sender's clock may be from ours (upstream's 60 s): a
/// recording stops being replayable once it is older than this.
const MAX_DRIFT: Duration = Duration::from_secs(60);

/// Why a received report was dropped (logged, never answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    Ours,
    TooLarge,
    BadSignature,
    Stale,
    NotAMember,
    Replayed,
}

struct Received {
    seq: u64,
    sent_millis: u64,
    /// The report as this node reads it: the roots it may see put back.
    report: MigrationReport,
    at: Instant,
}

/// A report's key: (namespace, author).
type Reporter = ([u8; 32], [u8; 32]);

/// The last report of every member, per namespace.
pub(crate) struct Heartbeats {
    key: SigningKey,
    every: Duration,
    seen: Mutex<HashMap<Reporter, Received>>,
    seq: Mutex<u64>,
    /// Woken when a member's report changed.
    pub(crate) changed: tokio::sync::Notify,
}

impl Heartbeats {
    pub(crate) fn new(key: SigningKey, every: Duration) -> Heartbeats {
        Heartbeats {
            key,
            every: every.max(Duration::from_millis(100)),
            seen: Mutex::default(),
            seq: Mutex::new(0),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Reporter, Received>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How often a member reports when nothing changes.
    pub(crate) fn every(&self) -> Duration {
        self.every
    }

    /// How long a report counts: two periods.
    pub(crate) fn ttl(&self) -> Duration {
        self.every * 2
    }

    /// This node's report on `namespace`, signed.
    pub(crate) fn sign(&self, namespace: [u8; 32], report: MigrationReport) -> Option<Heartbeat> {
        let now = mero_crdt::hlc::wall_millis();
        let seq = {
            let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
            // Seeded from the clock, so a restarted node never reuses a seq
            // its peers saw before.
            *seq = seq.saturating_add(1).max(now);
            *seq
        };
        Heartbeat::sign(&self.key, namespace, seq, now, report)
            .map_err(|e| tracing::warn!(error = %e, "a heartbeat could not be signed"))
            .ok()
    }

    /// Takes a member's report received from a peer, judged against `ns`,
    /// the namespace's governance here; `open` opens the roots sealed for
    /// subgroups with the keys this node holds.
    pub(crate) fn receive(
        &self,
        h: &Heartbeat,
        ns: Option<&Namespace>,
        open: impl Fn(&Sealed) -> Option<Vec<u8>>,
    ) -> Result<(), Dropped> {
        if h.author == self.key.verifying_key().to_bytes() {
            return Err(Dropped::Ours);
        }
        if h.report.contexts.len() > MAX_CONTEXTS
            || h.report.sealed_roots.len() > MAX_CONTEXTS
            || h.report
                .migration_failed
                .as_ref()
                .is_some_and(|s| s.len() > 64)
        {
            return Err(Dropped::TooLarge);
        }
        let skew = mero_crdt::hlc::wall_millis().abs_diff(h.sent_millis);
        if u128::from(skew) > MAX_DRIFT.max(self.ttl()).as_millis() {
            return Err(Dropped::Stale);
        }
        if ns.is_none_or(|ns| !ns.is_member(&h.author)) {
            return Err(Dropped::NotAMember);
        }
        if !h.verify() {
            return Err(Dropped::BadSignature);
        }
        let key = (h.namespace, h.author);
        if self.lock().get(&key).is_some_and(|r| r.seq >= h.seq) {
            return Err(Dropped::Replayed);
        }
        // Opened outside the lock; compared opened, for the boxes' nonces
        // differ every time.
        let mut report = h.report.clone();
        report.reveal_roots(open);
        let mut seen = self.lock();
        if seen.get(&key).is_some_and(|r| r.seq >= h.seq) {
            return Err(Dropped::Replayed);
        }
        let changed = seen.get(&key).is_none_or(|r| r.report != report);
        seen.insert(
            key,
            Received {
                seq: h.seq,
                sent_millis: h.sent_millis,
                report,
                at: Instant::now(),
            },
        );
        drop(seen);
        if changed {
            self.changed.notify_one();
        }
        Ok(())
    }

    /// The reports on `namespace` heard of within the TTL, by author, with
    /// their senders' clocks (Unix milliseconds).
    pub(crate) fn fresh(&self, namespace: &[u8; 32]) -> HashMap<[u8; 32], (MigrationReport, u64)> {
        let ttl = self.ttl();
        self.lock()
            .iter()
            .filter(|((ns, _), r)| ns == namespace && r.at.elapsed() <= ttl)
            .map(|((_, author), r)| (*author, (r.report.clone(), r.sent_millis)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn namespace_with(members: &[[u8; 32]]) -> Namespace {
        let mut ns = Namespace::new([9; 32]);
        for m in members {
            ns.members.insert(
                *m,
                crate::governance::Member {
                    role: crate::governance::Role::Member,
                    capabilities: None,
                    addrs: Vec::new(),
                    joined_millis: 0,
                },
            );
        }
        ns
    }

    #[test]
    fn a_members_signed_report_is_kept_and_forgeries_replays_and_strangers_are_not() {
        let me = Heartbeats::new(key(1), Duration::from_secs(30));
        let peer = Heartbeats::new(key(2), Duration::from_secs(30));
        let author = key(2).verifying_key().to_bytes();
        let ns = namespace_with(&[author]);
        let report = MigrationReport {
            schema_version: 2,
            ..MigrationReport::default()
        };
        let beat = peer.sign([9; 32], report.clone()).unwrap();
        assert_eq!(me.receive(&beat, Some(&ns), |_| None), Ok(()));
        assert_eq!(me.fresh(&[9; 32])[&author].0, report);
        // The same again: replayed.
        assert_eq!(
            me.receive(&beat, Some(&ns), |_| None),
            Err(Dropped::Replayed)
        );
        // A counter changed after signing: forged.
        let mut forged = peer.sign([9; 32], report.clone()).unwrap();
        forged.report.residue_auto = 0;
        forged.report.schema_version = 3;
        assert_eq!(
            me.receive(&forged, Some(&ns), |_| None),
            Err(Dropped::BadSignature)
        );
        // Not a member of the namespace.
        let stranger = Heartbeats::new(key(3), Duration::from_secs(30));
        let theirs = stranger.sign([9; 32], report.clone()).unwrap();
        assert_eq!(
            me.receive(&theirs, Some(&ns), |_| None),
            Err(Dropped::NotAMember)
        );
        // From long ago.
        let mut old = peer.sign([9; 32], report).unwrap();
        old.sent_millis -= 120_000;
        assert_eq!(me.receive(&old, Some(&ns), |_| None), Err(Dropped::Stale));
    }
}
