//! Proving a snapshot whose state crossed upgrades: the migrations its
//! deltas went through are run again here, on the state each upgrade's cut
//! gives, and each result is compared with the root the upgrade's signed
//! governance op names (see [`history::Replay`]).

use std::sync::Arc;

use mero_crdt::{Author, ContextId, DeltaId};
use mero_network::PeerId;
use mero_runtime::App;

use super::Replicator;
use crate::governance::UpgradeRecord;
use crate::sync::history::{self, Crossing, Proof};
use crate::sync::wire::{Request, Response};
use crate::upgrades::{self, plan::Plan};

impl Replicator {
    /// The upgrades of `ctx`'s group that migrated its state, in fold
    /// order, each as its op names it for `ctx`, beside the op's record.
    pub(super) fn crossings(&self, ctx: &ContextId) -> Vec<(Crossing, UpgradeRecord)> {
        let Some(ns) = self.namespace_of(ctx) else {
            return Vec::new();
        };
        ns.upgrade_ladders
            .values()
            .flatten()
            .filter(|r| r.plan.to_state_version > r.plan.from_state_version)
            .filter_map(|r| {
                let named = r.plan.contexts.iter().find(|c| c.context == ctx.0)?;
                let crossing = Crossing {
                    from: r.plan.from_state_version,
                    to: r.plan.to_state_version,
                    cut: named.heads.iter().map(|h| DeltaId(*h)).collect(),
                    root: named.root,
                };
                Some((crossing, r.clone()))
            })
            .collect()
    }

    /// Runs `replay`'s migrations as `upgrades` say, with their components
    /// from this node or, failing that, from `peer`.
    pub(super) async fn replay(
        &self,
        ctx: ContextId,
        peer: PeerId,
        mut replay: history::Replay,
        upgrades: &[(Crossing, UpgradeRecord)],
    ) -> Proof {
        loop {
            let (entries, crossing) = match replay.next_migration() {
                Ok(Some(next)) => next,
                Ok(None) => return replay.finish(),
                Err(why) => return Proof::Forged(why),
            };
            let Some((_, record)) = upgrades.iter().find(|(c, _)| *c == crossing) else {
                return Proof::NotYet("an upgrade it crossed is not known here".into());
            };
            let plan = &record.plan;
            // A component no member holds any more (its migration cannot be
            // run anywhere): the state is taken as one whose migration
            // could not be checked, on the checks that need none.
            let app = match self.migration_app(&plan.app.blob, peer).await {
                Ok(app) => app,
                Err(why) => {
                    return Proof::Unproven(format!(
                        "the migration to {} cannot be run again here: {why}",
                        plan.app.version
                    ));
                }
            };
            let upgrade = upgrades::upgrade_of(
                plan,
                &app,
                &self.parts.migrations,
                Plan::Migrate {
                    from: plan.from_state_version,
                },
                Author(record.initiated_by),
            );
            let started = std::time::Instant::now();
            match self
                .parts
                .exec
                .replay_migration(ctx, &entries, &upgrade)
                .await
            {
                Ok(writes) => {
                    if let Err(why) = replay.migrated(&writes) {
                        return Proof::Forged(why);
                    }
                    tracing::info!(
                        context = %bs58::encode(ctx.0).into_string(),
                        from = plan.from_state_version,
                        to = plan.to_state_version,
                        entries = entries.len(),
                        elapsed_ms = started.elapsed().as_millis(),
                        "ran an upgrade's migration again on the snapshot's deltas: the root its signed op names"
                    );
                }
                // It ran on the admin's node and on every member's: failing
                // here, it ran on another state, or this node runs it with
                // other limits. Not proven either way.
                Err(e) => {
                    return Proof::Unproven(format!(
                        "running again the migration to {} failed here: {e}",
                        plan.app.version
                    ));
                }
            }
        }
    }

    /// The component `blob`, loaded on the deterministic runtime: stored
    /// here, or fetched from `peer` (not installed: an older version is
    /// needed only to run its migration again).
    async fn migration_app(&self, blob: &[u8; 32], peer: PeerId) -> Result<Arc<App>, String> {
        if let Some(app) = self.parts.migrations.loaded(blob) {
            return Ok(app);
        }
        let stored = self
            .parts
            .store
            .snapshot()
            .and_then(|s| s.blob(blob))
            .map_err(|e| e.to_string())?;
        let bytes = match stored {
            Some(bytes) => bytes,
            None => match self
                .parts
                .peers
                .fetch(peer, &Request::Blob { hash: *blob })
                .await
            {
                Ok(Response::Blob(bytes)) if crate::applications::sha256(&bytes) == *blob => bytes,
                Ok(Response::Blob(_)) => {
                    return Err("the component its sender sent is not the one named".into());
                }
                Ok(other) => {
                    return Err(format!("its sender would not send a component: {other:?}"));
                }
                Err(e) => return Err(format!("fetching a component failed: {e}")),
            },
        };
        upgrades::load_for_migration(&self.parts.migrations, &bytes)
            .await
            .map_err(|e| e.to_string())
    }
}
