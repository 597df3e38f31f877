//! Settling a removal on this node. A removal names the member's accepted
//! frontier (the remover's DAG heads), and a node that knows of it refuses
//! the member's deltas beside it. A node that merged one before it heard of
//! the removal, or took a snapshot that may have folded one in, could hold
//! writes the others refused. The task here checks each context a removal
//! named (when the removal is folded, and at start, until settled; see
//! [`heal_plan`]) and, if needed, takes the remover's state, records what
//! it merged beside the frontier refused, and offers its other deltas
//! again over that state. Until a context is settled, this node serves no
//! snapshot of it.

use std::collections::{HashMap, HashSet};

use mero_crdt::{Author, ContextId, DeltaId, SignedDelta};

use crate::blocking::blocking;
use crate::error::Result;
use crate::follow::backoff;
use crate::governance::{Namespace, OpId};
use crate::node::Node;
use crate::replication::{StoreView, Taking};
use crate::sync::frontier::{Heal, heal_plan};
use crate::sync::{DagView, Lineage};

/// Checks per context before the node warns that it is still unsettled
/// (it goes on checking, at the longest back-off, until it is).
const TRIES: u32 = 10;

/// What one check of a context came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Healed {
    /// Nothing to do.
    Clean,
    /// Not yet: the deltas a removal accepted are not all here.
    Undecided,
    /// The remover's state was taken; this many deltas merged here beside
    /// a frontier were dropped, and the others judged again over it.
    Rebased(usize),
}

impl Node {
    /// Starts the heal task: first every context a removal named a frontier
    /// for (a start after a crash mid-heal), then what membership queues.
    pub(crate) fn run_heals(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            let members = &node.inner.members;
            for ns in members.all() {
                let named = ns.removals.values().flat_map(|r| r.frontier.keys());
                members.queue_heal(named.map(|c| ContextId(*c)));
            }
            let mut tries: HashMap<ContextId, u32> = HashMap::new();
            loop {
                for ctx in members.heals().next().await {
                    let id = bs58::encode(ctx.0).into_string();
                    let why = match node.heal(&ctx).await {
                        Ok(done) => {
                            if let Healed::Rebased(n) = done {
                                tracing::info!(context = %id, dropped = n, "took the remover's state after a removal, dropping what it refused, and judged this node's deltas again over it");
                                // One remover at a time: checked again for
                                // another's removal.
                                tries.remove(&ctx);
                                members.heals().push([ctx]);
                                continue;
                            }
                            if done != Healed::Undecided {
                                tries.remove(&ctx);
                                members.healed(&ctx);
                                continue;
                            }
                            "the deltas a removal accepted are not all here yet".to_string()
                        }
                        Err(e) => e.to_string(),
                    };
                    let n = tries.entry(ctx).or_insert(0);
                    *n = n.saturating_add(1);
                    // Never given up: until it is settled, this node may
                    // hold what the removal refuses, and serves no snapshot.
                    if *n == TRIES {
                        tracing::warn!(context = %id, %why, "healing after a removal: still not settled; checking on until it is");
                    }
                    let wait = backoff(*n);
                    tracing::info!(context = %id, %why, retry_in = ?wait, "healing after a removal: retrying");
                    let again = node.clone();
                    node.inner.tasks.spawn(async move {
                        tokio::time::sleep(wait).await;
                        again.inner.members.heals().push([ctx]);
                    });
                }
            }
        });
    }

    /// Settles the removals this node knows in `ctx` (see [`heal_plan`]):
    /// nothing to do, or the remover's state taken, what was merged here
    /// beside a frontier recorded refused, and the deltas held here judged
    /// again over that state.
    pub(crate) async fn heal(&self, ctx: &ContextId) -> Result<Healed> {
        let Some(meta) = self.inner.store.snapshot()?.context_meta(ctx)? else {
            return Ok(Healed::Clean);
        };
        let Some(ns) = meta.group.and_then(|g| self.inner.members.get(&g)) else {
            return Ok(Healed::Clean);
        };
        let removed: HashSet<[u8; 32]> = ns
            .removals
            .iter()
            .filter(|(_, r)| r.frontier.contains_key(&ctx.0))
            .map(|(m, _)| *m)
            .collect();
        if removed.is_empty() {
            return Ok(Healed::Clean);
        }
        let store = self.inner.store.clone();
        let c = *ctx;
        let (theirs, folded, settled) = blocking(move || {
            let snap = store.snapshot()?;
            let mut theirs = Vec::new();
            let mut folded = false;
            for id in snap.delta_ids(&c)? {
                match snap.delta(&c, &id)? {
                    Some(d) if removed.contains(&d.delta.author.0) => theirs.push(d),
                    Some(_) => {}
                    None => folded = true,
                }
            }
            let settled: HashSet<Vec<u8>> =
                snap.locals(SETTLED)?.into_iter().map(|(k, _)| k).collect();
            Ok((theirs, folded, settled))
        })
        .await?;
        // A demoted member's deltas that know of a role given back since
        // are judged by their governance alone: no hold settles them.
        let theirs: Vec<SignedDelta> = theirs
            .into_iter()
            .filter(|d| ns.held_to_frontier(&d.delta.author.0, &d.delta.governance))
            .collect();
        let held: Vec<(DeltaId, Author)> = theirs
            .iter()
            .map(|d| (d.delta.id(), d.delta.author))
            .collect();
        let plan = {
            let view = StoreView::new(&self.inner.exec, *ctx)
                .map_err(|e| crate::error::NodeError::Internal(e.to_string()))?;
            heal_plan(
                &ns,
                &self.public_key(),
                &ctx.0,
                &held,
                folded,
                |op| settled.contains(&settled_key(ctx, op)),
                |id| view.lineage(id).unwrap_or(Lineage::Unknown),
            )
        };
        let pending: Vec<OpId> = ns
            .removals
            .values()
            .filter(|r| r.frontier.contains_key(&ctx.0))
            .map(|r| r.op)
            .filter(|op| !settled.contains(&settled_key(ctx, op)))
            .collect();
        drop(ns);
        let (from, removals, dropping) = match plan {
            Heal::Later => return Ok(Healed::Undecided),
            Heal::Clean => {
                self.settle(ctx, pending).await?;
                return Ok(Healed::Clean);
            }
            Heal::Rebase {
                from,
                removals,
                dropping,
            } => (from, removals, dropping),
        };
        let drop: HashSet<DeltaId> = dropping.iter().copied().collect();
        let dropping: Vec<SignedDelta> = theirs
            .into_iter()
            .filter(|d| drop.contains(&d.delta.id()))
            .collect();
        if !dropping.is_empty() {
            tracing::warn!(
                context = %bs58::encode(ctx.0).into_string(),
                deltas = dropping.len(),
                "merged a removed member's deltas beside its removal's frontier before learning of the removal; taking the remover's state without them"
            );
        }
        let taking = Taking {
            dropping: &dropping,
            from: Some(from),
            rejudge: true,
            ..Taking::default()
        };
        self.resync_to(ctx, true, taking).await?;
        self.settle(ctx, removals).await?;
        Ok(Healed::Rebased(dropping.len()))
    }

    /// Records every removal known for `ctx` settled: its first state,
    /// taken from a member that knows them all and had settled them, holds
    /// nothing they refuse.
    pub(crate) async fn settle_known(&self, ctx: &ContextId, ns: &Namespace) -> Result<()> {
        let known = ns
            .removals
            .values()
            .filter(|r| r.frontier.contains_key(&ctx.0))
            .map(|r| r.op)
            .collect();
        self.settle(ctx, known).await
    }

    /// Records `removals` settled in `ctx`: not healed again, even after
    /// a restart.
    async fn settle(&self, ctx: &ContextId, removals: Vec<OpId>) -> Result<()> {
        if removals.is_empty() {
            return Ok(());
        }
        let store = self.inner.store.clone();
        let ctx = *ctx;
        blocking(move || {
            let mut w = store.write()?;
            for op in &removals {
                w.put_local(SETTLED, &settled_key(&ctx, op), &[])?;
            }
            w.commit()?;
            Ok(())
        })
        .await
    }
}

/// Node-local records of the removals settled per context: context id ‖
/// removal op id.
const SETTLED: &str = "removal-settled";

fn settled_key(ctx: &ContextId, op: &OpId) -> Vec<u8> {
    [ctx.0.as_slice(), op.as_slice()].concat()
}
