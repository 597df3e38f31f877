//! This node's own recent mutating calls, per context: what it re-runs
//! under the new version when a write it made under the old one turns out
//! to be past an upgrade's cut (made before it heard of the upgrade). Other
//! members refuse such a write (its ops name the old layout's collections),
//! so its author is the one that can carry it over: it takes a migrated
//! member's state and calls the method again.
//!
//! Bounded for the whole node (one ring over every context, oldest out
//! first), so that its memory does not grow with the contexts held; a call
//! that fell out cannot be re-run (the re-run counts those). The ring is
//! kept in memory and saved to the store's node-local records off the
//! call path: every second while calls come in, and at shutdown, so a
//! restart finds it; a crash loses at most the last second's calls.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mero_crdt::{ContextId, DeltaId};
use mero_store::{Snapshot, WriteTxn};

use crate::blocking::blocking;
use crate::node::Node;

/// Calls kept.
const CALLS: usize = 16_384;
/// Argument bytes kept.
const ARG_BYTES: usize = 32 << 20;
/// The store's node-local record kind: sequence number -> call.
const KIND: &str = "call-journal";
/// How often new calls are saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// One mutating call this node made and the delta it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) delta: DeltaId,
    pub(crate) method: String,
    /// The arguments as JSON text, as the call received them.
    pub(crate) args: String,
}

struct Kept {
    seq: u64,
    ctx: ContextId,
    call: Call,
    /// Whether the store has it (so dropping it deletes it there).
    saved: bool,
}

#[derive(Default)]
struct Ring {
    calls: VecDeque<Kept>,
    arg_bytes: usize,
    next_seq: u64,
    /// Saved calls since dropped, to delete from the store.
    dropped: Vec<u64>,
}

impl Ring {
    fn push(&mut self, ctx: ContextId, call: Call, saved: bool, seq: u64) {
        self.arg_bytes += call.args.len();
        self.next_seq = self.next_seq.max(seq + 1);
        self.calls.push_back(Kept {
            seq,
            ctx,
            call,
            saved,
        });
        while self.calls.len() > CALLS || (self.arg_bytes > ARG_BYTES && self.calls.len() > 1) {
            if let Some(old) = self.calls.pop_front() {
                self.arg_bytes -= old.call.args.len();
                self.drop_kept(&old);
            }
        }
    }

    fn drop_kept(&mut self, k: &Kept) {
        if k.saved {
            self.dropped.push(k.seq);
        }
    }

    /// Takes out the calls `out` picks, in order.
    fn take(&mut self, out: impl Fn(&Kept) -> bool) -> Vec<Kept> {
        let (taken, stay): (Vec<_>, Vec<_>) = self.calls.drain(..).partition(|k| out(k));
        self.calls = stay.into();
        self.arg_bytes = self.calls.iter().map(|k| k.call.args.len()).sum();
        for k in &taken {
            self.drop_kept(k);
        }
        taken
    }
}

/// What the store lacks of the journal: calls to add and calls to delete.
#[derive(Default)]
pub(crate) struct Unsaved {
    add: Vec<(u64, Vec<u8>)>,
    delete: Vec<u64>,
}

impl Unsaved {
    pub(crate) fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }

    /// Writes it in `w` (committed by the caller).
    pub(crate) fn write(&self, w: &mut WriteTxn<'_>) -> mero_store::Result<()> {
        for seq in &self.delete {
            w.delete_local(KIND, &seq.to_be_bytes())?;
        }
        for (seq, bytes) in &self.add {
            w.put_local(KIND, &seq.to_be_bytes(), bytes)?;
        }
        Ok(())
    }
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct Journal {
    ring: Mutex<Ring>,
    /// Held from taking what is unsaved until it is written: saves land in
    /// the order they were taken (a delete never before its add).
    saving: Mutex<()>,
    /// Whether anything changed since the last save was taken: an idle
    /// node's saver does not leave its task.
    dirty: AtomicBool,
}

impl Journal {
    /// The journal the store holds (an unreadable record is skipped).
    pub(crate) fn load(snapshot: &Snapshot) -> mero_store::Result<Journal> {
        let mut ring = Ring::default();
        // Keys are big-endian sequence numbers: in call order.
        for (key, value) in snapshot.locals(KIND)? {
            let (Ok(seq), Some((ctx, call))) =
                (<[u8; 8]>::try_from(key.as_slice()), decode(&value))
            else {
                tracing::warn!("skipped an unreadable call in the journal");
                continue;
            };
            ring.push(ctx, call, true, u64::from_be_bytes(seq));
        }
        Ok(Journal {
            ring: Mutex::new(ring),
            saving: Mutex::new(()),
            dirty: AtomicBool::new(false),
        })
    }

    /// Records a call that produced `delta` in `ctx`.
    pub(crate) fn record(&self, ctx: ContextId, call: Call) {
        let Ok(mut r) = self.ring.lock() else {
            return;
        };
        let seq = r.next_seq;
        r.push(ctx, call, false, seq);
        self.dirty.store(true, Ordering::Release);
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
        self.dirty.store(true, Ordering::Release);
        r.take(|k| k.ctx == *ctx && !has(&k.call.delta))
            .into_iter()
            .map(|k| k.call)
            .collect()
    }

    /// Forgets `ctx` (deleted or left).
    pub(crate) fn forget(&self, ctx: &ContextId) {
        if let Ok(mut r) = self.ring.lock() {
            r.take(|k| k.ctx == *ctx);
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// What the store lacks, taken as saved: the caller writes it, in the
    /// order these were taken (one saver at a time).
    pub(crate) fn unsaved(&self) -> Unsaved {
        let Ok(mut r) = self.ring.lock() else {
            return Unsaved::default();
        };
        self.dirty.store(false, Ordering::Release);
        let delete = std::mem::take(&mut r.dropped);
        let add = r
            .calls
            .iter_mut()
            .filter(|k| !k.saved)
            .map(|k| {
                k.saved = true;
                (k.seq, encode(&k.ctx, &k.call))
            })
            .collect();
        Unsaved { add, delete }
    }
}

impl Node {
    /// Saves the journal every [`SAVE_EVERY`] while calls come in.
    pub(crate) fn run_journal(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            loop {
                tokio::time::sleep(SAVE_EVERY).await;
                node.save_journal().await;
            }
        });
    }

    /// Writes what the store lacks of the journal. All of it on a blocking
    /// thread, under the journal's save lock: a saver cancelled at shutdown
    /// still finishes its write before the shutdown's own save starts.
    pub(crate) async fn save_journal(&self) {
        if !self.inner.journal.dirty.load(Ordering::Acquire) {
            return;
        }
        let node = self.clone();
        let saved = blocking(move || {
            let journal = &node.inner.journal;
            let _one = journal.saving.lock().unwrap_or_else(|p| p.into_inner());
            let unsaved = journal.unsaved();
            if unsaved.is_empty() {
                return Ok(());
            }
            let mut w = node.inner.store.write()?;
            unsaved.write(&mut w)?;
            w.commit()?;
            Ok(())
        })
        .await;
        if let Err(e) = saved {
            tracing::warn!(error = %e, "saving the call journal failed: a restart may not re-run the calls since the last save");
        }
    }
}

/// ctx ‖ delta ‖ method length (u16, big-endian) ‖ method ‖ args.
fn encode(ctx: &ContextId, call: &Call) -> Vec<u8> {
    let method = call.method.as_bytes();
    let mut out = Vec::with_capacity(66 + method.len() + call.args.len());
    out.extend_from_slice(&ctx.0);
    out.extend_from_slice(&call.delta.0);
    // Method names are short (the runtime bounds them far below 64 KiB).
    out.extend_from_slice(&(method.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(&method[..method.len().min(u16::MAX as usize)]);
    out.extend_from_slice(call.args.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<(ContextId, Call)> {
    let ctx: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    let delta: [u8; 32] = bytes.get(32..64)?.try_into().ok()?;
    let len = u16::from_be_bytes(bytes.get(64..66)?.try_into().ok()?) as usize;
    let method = std::str::from_utf8(bytes.get(66..66 + len)?).ok()?;
    let args = std::str::from_utf8(bytes.get(66 + len..)?).ok()?;
    Some((
        ContextId(ctx),
        Call {
            delta: DeltaId(delta),
            method: method.to_owned(),
            args: args.to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
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

    /// Saves `j` into `store` as the saver does.
    fn save(j: &Journal, store: &mero_store::Store) {
        let mut w = store.write().unwrap();
        j.unsaved().write(&mut w).unwrap();
        w.commit().unwrap();
    }

    #[test]
    fn a_saved_journal_loads_as_it_was_and_goes_on_numbering() {
        let dir = std::env::temp_dir().join(format!(
            "mero-journal-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let store = mero_store::Store::open(&dir.join("db"), &Default::default()).unwrap();
        let (a, b) = (ContextId([1; 32]), ContextId([2; 32]));
        let j = Journal::default();
        for n in 0..4 {
            j.record(
                if n % 2 == 0 { a } else { b },
                call(n, &format!("{{\"n\":{n}}}")),
            );
        }
        save(&j, &store);
        // Taken and forgotten calls leave the store at the next save;
        // one recorded since is added.
        assert_eq!(j.take_missing(&a, |d| d.0[0] != 0), [call(0, "{\"n\":0}")]);
        j.forget(&b);
        j.record(a, call(4, "{}"));
        save(&j, &store);
        assert!(j.unsaved().is_empty(), "everything is saved");

        let loaded = Journal::load(&store.snapshot().unwrap()).unwrap();
        assert!(loaded.unsaved().is_empty(), "a loaded call is saved");
        assert!(loaded.take_missing(&b, |_| false).is_empty());
        // A call recorded after the load comes after the loaded ones.
        loaded.record(a, call(5, "{}"));
        let names: Vec<_> = loaded
            .take_missing(&a, |_| false)
            .into_iter()
            .map(|c| c.method)
            .collect();
        assert_eq!(names, ["m2", "m4", "m5"]);
        assert_eq!(store.snapshot().unwrap().locals(KIND).unwrap().len(), 2);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_unreadable_record_is_not_a_call() {
        assert!(decode(&[0; 65]).is_none());
        let mut bytes = encode(&ContextId([1; 32]), &call(1, "{}"));
        assert_eq!(decode(&bytes), Some((ContextId([1; 32]), call(1, "{}"))));
        // A method length past the record's end.
        bytes[64] = 0xff;
        assert!(decode(&bytes).is_none());
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
