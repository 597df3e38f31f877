//! This node's own recent mutating calls, per context, in memory: what it
//! re-runs under the new version when a write it made under the old one
//! turns out to be past an upgrade's cut (made before it heard of the
//! upgrade). Other members refuse such a write (its ops name the old
//! layout's collections), so its author is the one that can carry it over:
//! it takes a migrated member's state and calls the method again.
//!
//! Bounded per context, oldest first out; a call that fell out, or one made
//! before a restart, cannot be re-run (the re-run counts those).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use mero_crdt::{ContextId, DeltaId};

/// Calls kept per context.
const CALLS: usize = 4096;
/// Argument bytes kept per context.
const ARG_BYTES: usize = 8 << 20;

/// One mutating call this node made and the delta it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) delta: DeltaId,
    pub(crate) method: String,
    /// The arguments as JSON text, as the call received them.
    pub(crate) args: String,
}

#[derive(Default)]
struct Kept {
    calls: VecDeque<Call>,
    arg_bytes: usize,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct Journal {
    kept: Mutex<HashMap<ContextId, Kept>>,
}

impl Journal {
    /// Records a call that produced `delta` in `ctx`.
    pub(crate) fn record(&self, ctx: ContextId, call: Call) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        let k = kept.entry(ctx).or_default();
        k.arg_bytes += call.args.len();
        k.calls.push_back(call);
        while k.calls.len() > CALLS || (k.arg_bytes > ARG_BYTES && k.calls.len() > 1) {
            if let Some(old) = k.calls.pop_front() {
                k.arg_bytes -= old.args.len();
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
        let Ok(mut kept) = self.kept.lock() else {
            return Vec::new();
        };
        let Some(k) = kept.get_mut(ctx) else {
            return Vec::new();
        };
        let (missing, stay): (Vec<Call>, Vec<Call>) =
            k.calls.drain(..).partition(|c| !has(&c.delta));
        k.arg_bytes = stay.iter().map(|c| c.args.len()).sum();
        k.calls = stay.into();
        missing
    }

    /// Forgets `ctx` (deleted or left).
    pub(crate) fn forget(&self, ctx: &ContextId) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.remove(ctx);
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
    fn bounded_by_bytes_oldest_out() {
        let j = Journal::default();
        let ctx = ContextId([1; 32]);
        let big = "x".repeat(ARG_BYTES / 2 + 1);
        for n in 0..3 {
            j.record(ctx, call(n, &big));
        }
        let missing = j.take_missing(&ctx, |_| false);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].method, "m2");
    }
}
