//! Answering a peer's catch-up requests about one context, over a
//! read-only view of this replica's DAG: its heads, its deltas with their
//! ancestors (breadth first, back to what the asker has), its snapshot.
//! Whether the peer may ask at all is decided before (see `authz`).

use std::collections::{HashSet, VecDeque};

use mero_crdt::{DeltaId, SignedDelta, StateSnapshot};

use super::session::{DagView, ViewError};
use super::wire::{Request, Response};

/// Most bytes of deltas one answer carries (one delta more at most): the
/// answer is held encoded and decoded at once on both sides, so this is
/// what a catch-up of large deltas costs each in memory, several times
/// over; small deltas meet [`MAX_FETCHED`] first.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Most deltas one answer carries.
pub const MAX_FETCHED: usize = 2_000;

/// What serving needs beyond a [`DagView`]: delta bodies and the snapshot.
pub trait ServeView: DagView {
    /// A stored delta with its body (`None` if unknown or only folded).
    fn delta(&self, id: &DeltaId) -> Result<Option<SignedDelta>, ViewError>;
    /// The whole state, as a joiner takes it.
    fn snapshot(&self) -> Result<StateSnapshot, ViewError>;
}

/// Answers a context request from a peer allowed to ask.
pub fn serve(req: &Request, view: &impl ServeView) -> Response {
    let run = || -> Result<Response, ViewError> {
        match req {
            Request::Heads { .. } => Ok(Response::Heads {
                heads: view.heads()?,
                root: view.root()?,
            }),
            Request::Deltas { ids, have, .. } => deltas(view, ids, have),
            Request::Bodies { ids, .. } => bodies(view, ids),
            Request::Snapshot { .. } => Ok(Response::Snapshot(view.snapshot()?)),
            _ => Ok(Response::Refused("not a context request".into())),
        }
    };
    run().unwrap_or_else(|e| Response::Refused(e.to_string()))
}

/// `ids` alone, in their order, as many as fit in one answer; ids known
/// only folded are named apart, unknown ones left out.
fn bodies(view: &impl ServeView, ids: &[DeltaId]) -> Result<Response, ViewError> {
    let mut found = Vec::new();
    let mut folded = Vec::new();
    let mut bytes = 0usize;
    for id in ids {
        if found.len() >= MAX_FETCHED || bytes >= MAX_ANSWER_BYTES {
            break;
        }
        match view.delta(id)? {
            Some(d) => {
                let b = d.to_bytes();
                bytes += b.len();
                found.push(b);
            }
            None if view.has(id)? => folded.push(*id),
            None => {}
        }
    }
    Ok(Response::Deltas {
        deltas: found,
        folded,
    })
}

/// `ids` and their ancestors back to `have`, parents first, as many as
/// fit in one answer; ids known only folded into a joined snapshot are
/// named apart (the asker needs a snapshot for those).
fn deltas(view: &impl ServeView, ids: &[DeltaId], have: &[DeltaId]) -> Result<Response, ViewError> {
    let stop: HashSet<DeltaId> = have.iter().copied().collect();
    let mut seen: HashSet<DeltaId> = HashSet::new();
    let mut frontier: VecDeque<DeltaId> = ids.iter().copied().collect();
    let mut found = Vec::new();
    let mut folded = Vec::new();
    let mut bytes = 0usize;
    while let Some(id) = frontier.pop_front() {
        if found.len() >= MAX_FETCHED || bytes >= MAX_ANSWER_BYTES {
            break;
        }
        if stop.contains(&id) || !seen.insert(id) {
            continue;
        }
        let Some(d) = view.delta(&id)? else {
            // A stub has no body.
            if view.has(&id)? {
                folded.push(id);
            }
            continue;
        };
        frontier.extend(d.delta.parents.iter().copied());
        let b = d.to_bytes();
        bytes += b.len();
        found.push(b);
    }
    found.reverse();
    Ok(Response::Deltas {
        deltas: found,
        folded,
    })
}
