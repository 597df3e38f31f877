//! Replication between member nodes, without I/O: what replicas say to
//! each other ([`wire`]), the decisions about received deltas ([`session`]),
//! the deltas held for missing parents ([`pending`]), removals' accepted
//! frontiers ([`frontier`]), proving a snapshot from the deltas it carries
//! ([`history`]), answering a peer's catch-up ([`serve`]) and sealing the
//! roots a migration report names for their subgroups ([`sealed_roots`]).
//! It imports neither the runtime nor the store: the node's replication
//! driver carries the steps out over the executor, the store and libp2p,
//! and `tests/sync_sim.rs` over in-memory replicas.
//!
//! A session is a loop between its driver and a peer:
//!
//! ```text
//! let mut session = Session::catch_up(ctx, &pending);
//! let mut step = session.compare();               // or .offer(deltas, ..)
//! loop {
//!     step = match step {
//!         Step::Apply(batch) => session.applied(apply(batch), &view, &authority),
//!         Step::Fetch(request) => session.answered(ask(peer, request), &view, &authority),
//!         Step::Join(snapshot) => session.joined(join(snapshot)),
//!         Step::Done(result) => break result,
//!     }
//! }
//! ```
//!
//! Gossip carries each committed local delta on its context's topic and
//! each governance op on its namespace's topic. Everything else is a
//! request to one peer. Receivers never trust a sender: deltas are verified
//! and their author must be a member that may write at the governance the
//! delta names; requests about a context or namespace are answered only for
//! members.

pub mod frontier;
pub mod history;
pub mod pending;
pub mod sealed_roots;
pub mod serve;
pub mod session;
pub mod wire;

pub use frontier::{Lineage, Past};
pub use pending::Pending;
pub use serve::{ServeView, serve};
pub use session::{Authority, DagView, Ingested, MAX_WALK, Outcome, Session, Step, ViewError};
pub use wire::{
    Gossip, Heartbeat, MigrationReport, Presence, ReportedContext, Request, Response,
    context_topic, key_of, namespace_topic, peer_of,
};
