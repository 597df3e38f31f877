//! Auto-follow: a member's node joins the contexts of its groups on its
//! own, as upstream's do (on by default; a member or an admin turns it off
//! per group with an `AutoFollowSet` op). Membership decides what to follow
//! as ops are applied and queues it ([`crate::membership::ContextQueue`]);
//! the task here joins what was queued, one context at a time, retrying
//! with backoff while no member can serve it. `group join-context` remains
//! the explicit way in, and works whatever the setting.

use std::time::Duration;

use mero_crdt::ContextId;
use tokio::time::Instant;

use crate::error::Result;
use crate::node::Node;

/// Tries per context before it is left to the next start (or an explicit
/// join).
const TRIES: u32 = 8;
/// The first retry's wait; each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before the retry that follows `tries` failed tries: doubling
/// from [`FIRST_BACKOFF`], up to [`MAX_BACKOFF`]. The node's other
/// retrying tasks wait alike.
pub(crate) fn backoff(tries: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << tries.min(6))
        .min(MAX_BACKOFF)
}

/// What one attempt did.
#[derive(Debug, PartialEq, Eq)]
enum Followed {
    /// Joined now.
    Joined,
    /// Nothing to do: held already, left here, or no longer followed.
    Skipped(&'static str),
}

impl Node {
    /// Starts the follow task: first every context this node follows but
    /// does not hold (a start after a crash, or after an attempt ran out
    /// of tries), then what membership queues.
    pub(crate) fn run_follow(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            let members = &node.inner.members;
            for ns in members.all() {
                members.follows().push(members.followed(&ns));
            }
            // (context, when to try, tries so far), in queue order.
            let mut due: Vec<(ContextId, Instant, u32)> = Vec::new();
            loop {
                let next = due.iter().map(|(_, at, _)| *at).min();
                tokio::select! {
                    queued = members.follows().next() => {
                        let now = Instant::now();
                        for ctx in queued {
                            if !due.iter().any(|(c, _, _)| *c == ctx) {
                                due.push((ctx, now, 0));
                            }
                        }
                    }
                    () = sleep_until(next) => {}
                }
                let now = Instant::now();
                let (ready, later): (Vec<_>, Vec<_>) =
                    due.into_iter().partition(|(_, at, _)| *at <= now);
                due = later;
                for (ctx, _, tries) in ready {
                    let id = bs58::encode(ctx.0).into_string();
                    match node.follow(&ctx).await {
                        Ok(Followed::Joined) => {
                            tracing::info!(context = %id, "auto-follow: joined context");
                        }
                        Ok(Followed::Skipped(why)) => {
                            tracing::debug!(context = %id, why, "auto-follow: skipped context");
                        }
                        Err(e) if tries + 1 < TRIES => {
                            let wait = backoff(tries);
                            tracing::info!(context = %id, error = %e, retry_in = ?wait, "auto-follow: joining failed; retrying");
                            due.push((ctx, Instant::now() + wait, tries + 1));
                        }
                        Err(e) => {
                            tracing::warn!(context = %id, error = %e, "auto-follow: joining failed; giving up until the next start or an explicit join");
                        }
                    }
                }
            }
        });
    }

    /// Joins `ctx` if this node still follows it and neither holds nor
    /// left it.
    async fn follow(&self, ctx: &ContextId) -> Result<Followed> {
        if self.inner.store.snapshot()?.context_meta(ctx)?.is_some() {
            return Ok(Followed::Skipped("held already"));
        }
        if self.has_left(ctx)? {
            return Ok(Followed::Skipped("left on this node"));
        }
        let me = self.public_key();
        // The setting may have changed since the context was queued.
        let follows = self
            .inner
            .members
            .registering(ctx)
            .is_some_and(|ns| ns.follows(&me, &ctx.0));
        if !follows {
            return Ok(Followed::Skipped("no longer followed"));
        }
        self.join_replica(ctx).await?;
        Ok(Followed::Joined)
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
