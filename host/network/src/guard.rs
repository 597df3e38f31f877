//! What the node tells the network about its peers: which are members (only
//! they may send large requests) and which gossip is worth passing on. The
//! network cannot know either (it moves opaque bytes); without a guard it
//! trusts nobody with a large request and passes every gossip message on.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Largest request frame a peer that is not a member may send: enough for
/// a join (an invitation, a signed op), far below what would let a stranger
/// make a member allocate memory it chooses.
pub const STRANGER_REQUEST_BYTES: usize = 64 * 1024;

/// A gossip message's fate, as the node judges it before the network hands
/// it on or forwards it to other peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid: delivered to the node and forwarded.
    Accept,
    /// Neither delivered nor forwarded, and the sender is not blamed.
    Ignore,
    /// Malformed: neither delivered nor forwarded; gossipsub counts it
    /// against the peer that sent it.
    Reject,
}

/// The node's side of the network's admission decisions. Called on the
/// swarm task: answers must be quick and must not block.
pub trait PeerGuard: Send + Sync + 'static {
    /// Whether `peer` is a member of something this node holds: only
    /// members may send request frames over [`STRANGER_REQUEST_BYTES`].
    fn is_member(&self, peer: &PeerId) -> bool;

    /// Judges a gossip message from `source` on `topic` before it is
    /// delivered or forwarded.
    fn check_gossip(&self, source: &PeerId, topic: &str, data: &[u8]) -> GossipVerdict {
        let _ = (source, topic, data);
        GossipVerdict::Accept
    }
}

/// The guard until the node installs one: no peer is a member, every
/// gossip message is passed on.
struct Nobody;

impl PeerGuard for Nobody {
    fn is_member(&self, _: &PeerId) -> bool {
        false
    }
}

/// The current guard, shared by the swarm task, its codecs and the clients
/// (which may install another at any time).
#[derive(Clone)]
pub(crate) struct GuardSlot(Arc<RwLock<Option<Arc<dyn PeerGuard>>>>);

impl GuardSlot {
    pub(crate) fn new(guard: Option<Arc<dyn PeerGuard>>) -> Self {
        GuardSlot(Arc::new(RwLock::new(guard)))
    }

    /// The guard in force.
    pub(crate) fn get(&self) -> Arc<dyn PeerGuard> {
        // A poisoned lock still holds a usable guard: no writer can leave
        // it half-written (it is one pointer).
        let slot = self.0.read().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(guard) => guard.clone(),
            None => Arc::new(Nobody),
        }
    }

    pub(crate) fn set(&self, guard: Arc<dyn PeerGuard>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(guard);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }
}

/// A warning said at most once per period, with how many were held back:
/// what a peer can make this node log must not be proportional to what it
/// sends.
pub(crate) struct RateLimited {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

impl RateLimited {
    pub(crate) fn new(period: Duration) -> Self {
        RateLimited {
            period,
            last: None,
            held: 0,
        }
    }

    /// `Some(held back since the last one)` if this one may be said now.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.period)
        {
            self.held = self.held.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_warning_is_said_once_per_period_and_counts_the_rest() {
        let mut limit = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(limit.allow(), None);
        }
        // The period over: said again, with the count held back.
        limit.period = Duration::ZERO;
        assert_eq!(limit.allow(), Some(1000));
        assert_eq!(limit.allow(), Some(0));
    }

    #[test]
    fn without_a_guard_nobody_is_a_member() {
        struct Everyone;
        impl PeerGuard for Everyone {
            fn is_member(&self, _: &PeerId) -> bool {
                true
            }
        }
        let slot = GuardSlot::new(None);
        let peer = PeerId::random();
        assert!(!slot.get().is_member(&peer) && !slot.is_set());
        slot.set(Arc::new(Everyone));
        assert!(slot.get().is_member(&peer) && slot.is_set());
    }
}
