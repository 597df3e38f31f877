//! This node's own recent mutating calls, per context, in memory: what it
//! re-runs under the new version when a write it made under the old one
//! turns out to be past an upgrade's cut (made before it heard of the
//! upgrade). Other members refuse such a write (its ops name the old
//! layout's collections), so its author is the one that can carry it over:
//! it takes a migrated member's state and calls the method again.
//!
//! Bounded for the whole node (one ring over every context, oldest out
//! first), so that its memory does not grow with the contexts held; a call
//! that fell out, or one made before a restart, cannot be re-run (the
//! re-run counts those).

use std::collections::VecDeque;
use std::sync::Mutex;

use mero_crdt::{ContextId, DeltaId};

/// Calls kept.
const CALLS: usize = 16_384;
/// Argument bytes kept.
const ARG_BYTES: usize = 32 << 20;

/// One mutating call this node made and the delta it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) delta: DeltaId,
    pub(crate) method: String,
    /// The arguments as JSON text, as the call received them.
    pub(crate) args: String,
}

#[derive(Default)]
struct Ring {
    calls: VecDeque<(ContextId, Call)>,
    arg_bytes: usize,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct Journal {
    ring: Mutex<Ring>,
}

impl Journal {
    /// Records a call that produced `delta` in `ctx`.
    pub(crate) fn record(&self, ctx: ContextId, call: Call) {
        let Ok(mut r) = self.ring.lock() else {
            return;
        };
        r.arg_bytes += call.args.len();
        r.calls.push_back((ctx, call));
        while r.calls.len() > CALLS || (r.arg_bytes > ARG_BYTES && r.calls.len() > 1) {
            if let Some((_, old)) = r.calls.pop_front() {
                r.arg_bytes -= old.args.len();
            }
        }
    }

    /// Takes out, in call order, the calls of `ctx` whose delta `has` says
    /// is not in the context's state any more. Those kept stay.
    pub(crate) fn take_missing(
        &self,
        ctx: &ContextId,
        has: impl Fn(&DeltaId) -> bool,
    ) -> Vec<Call> {
        let Ok(mut r) = self.ring.lock() else {
            return Vec::new();
        };
        let (missing, stay): (Vec<_>, Vec<_>) = r
            .calls
            .drain(..)
            .partition(|(c, call)| c == ctx && !has(&call.delta));
        r.calls = stay.into();
        r.arg_bytes = r.calls.iter().map(|(_, c)| c.args.len()).sum();
        missing.into_iter().map(|(_, c)| c).collect()
    }

    /// Forgets `ctx` (deleted or left).
    pub(crate) fn forget(&self, ctx: &ContextId) {
        if let Ok(mut r) = self.ring.lock() {
            r.calls.retain(|(c, _)| c != ctx);
            r.arg_bytes = r.calls.iter().map(|(_, c)| c.args.len()).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u8, args: &str) -> Call {
        Call {
            delta: DeltaId([n; 32]),
            method: format!("m{n}"),
            args: args.into(),
        }
    }

    #[test]
    fn takes_only_the_calls_whose_delta_is_gone_in_order() {
        let j = Journal::default();
        let ctx = ContextId([1; 32]);
        for n in 0..5 {
            j.record(ctx, call(n, "{}"));
        }
        let missing = j.take_missing(&ctx, |d| d.0[0] % 2 == 0);
        let names: Vec<_> = missing.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(names, ["m1", "m3"]);
        // The kept ones stay; the taken ones are gone.
        let again = j.take_missing(&ctx, |_| false);
        let names: Vec<_> = again.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(names, ["m0", "m2", "m4"]);
        assert!(j.take_missing(&ContextId([2; 32]), |_| false).is_empty());
    }

    #[test]
    fn bounded_for_the_whole_node_oldest_out() {
        let j = Journal::default();
        let (a, b) = (ContextId([1; 32]), ContextId([2; 32]));
        let big = "x".repeat(ARG_BYTES / 2 + 1);
        j.record(a, call(0, &big));
        j.record(b, call(1, &big));
        j.record(b, call(2, "{}"));
        // A's call fell out for B's: the bound is the node's, not per context.
        assert!(j.take_missing(&a, |_| false).is_empty());
        let names: Vec<_> = j
            .take_missing(&b, |_| false)
            .into_iter()
            .map(|c| c.method)
            .collect();
        assert_eq!(names, ["m1", "m2"]);
        j.record(a, call(3, "{}"));
        j.forget(&a);
        assert!(j.take_missing(&a, |_| false).is_empty());
    }
}
