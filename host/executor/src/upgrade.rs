//! Moving a context to another version of its app, inside a batch; and
//! running a migration again outside any batch, on a state held in memory
//! ([`Executor::replay_migration`]).
//!
//! The migration runs on the context's staged state (an empty overlay over
//! the state before it), so the new app's frozen handles read the old state
//! and its check compares the two. Only if the migration and its check both
//! pass do its writes and the new metadata join the batch; otherwise the
//! overlay is rolled back and the context is exactly as it was.
//!
//! A migration may rewrite every entry of a large state, so its writes are
//! held once: whole, in the overlay (no list of ops beside them, no undo
//! journal, since the overlay started empty). They leave the overlay for
//! the batch's commit, which stores them as they are; the batch then
//! commits before any other job touches the context (`Batch::migrating`).

use std::sync::atomic::Ordering;

use mero_crdt::overlay::Overlay;
use mero_crdt::{Clock, ContextId, DeltaId, Op};
use mero_runtime::CallEnv;
use mero_store::ContextMeta;

use crate::batch::{Answer, Batch};
use crate::error::ExecError;
use crate::handle::Executor;
use crate::job::{Ran, Upgrade, Upgraded};
use crate::worker::Worker;

impl Worker {
    pub(crate) async fn upgrade(
        &mut self,
        batch: &mut Batch,
        meta: Box<ContextMeta>,
        upgrade: Box<Upgrade>,
        reply: tokio::sync::oneshot::Sender<Result<Upgraded, ExecError>>,
    ) -> Ran {
        let ctx = meta.id;
        if batch.work.contains_key(&ctx) {
            return Ran::Defer(meta, upgrade, reply);
        }
        match self.stage(batch, &meta, &upgrade).await {
            Ok((writes, heads)) if upgrade.dry_run => {
                let _ = reply.send(Ok(Upgraded {
                    root_hash: [0; 32],
                    writes,
                    heads,
                }));
            }
            Ok((writes, heads)) => {
                batch.answers.push(Answer::Upgrade {
                    reply,
                    ctx,
                    writes,
                    heads,
                });
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
        Ran::Staged
    }

    async fn stage(
        &mut self,
        batch: &mut Batch,
        meta: &ContextMeta,
        upgrade: &Upgrade,
    ) -> Result<(usize, Vec<DeltaId>), ExecError> {
        let ctx = meta.id;
        // A migration reads one layout: run on another, it would read
        // garbage (a node that missed an upgrade climbs one rung at a time).
        if let Some(from) = upgrade.migrate_from
            && meta.state_version != from
        {
            return Err(ExecError::Denied {
                kind: "OldStateMismatch",
                message: format!(
                    "the migration reads state version {from}, the context's is {}",
                    meta.state_version
                ),
            });
        }
        let work = batch.work(meta, false)?;
        let heads = work.heads.clone();
        if upgrade.migrate_from.is_some()
            && let Some(cut) = &upgrade.cut
            && !same_set(cut, &heads)
        {
            return Err(ExecError::Denied {
                kind: "NotAtCut",
                message: format!(
                    "the context's DAG heads here ({}) are not the upgrade's cut ({})",
                    heads.len(),
                    cut.len()
                ),
            });
        }
        let mut writes = 0;
        if let Some(from) = upgrade.migrate_from {
            let (Some(mut state), Some(mut private)) = (work.state.take(), work.private.take())
            else {
                return Err(ExecError::ContextNotFound);
            };
            state.checkpoint();
            // Its writes are taken out and stored, never carried: the
            // counts it changes are read when they are stored.
            state.defer_counts();
            private.checkpoint();
            let env = migration_env(ctx, upgrade, state, private);
            let runtime = &upgrade.runtime;
            let started = std::time::Instant::now();
            let (env, migrated) = runtime.migrate(&upgrade.app, env, from).await;
            self.stats
                .migrate_nanos
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let checked = upgrade
                .app
                .description()
                .migration_from(from)
                .is_some_and(|m| m.checked);
            let (env, verdict) = match migrated {
                Err(error) => (
                    env,
                    Err(ExecError::Migration {
                        stage: "migrate",
                        error,
                    }),
                ),
                Ok(()) if checked => {
                    let started = std::time::Instant::now();
                    let (env, r) = runtime.check_migration(&upgrade.app, env, from).await;
                    self.stats
                        .check_nanos
                        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    let r = r.map_err(|error| ExecError::Migration {
                        stage: "check",
                        error,
                    });
                    (env, r)
                }
                Ok(()) => (env, Ok(())),
            };
            let op_count = env.op_count();
            let CallEnv {
                state,
                private,
                clock,
                ..
            } = env;
            let work = batch.work.get_mut(&ctx).ok_or(ExecError::ContextNotFound)?;
            let (Some(mut state), Some(mut private)) = (state, private) else {
                return Err(ExecError::Store(
                    "migration environment lost its state".into(),
                ));
            };
            if verdict.is_err() || upgrade.dry_run {
                state.rollback();
                private.rollback();
                work.state = Some(state);
                work.private = Some(private);
                verdict?;
                return Ok((op_count, heads));
            }
            state.release();
            private.release();
            let staged = state.take_writes();
            work.state = Some(state);
            work.private = Some(private);
            // Later calls here must stamp after everything the migration wrote.
            self.clock.observe(clock.last());
            writes = op_count;
            batch.migrations.push((ctx, staged));
        }
        if upgrade.dry_run {
            return Ok((writes, heads));
        }
        let work = batch.work.get_mut(&ctx).ok_or(ExecError::ContextNotFound)?;
        work.meta.application = upgrade.application;
        work.meta.blob = upgrade.app.hash();
        work.meta.app_version = upgrade.app_version.clone();
        work.meta.state_version = upgrade.app.description().state_version;
        work.meta_changed = true;
        Ok((writes, heads))
    }
}

/// The environment a migration of `ctx` runs in, alike on every node.
fn migration_env(
    ctx: mero_crdt::ContextId,
    upgrade: &Upgrade,
    state: mero_runtime::State,
    private: mero_runtime::PrivateOverlay,
) -> CallEnv {
    let mut env = CallEnv::new(
        ctx,
        upgrade.author,
        upgrade.app_version.clone(),
        state,
        private,
        Clock::starting_after(upgrade.barrier),
    );
    env.record_ops = false;
    // Every node starts from the same instant, so the stamps and anything
    // the app derives from the time agree.
    env.wall_millis = upgrade.barrier.millis;
    env
}

impl Executor {
    /// Runs `upgrade`'s migration (from the state version it names) on
    /// `entries`, a state of `ctx` held in memory, as each member ran it
    /// on its own copy, and returns the entries it wrote, whole (joined
    /// with those they replace): a joiner proving a snapshot that crossed
    /// the upgrade joins them into the state and compares the root with
    /// the one the upgrade's signed op names. Nothing is stored, and the
    /// migration reads no private storage (each member's is its own).
    pub async fn replay_migration(
        &self,
        ctx: ContextId,
        entries: &[Op],
        upgrade: &Upgrade,
    ) -> Result<Vec<Op>, ExecError> {
        let Some(from) = upgrade.migrate_from else {
            return Ok(Vec::new());
        };
        // Read under an id nothing is stored under (ids are hashes: the
        // complement of one is no other's), so the state is all in the
        // overlay and the private storage empty.
        let scratch = ContextId(ctx.0.map(|b| !b));
        let snapshot = self.store().snapshot()?;
        let mut base = Overlay::new(snapshot.context(scratch));
        for op in entries {
            mero_crdt::apply_op(&mut base, op).map_err(|e| ExecError::Store(e.to_string()))?;
        }
        let mut state = Overlay::new(base);
        state.checkpoint();
        let private = mero_runtime::PrivateOverlay::new(snapshot, scratch);
        let env = migration_env(ctx, upgrade, state, private);
        let (env, migrated) = upgrade.runtime.migrate(&upgrade.app, env, from).await;
        migrated.map_err(|error| ExecError::Migration {
            stage: "migrate",
            error,
        })?;
        let mut state = env
            .state
            .ok_or_else(|| ExecError::Store("migration environment lost its state".into()))?;
        let writes = state.take_writes();
        writes
            .entries()
            .map(|(node, key, encoded)| {
                let entry = borsh::from_slice(encoded)
                    .map_err(|e| ExecError::Store(format!("a migrated entry: {e}")))?;
                Ok(Op {
                    node,
                    key: key.to_vec(),
                    entry,
                })
            })
            .collect()
    }
}

/// Whether two sets of DAG heads hold the same ids.
fn same_set(a: &[DeltaId], b: &[DeltaId]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable_by_key(|d| d.0);
    b.sort_unstable_by_key(|d| d.0);
    a == b
}
