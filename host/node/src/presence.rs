//! Ephemeral presence (upstream's `set_ephemeral`): each member's small,
//! signed, transient state per context, kept in memory only, never in the
//! DAG nor the store. This node's own state is republished every third of
//! the TTL while it runs; a member's state not heard of for a TTL expires.
//! Every change is an `Ephemeral` event; subscribers get the current
//! states replayed when they subscribe (with their age).
//!
//! What is received is checked here: the author's signature, its
//! membership of the context's group (at the governance this node holds),
//! the size, the sender's clock within a TTL of ours (a recording stops
//! being replayable as the entry it could revive expires), and a sequence
//! above the last one seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use serde_json::{Value, json};

use crate::authz;
use crate::events::{Event, EventBus, Scope};
use crate::governance::Namespace;
use crate::sync::Presence;

/// Largest state one member may set in a context (upstream's
/// `EPHEMERAL_MAX_BYTES`).
pub const MAX_STATE_BYTES: usize = 16_384;

/// Most authors kept per context: a new one evicts the stalest.
pub(crate) const MAX_AUTHORS: usize = 512;

/// Why a state is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    /// Over [`MAX_STATE_BYTES`].
    #[error("ephemeral slice too large: {size} bytes (max {max})")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Signing failed.
    #[error("signing the state failed: {0}")]
    Signing(String),
}

/// Why a received state was dropped (logged, never answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    Ours,
    TooLarge,
    BadSignature,
    Stale,
    NotAMember,
    Replayed,
}

struct Entry {
    state: Vec<u8>,
    seq: u64,
    seen: Instant,
}

struct Own {
    state: Vec<u8>,
    seq: u64,
    set: Instant,
}

/// Every member's presence in the contexts this node holds.
pub(crate) struct Presences {
    ttl: Duration,
    key: SigningKey,
    events: Arc<EventBus>,
    remote: Mutex<HashMap<ContextId, HashMap<[u8; 32], Entry>>>,
    own: Mutex<HashMap<ContextId, Own>>,
}

fn now_millis() -> u64 {
    mero_crdt::hlc::wall_millis()
}

fn upsert(author: &[u8; 32], state: &[u8], age: Option<Duration>) -> Value {
    let mut v = json!({ "author": bs58::encode(author).into_string(), "state": state });
    if let Some(age) = age {
        v["ageMs"] = json!(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
    }
    v
}

fn removed(author: &[u8; 32]) -> Value {
    json!({ "author": bs58::encode(author).into_string(), "removed": true })
}

impl Presences {
    pub(crate) fn new(key: SigningKey, events: Arc<EventBus>, ttl: Duration) -> Presences {
        Presences {
            ttl: ttl.max(Duration::from_millis(100)),
            key,
            events,
            remote: Mutex::default(),
            own: Mutex::default(),
        }
    }

    /// How often this node's own states are republished.
    pub(crate) fn heartbeat_every(&self) -> Duration {
        self.ttl / 3
    }

    fn me(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn publish(&self, ctx: ContextId, data: Value) {
        self.events
            .publish(Scope::Context(ctx), "Ephemeral", None, data);
    }

    /// Sets (or, with an empty `state`, withdraws) this node's state in
    /// `ctx`; returns what to gossip. The caller checked membership.
    pub(crate) fn set_own(
        &self,
        ctx: ContextId,
        state: Vec<u8>,
    ) -> Result<Presence, PresenceError> {
        if state.len() > MAX_STATE_BYTES {
            return Err(PresenceError::TooLarge {
                size: state.len(),
                max: MAX_STATE_BYTES,
            });
        }
        let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        // Seeded from the clock, so a restarted node never reuses a seq its
        // peers saw before.
        let seq = own
            .get(&ctx)
            .map_or(0, |o| o.seq)
            .saturating_add(1)
            .max(now_millis());
        let signed = Presence::sign(&self.key, ctx.0, seq, now_millis(), state.clone())
            .map_err(PresenceError::Signing)?;
        let me = self.me();
        if state.is_empty() {
            if own.remove(&ctx).is_some() {
                self.publish(ctx, removed(&me));
            }
        } else {
            self.publish(ctx, upsert(&me, &state, None));
            own.insert(
                ctx,
                Own {
                    state,
                    seq,
                    set: Instant::now(),
                },
            );
        }
        Ok(signed)
    }

    /// This node's states, signed anew (higher seq, fresh clock): what to
    /// republish so members keep them.
    pub(crate) fn heartbeat(&self) -> Vec<Presence> {
        let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_millis();
        own.iter_mut()
            .filter_map(|(ctx, o)| {
                o.seq = o.seq.saturating_add(1).max(now);
                Presence::sign(&self.key, ctx.0, o.seq, now, o.state.clone()).ok()
            })
            .collect()
    }

    /// Takes a member's state received from a peer, judged against `ns`,
    /// the governance of the context's namespace here.
    pub(crate) fn receive(&self, p: &Presence, ns: Option<&Namespace>) -> Result<(), Dropped> {
        if p.author == self.me() {
            return Err(Dropped::Ours);
        }
        if p.state.len() > MAX_STATE_BYTES {
            return Err(Dropped::TooLarge);
        }
        let skew = now_millis().abs_diff(p.sent_millis);
        if u128::from(skew) > self.ttl.as_millis() {
            return Err(Dropped::Stale);
        }
        let ctx = ContextId(p.context);
        if ns.is_none_or(|ns| authz::may_read(ns, &p.author, &ctx).is_err()) {
            return Err(Dropped::NotAMember);
        }
        if !p.verify() {
            return Err(Dropped::BadSignature);
        }
        let mut remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        let authors = remote.entry(ctx).or_default();
        if authors.get(&p.author).is_some_and(|e| e.seq >= p.seq) {
            return Err(Dropped::Replayed);
        }
        if p.state.is_empty() {
            if authors.remove(&p.author).is_some() {
                self.publish(ctx, removed(&p.author));
            }
            return Ok(());
        }
        if !authors.contains_key(&p.author) && authors.len() >= MAX_AUTHORS {
            let stalest = authors.iter().min_by_key(|(_, e)| e.seen).map(|(k, _)| *k);
            if let Some(k) = stalest {
                authors.remove(&k);
                self.publish(ctx, removed(&k));
            }
        }
        // A heartbeat of an unchanged state only refreshes it.
        let changed = authors.get(&p.author).is_none_or(|e| e.state != p.state);
        authors.insert(
            p.author,
            Entry {
                state: p.state.clone(),
                seq: p.seq,
                seen: Instant::now(),
            },
        );
        if changed {
            self.publish(ctx, upsert(&p.author, &p.state, None));
        }
        Ok(())
    }

    /// Drops members' states not heard of for a TTL, each an event.
    pub(crate) fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    fn sweep_at(&self, now: Instant) {
        let mut remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        for (ctx, authors) in remote.iter_mut() {
            let expired: Vec<[u8; 32]> = authors
                .iter()
                .filter(|(_, e)| now.saturating_duration_since(e.seen) > self.ttl)
                .map(|(k, _)| *k)
                .collect();
            for k in expired {
                authors.remove(&k);
                self.publish(*ctx, removed(&k));
            }
        }
        remote.retain(|_, authors| !authors.is_empty());
    }

    /// The states of `ctx` now, as events for a new subscriber, each with
    /// its age (which tells them from live ones).
    pub(crate) fn replay(&self, ctx: &ContextId) -> Vec<Event> {
        let mut out = Vec::new();
        if let Some(o) = self.own.lock().unwrap_or_else(|p| p.into_inner()).get(ctx) {
            out.push(upsert(&self.me(), &o.state, Some(o.set.elapsed())));
        }
        if let Some(authors) = self
            .remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(ctx)
        {
            out.extend(
                authors
                    .iter()
                    .map(|(k, e)| upsert(k, &e.state, Some(e.seen.elapsed()))),
            );
        }
        out.into_iter()
            .map(|data| Event::detached(Scope::Context(*ctx), "Ephemeral", data))
            .collect()
    }

    /// Forgets a context this node no longer holds.
    pub(crate) fn forget(&self, ctx: &ContextId) {
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ctx);
        self.remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ctx);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;
    use crate::governance::{AppInfo, Body, caps};

    fn namespace(admin: &SigningKey, member: &SigningKey) -> (Namespace, ContextId) {
        let app = AppInfo {
            id: [1; 32],
            blob: [2; 32],
            size: 3,
            package: "p".into(),
            version: "1".into(),
            source: "s".into(),
        };
        let (mut ns, create) = Namespace::create(
            admin,
            1_000,
            Body::Create {
                nonce: [5; 32],
                name: None,
                app,
                default_capabilities: caps::DEFAULT,
                addrs: vec![],
            },
        )
        .unwrap();
        ns.apply(&create).unwrap();
        let invitation = crate::governance::invitation::SignedInvitation::sign(
            crate::governance::invitation::Invitation {
                inviter_identity: admin.verifying_key().to_bytes(),
                group_id: ns.id,
                expiration_timestamp: u64::MAX / 2,
                secret_salt: [9; 32],
                invited_role: crate::governance::Role::Member,
            },
            admin,
        )
        .unwrap();
        let join = ns
            .make(
                admin,
                2_000,
                Body::MemberJoined {
                    member: member.verifying_key().to_bytes(),
                    invitation,
                    addrs: vec![],
                },
            )
            .unwrap();
        ns.apply(&join).unwrap();
        let ctx = crate::governance::scoped_id(&ns.id, &admin.verifying_key().to_bytes(), &[7; 32]);
        let reg = ns
            .make(
                admin,
                3_000,
                Body::ContextRegistered {
                    context: ctx,
                    name: None,
                    group: ns.id,
                    salt: [7; 32],
                },
            )
            .unwrap();
        ns.apply(&reg).unwrap();
        (ns, ContextId(ctx))
    }

    #[test]
    fn members_states_are_checked_replaced_withdrawn_and_expire() {
        let (me, bob, eve) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
            SigningKey::from_bytes(&[3; 32]),
        );
        let (ns, ctx) = namespace(&me, &bob);
        let bus = Arc::new(EventBus::new(1));
        let mut rx = bus.subscribe();
        let p = Presences::new(me.clone(), bus, Duration::from_secs(10));
        let now = now_millis();
        let from = |k: &SigningKey, seq, state: &[u8]| {
            Presence::sign(k, ctx.0, seq, now, state.to_vec()).unwrap()
        };
        // Too large, of a stranger, forged, from far in the past: dropped.
        let big = Presence::sign(&bob, ctx.0, 1, now, vec![0; MAX_STATE_BYTES + 1]).unwrap();
        assert_eq!(p.receive(&big, Some(&ns)), Err(Dropped::TooLarge));
        assert_eq!(
            p.receive(&from(&eve, 1, b"x"), Some(&ns)),
            Err(Dropped::NotAMember)
        );
        let forged = Presence {
            state: b"y".to_vec(),
            ..from(&bob, 1, b"x")
        };
        assert_eq!(p.receive(&forged, Some(&ns)), Err(Dropped::BadSignature));
        let old = Presence::sign(&bob, ctx.0, 1, now - 60_000, b"x".to_vec()).unwrap();
        assert_eq!(p.receive(&old, Some(&ns)), Err(Dropped::Stale));
        assert!(rx.try_recv().is_err());
        // Taken, then replaced only by a higher seq.
        p.receive(&from(&bob, 5, b"here"), Some(&ns)).unwrap();
        assert_eq!(
            p.receive(&from(&bob, 5, b"again"), Some(&ns)),
            Err(Dropped::Replayed)
        );
        let e = rx.try_recv().unwrap();
        let v: Value = serde_json::from_str(e.text()).unwrap();
        assert_eq!(v["type"], "Ephemeral");
        assert_eq!(v["data"]["state"], json!(b"here"));
        assert!(v["data"].get("ageMs").is_none());
        // Replayed with an age.
        let replay = p.replay(&ctx);
        let r: Value = serde_json::from_str(replay[0].text()).unwrap();
        assert!(r["data"]["ageMs"].is_u64(), "{r}");
        // Withdrawn by an empty state.
        p.receive(&from(&bob, 6, b""), Some(&ns)).unwrap();
        let v: Value = serde_json::from_str(rx.try_recv().unwrap().text()).unwrap();
        assert_eq!(v["data"]["removed"], true);
        assert!(p.replay(&ctx).is_empty());
        // Expired after a TTL without a heartbeat.
        p.receive(&from(&bob, 7, b"back"), Some(&ns)).unwrap();
        let _ = rx.try_recv();
        p.sweep();
        assert!(rx.try_recv().is_err(), "not expired yet");
        p.sweep_at(Instant::now() + Duration::from_secs(11));
        let v: Value = serde_json::from_str(rx.try_recv().unwrap().text()).unwrap();
        assert_eq!(v["data"]["removed"], true);
        // Our own: bounded, echoed, republished with a higher seq.
        assert!(matches!(
            p.set_own(ctx, vec![0; MAX_STATE_BYTES + 1]),
            Err(PresenceError::TooLarge { .. })
        ));
        let first = p.set_own(ctx, b"me".to_vec()).unwrap();
        assert!(first.verify());
        let again = p.heartbeat();
        assert!(again[0].seq > first.seq && again[0].verify());
    }
}
