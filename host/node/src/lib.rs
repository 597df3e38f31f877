//! A node: the engine (store, runtime, executor) plus what users manage on
//! it: installed applications, namespaces (root groups) with their members,
//! contexts and aliases. The HTTP server and the binaries are thin layers
//! over [`Node`]; they need no other crate of the engine (what they use of
//! it is re-exported here).
//!
//! Ids are raw 32-byte arrays here; encodings belong to the wire format.
//! The node may not know HTTP, the wire encodings or the CLI: those are
//! the server's and `meroctl`'s.
//!
//! Rooms, each importing only from those listed before it:
//! - [`keys`]: the namespace keys' cryptography; [`governance`]: the pure
//!   fold of a namespace's signed ops, roles and capabilities
//!   ([`governance::rights`]), invitations; [`events`]: the event bus;
//!   [`sync`]: the replication protocol without I/O (wire, sessions,
//!   serving).
//! - `authz`: every "may X do Y", answered from governance alone.
//! - `error` ([`NodeError`]), `blocking`, `tasks` (owned background tasks),
//!   `peers` (the link to the swarm), `keyring` (the keys this node holds).
//! - [`membership`]: governance state, its persistence and this node's own
//!   ops, invitations, joins, subgroups, members; `withheld`: a member's
//!   deltas held back from merging while this node names its frontier.
//! - `presence`: members' transient state in contexts (upstream's
//!   ephemeral state), in memory only; `heartbeats`: members' signed
//!   migration reports, in memory only.
//! - `blobstore`: blobs users upload, content-addressed files with
//!   node-local records.
//! - `app_blobs`: that store as apps' calls see it (the runtime's `Blobs`
//!   trait), fetching a blob a call reads from the context's members.
//! - `replication`: the driver that carries sync sessions out over the
//!   executor and libp2p, owning its tasks.
//! - [`relayer`]: what a chain says (one trait, one module per chain;
//!   Ethereum over JSON-RPC, the others refuse saying so) and the
//!   attestations this node signs of it.
//! - `upgrades::status`: where upgrades stand here (progress per group,
//!   failed migrations' verdicts), held by the node.
//! - `node`: the [`Node`] type (what it holds, start, networking, shutdown).
//! - The facade, one file per noun of the API, each an `impl Node`:
//!   `applications`, `namespaces`, `contexts`, `blobs`, `ephemeral` (members'
//!   transient state), `follow` (auto-follow:
//!   joining the contexts of this node's groups on its own), `aliases`,
//!   `app_events`
//!   (commits to the bus, event handlers), `attestations` (relayer
//!   queries and signed claims), `upgrades` (moving a group to
//!   another version of its app: planning, migrating, publishing, and
//!   following the upgrades other members order; cascades and their abort;
//!   the namespace's migration status from members' reports), `inspect`
//!   (read-only looks for the operator: disk use, peers, a context's
//!   state page by page). This file only names the
//!   rooms and re-exports.
//!
//! Tests: unit tests sit beside the fold, authz, the sync session and the
//! bus; `tests/sync_sim.rs` runs many replicas over the sync protocol with
//! the real governance as authority.

mod aliases;
mod app_blobs;
mod app_events;
mod applications;
mod attestations;
mod authz;
mod blobs;
mod blobstore;
mod blocking;
mod chains;
mod contexts;
mod ephemeral;
mod error;
pub mod events;
mod follow;
pub mod governance;
mod heal;
mod heartbeats;
mod inspect;
mod keyring;
pub mod keys;
pub mod membership;
mod namespaces;
mod node;
mod peers;
mod presence;
pub mod relayer;
mod replication;
pub mod sync;
mod tasks;
mod upgrades;
mod withheld;

pub use aliases::MAX_ALIAS_LEN;
pub use applications::{Application, InstallSource, MAX_COMPONENT_BYTES};
pub use authz::Denied;
pub use blobstore::{BlobMeta, MAX_BLOB_BYTES};
pub use chains::{CHALLENGE_BUCKET_SECS, ChainSignature};
pub use contexts::{ContextInfo, args_text};
pub use error::{NodeError, Result};
pub use governance::invitation::{Condition, SignedInvitation};
pub use governance::{Role, caps};
pub use inspect::{MAX_STATE_PAGE, NodeStats, StateEntry, StateField, StatePage, StateValue};
pub use keyring::{Epochs, stored_keys};
pub use membership::{GroupInfo, Membership, Subgroup};
pub use mero_chains;
pub use mero_crdt::ContextId;
pub use mero_executor::CallOutcome;
pub use mero_runtime::{CallError, Intent};
pub use namespaces::NamespaceInfo;
pub use node::{Node, NodeOptions, Readiness};
pub use presence::{MAX_STATE_BYTES as MAX_EPHEMERAL_BYTES, PresenceError};
pub use replication::{StoreView, SyncStatus, apply_through};
pub use upgrades::{
    AbortOutcome, CascadeEntry, ContextUpgrade, MemberMigration, MemberState, MigrationStatus,
    Phase, Rollup, UpgradeStatus,
};
