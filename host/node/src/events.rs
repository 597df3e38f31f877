//! The event bus: what changed in the contexts and namespaces this node
//! holds, as it happens here, for WebSocket and SSE subscribers. Who
//! publishes what is decided elsewhere (commits in `app_events`, governance
//! in `membership`, sync status in `replication`); this module only
//! numbers, keeps and hands out events.
//!
//! Every event gets a sequence number and goes to a broadcast channel and to
//! a bounded log (the last [`LOG_CAPACITY`] events) from which an SSE client
//! that reconnects resumes. Events come from commits (a delta authored here
//! or merged from a peer is committed once, so its events are published once
//! per node, never again after a restart), from sync status changes and from
//! governance ops as they are applied.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mero_crdt::ContextId;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How many events the node keeps for subscribers that resume...
pub const LOG_CAPACITY: usize = 10_000;

/// ...and at most this many bytes of them.
pub const LOG_MAX_BYTES: usize = 16 << 20;

/// How far a live subscriber may fall behind before it is dropped.
pub const CHANNEL_CAPACITY: usize = 1_024;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A context.
    Context(ContextId),
    /// A namespace or subgroup.
    Group([u8; 32]),
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its place in this node's sequence (from 1, per run).
    pub seq: u64,
    /// What it is about.
    pub scope: Scope,
    /// Its type: `StateMutation`, `ExecutionEvent`, `SyncStatus`,
    /// `AppVersionChanged`, `MemberJoined`, `MemberRemoved`, ...
    pub kind: &'static str,
    /// For `ExecutionEvent`: the kind the app gave it.
    pub app_kind: Option<String>,
    data: Data,
    /// What subscribers receive: made on first use, once for all of them.
    text: OnceLock<String>,
}

/// An event's data, kept as it came: most commits happen with nobody
/// listening, and rendering their JSON (base58 ids and all) would be most
/// of what publishing them costs.
#[derive(Debug, Clone)]
pub enum Data {
    /// Ready JSON.
    Json(Value),
    /// A committed delta's `StateMutation`: its new root, id and events.
    Mutation {
        /// The context's root hash after it.
        root: mero_crdt::Hash,
        /// The delta's id.
        id: mero_crdt::DeltaId,
        /// Whether this node authored it.
        local: bool,
        /// The app events it carries.
        events: Vec<mero_crdt::Event>,
    },
    /// An app event of a committed delta.
    App(mero_crdt::Event),
}

impl Data {
    fn json(&self) -> Value {
        match self {
            Data::Json(v) => v.clone(),
            Data::Mutation {
                root,
                id,
                local,
                events,
            } => json!({
                "newRoot": bs58::encode(root).into_string(),
                "deltaId": bs58::encode(id.0).into_string(),
                "local": local,
                "events": events.iter().map(|e| json!({
                    "kind": e.kind,
                    "data": e.data,
                    "handler": null,
                })).collect::<Vec<_>>(),
            }),
            Data::App(e) => app_event_json(&e.kind, &e.data),
        }
    }
}

impl Event {
    /// An event for one subscriber only, outside the bus's sequence (seq
    /// 0): current state replayed when it subscribes.
    pub fn detached(scope: Scope, kind: &'static str, data: Value) -> Event {
        Event {
            seq: 0,
            scope,
            kind,
            app_kind: None,
            data: Data::Json(data),
            text: OnceLock::new(),
        }
    }

    /// What subscribers receive: `{"contextId"|"groupId", "type", "data"}`.
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| {
            let data = self.data.json();
            match self.scope {
                Scope::Context(c) => json!({
                    "contextId": bs58::encode(c.0).into_string(),
                    "type": self.kind,
                    "data": data,
                }),
                Scope::Group(g) => json!({
                    "groupId": hex::encode(g),
                    "type": self.kind,
                    "data": data,
                }),
            }
            .to_string()
        })
    }

    /// What it counts for against the log's bound. Ready JSON (rare) is
    /// rendered and weighed exactly; the rest is estimated without making
    /// the text (an event's data bytes print as numbers, up to four
    /// characters each).
    fn weight(&self) -> usize {
        let event = |e: &mero_crdt::Event| 4 * e.data.len() + e.kind.len() + 64;
        match &self.data {
            Data::Json(_) => self.text().len(),
            Data::Mutation { events, .. } => 256 + events.iter().map(event).sum::<usize>(),
            Data::App(e) => 64 + event(e),
        }
    }
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Contexts.
    pub contexts: HashSet<ContextId>,
    /// Namespaces and subgroups.
    pub groups: HashSet<[u8; 32]>,
    /// Types (or app event kinds); empty means every type.
    pub types: HashSet<String>,
}

impl Filter {
    /// Whether `e` is wanted.
    pub fn matches(&self, e: &Event) -> bool {
        let scoped = match e.scope {
            Scope::Context(c) => self.contexts.contains(&c),
            Scope::Group(g) => self.groups.contains(&g),
        };
        scoped
            && (self.types.is_empty()
                || self.types.contains(e.kind)
                || e.app_kind.as_ref().is_some_and(|k| self.types.contains(k)))
    }
}

/// Events from before the oldest one still kept were asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The oldest sequence number still kept.
    pub oldest: u64,
}

/// The kept events a resuming subscriber missed, or the gap if some are
/// gone.
pub type Missed = Result<Vec<Arc<Event>>, Gap>;

/// The node's event channel and log.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    log: Mutex<Log>,
    boot: u64,
    /// Commits whose events were lost because forwarding fell behind.
    missed_commits: AtomicU64,
}

#[derive(Debug, Default)]
struct Log {
    last: u64,
    /// Each with the weight counted in `bytes`.
    kept: VecDeque<(Arc<Event>, usize)>,
    bytes: usize,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(mero_crdt::hlc::wall_millis())
    }
}

impl EventBus {
    /// An empty bus; `boot` tells this run's event ids from another's.
    pub fn new(boot: u64) -> EventBus {
        EventBus {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            log: Mutex::default(),
            boot,
            missed_commits: AtomicU64::new(0),
        }
    }

    /// This run's id: event ids are `{boot}-{seq}`.
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// Publishes an event.
    pub fn publish(&self, scope: Scope, kind: &'static str, app_kind: Option<String>, data: Value) {
        self.publish_data(scope, kind, app_kind, Data::Json(data));
    }

    /// Publishes an event whose JSON is made only if someone reads it.
    pub fn publish_data(
        &self,
        scope: Scope,
        kind: &'static str,
        app_kind: Option<String>,
        data: Data,
    ) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.last += 1;
        let event = Arc::new(Event {
            seq: log.last,
            scope,
            kind,
            app_kind,
            data,
            text: OnceLock::new(),
        });
        let weight = event.weight();
        log.bytes += weight;
        log.kept.push_back((event.clone(), weight));
        while log.kept.len() > LOG_CAPACITY || (log.bytes > LOG_MAX_BYTES && log.kept.len() > 1) {
            if let Some((_, w)) = log.kept.pop_front() {
                log.bytes -= w;
            }
        }
        // Sent under the lock so subscribers see sequence order.
        let _ = self.tx.send(event);
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Live events, and the kept ones after `seq`: subscribe first, then
    /// replay, and skip live ones the replay already gave.
    pub fn resume(&self, seq: u64) -> (broadcast::Receiver<Arc<Event>>, Missed) {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let oldest = log.kept.front().map_or(log.last + 1, |(e, _)| e.seq);
        let missed = if seq.saturating_add(1) < oldest && seq < log.last {
            Err(Gap { oldest })
        } else {
            Ok(log
                .kept
                .iter()
                .filter(|(e, _)| e.seq > seq)
                .map(|(e, _)| e.clone())
                .collect())
        };
        (rx, missed)
    }

    /// Forwarding commits' events fell `missed` commits behind: counts them
    /// and tells the subscribers of each of `contexts` with a `Gap` event
    /// (`{"reason", "missedCommits", "totalMissedCommits"}`), since any of them may
    /// have lost events.
    pub fn forwarding_gap(&self, missed: u64, contexts: &[ContextId]) {
        let total = self.missed_commits.fetch_add(missed, Ordering::Relaxed) + missed;
        for ctx in contexts {
            self.publish(
                Scope::Context(*ctx),
                "Gap",
                None,
                json!({
                    "reason": "the node's event forwarding fell behind its commits",
                    "missedCommits": missed,
                    "totalMissedCommits": total,
                }),
            );
        }
    }

    /// Commits whose events forwarding lost (falling behind) since start.
    pub fn missed_commits(&self) -> u64 {
        self.missed_commits.load(Ordering::Relaxed)
    }

    /// The newest sequence number given out.
    pub fn last(&self) -> u64 {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).last
    }
}

/// The JSON of an app event: its kind and its data (JSON if it parses, else
/// the bytes as a string).
pub fn app_event_json(kind: &str, data: &[u8]) -> Value {
    let data = serde_json::from_slice::<Value>(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()));
    json!({ "kind": kind, "data": data })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn resume_replays_what_was_missed_and_reports_a_gap() {
        let bus = EventBus::new(1);
        let ctx = ContextId([1; 32]);
        for i in 0..(LOG_CAPACITY + 5) {
            bus.publish(Scope::Context(ctx), "StateMutation", None, json!(i));
        }
        let (_, missed) = bus.resume(bus.last() - 3);
        let seqs: Vec<u64> = missed.unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs.len(), 3);
        assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]));
        // The first five fell out of the log.
        assert_eq!(bus.resume(2).1.unwrap_err(), Gap { oldest: 6 });
        assert!(bus.resume(5).1.is_ok());
        assert!(bus.resume(bus.last()).1.unwrap().is_empty());
    }

    #[test]
    fn a_commit_renders_as_upstream_on_first_read() {
        let bus = EventBus::new(1);
        let ctx = ContextId([1; 32]);
        let e = mero_crdt::Event {
            kind: "ItemAdded".into(),
            data: br#"{"n":1}"#.to_vec(),
        };
        bus.publish_data(
            Scope::Context(ctx),
            "StateMutation",
            None,
            Data::Mutation {
                root: [2; 32],
                id: mero_crdt::DeltaId([3; 32]),
                local: true,
                events: vec![e.clone()],
            },
        );
        bus.publish_data(
            Scope::Context(ctx),
            "ExecutionEvent",
            Some(e.kind.clone()),
            Data::App(e),
        );
        let (_, missed) = bus.resume(0);
        let kept = missed.unwrap();
        let m: Value = serde_json::from_str(kept[0].text()).unwrap();
        assert_eq!(m["contextId"], bs58::encode([1; 32]).into_string());
        assert_eq!(m["type"], "StateMutation");
        assert_eq!(m["data"]["newRoot"], bs58::encode([2; 32]).into_string());
        assert_eq!(m["data"]["deltaId"], bs58::encode([3; 32]).into_string());
        assert_eq!(m["data"]["local"], true);
        assert_eq!(m["data"]["events"][0]["kind"], "ItemAdded");
        let a: Value = serde_json::from_str(kept[1].text()).unwrap();
        assert_eq!(a["data"], json!({"kind": "ItemAdded", "data": {"n": 1}}));
        // Made once: the same text for every reader.
        assert!(std::ptr::eq(kept[0].text(), kept[0].text()));
    }

    #[test]
    fn the_log_is_bounded_by_the_weight_of_what_it_keeps() {
        let bus = EventBus::new(1);
        let big = mero_crdt::Event {
            kind: "Big".into(),
            data: vec![b'x'; 1 << 20],
        };
        for _ in 0..10 {
            bus.publish_data(
                Scope::Context(ContextId([1; 32])),
                "ExecutionEvent",
                Some("Big".into()),
                Data::App(big.clone()),
            );
        }
        // Just over four MiB of weight each: three fit in sixteen.
        let (_, missed) = bus.resume(0);
        assert_eq!(missed.unwrap_err(), Gap { oldest: 8 });
    }

    #[test]
    fn filters_take_scope_then_type_or_app_kind() {
        let bus = EventBus::new(1);
        let (a, b) = (ContextId([1; 32]), ContextId([2; 32]));
        let mut rx = bus.subscribe();
        bus.publish(Scope::Context(a), "StateMutation", None, json!({}));
        bus.publish(
            Scope::Context(a),
            "ExecutionEvent",
            Some("ItemAdded".into()),
            json!({}),
        );
        bus.publish(Scope::Context(b), "StateMutation", None, json!({}));
        bus.publish(Scope::Group([3; 32]), "MemberJoined", None, json!({}));
        let all: Vec<_> = (0..4).map(|_| rx.try_recv().unwrap()).collect();
        let f = Filter {
            contexts: [a].into(),
            groups: [[3; 32]].into(),
            types: HashSet::new(),
        };
        assert_eq!(all.iter().filter(|e| f.matches(e)).count(), 3);
        let f = Filter {
            types: ["ItemAdded".to_string(), "MemberJoined".to_string()].into(),
            ..f
        };
        let kinds: Vec<_> = all
            .iter()
            .filter(|e| f.matches(e))
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["ExecutionEvent", "MemberJoined"]);
        assert_eq!(
            serde_json::from_str::<Value>(all[0].text()).unwrap()["contextId"],
            bs58::encode([1; 32]).into_string()
        );
    }
}
