//! Ties the write-ahead log, the in-memory layers and LMDB together: opening
//! (with recovery), snapshots, commits, and the background flush to LMDB.
//!
//! Lock order: `writer`, then `state`. `flushing` is taken before either.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use heed::{Env, RoTxn, WithoutTls};
use mero_crdt::{ContextId, EntryId, Hash, NodeId, merkle};

use crate::error::{Result, StoreError};
use crate::memtable::Mem;
use crate::tables::{Table, Tables};
use crate::wal::{self, Segment};

/// How many flushes' worth of commits may wait while flushing fails.
const BACKLOG_FLUSHES: usize = 8;

/// The pause after a failed flush.
const RETRY: Duration = Duration::from_secs(1);

/// Bytes of writes one LMDB transaction of a flush takes at most (about).
const FLUSH_CHUNK: usize = 16 << 20;

/// The key in the `log` table holding the newest segment LMDB holds whole.
const FLUSHED: &[u8] = b"flushed";

/// Merkle buckets whose leaves recovery replayed, by context: their trie
/// nodes are not in the log and must be re-hashed.
pub(crate) type Dirty = BTreeMap<ContextId, BTreeSet<u16>>;

fn note_leaf(dirty: &mut Dirty, key: &[u8]) {
    // Leaf keys are context ‖ entry id.
    if let (Ok(ctx), Some(id)) = (
        <[u8; 32]>::try_from(&key[..32.min(key.len())]),
        key.get(32..).and_then(EntryId::from_slice),
    ) {
        dirty.entry(ContextId(ctx)).or_default().insert(id.bucket());
    }
}

/// The `leaves` record (key, leaf hash) of the `entries` record `key`
/// (context ‖ node ‖ key within the node) holding `value`: the log leaves
/// leaves out, as they follow from the entries.
fn leaf_of(key: &[u8], value: &[u8]) -> Option<(Vec<u8>, Hash)> {
    let (ctx, rest) = key.split_first_chunk::<32>()?;
    let (node, k) = rest.split_first_chunk::<32>()?;
    let node = NodeId(*node);
    let id = EntryId::of(&node, k);
    Some((
        [&ctx[..], &id.0[..]].concat(),
        merkle::leaf_hash_encoded(&node, k, value),
    ))
}

/// What a snapshot or a write transaction reads besides LMDB.
#[derive(Clone, Default)]
pub(crate) struct Layers {
    pub(crate) mem: Mem,
    pub(crate) frozen: Option<Arc<Mem>>,
}

#[derive(Clone)]
struct Frozen {
    mem: Arc<Mem>,
    generation: u64,
    /// Bytes of log the segment held.
    used: u64,
}

#[derive(Default)]
struct State {
    /// Writes committed since the last rotation: the current segment's.
    active: Mem,
    /// Bytes of log the current segment holds.
    logged: u64,
    /// Writes of an earlier segment, being written to LMDB.
    frozen: Option<Frozen>,
    /// Why the last flush failed, while it keeps failing.
    last_error: Option<String>,
    stop: bool,
}

impl State {
    /// Whether a flush's worth is waiting: in memory, or in the log (which
    /// also holds what memory counts once, such as rewritten keys).
    fn due(&self, flush_bytes: usize) -> bool {
        self.active.bytes() >= flush_bytes || self.logged >= flush_bytes as u64
    }
}

/// The one writer at a time, and the segment it appends to.
pub(crate) struct Writer {
    pub(crate) segment: Segment,
}

pub(crate) struct Shared {
    pub(crate) env: Env<WithoutTls>,
    pub(crate) tables: Tables,
    dir: PathBuf,
    writer: Mutex<Writer>,
    state: Mutex<State>,
    wake: Condvar,
    flushing: Mutex<()>,
    flush_bytes: usize,
    flush_interval: Duration,
    /// Set to skip the flush at close (tests that simulate a crash).
    abandon: AtomicBool,
    /// The log was seen broken (it stays so until a restart).
    log_broken: AtomicBool,
    /// Log records replayed into LMDB when this store was opened: more
    /// than none only after a crash (a clean close flushes the log).
    pub(crate) replayed: u64,
    /// Held (locked) for as long as the store is open.
    _dir_lock: File,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic in another holder:
    // every update is a single assignment.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn io(dir: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: dir.display().to_string(),
        source,
    }
}

impl Shared {
    /// Replays what the log holds beyond LMDB into LMDB, then starts a new
    /// segment. Returns the Merkle buckets the caller must re-hash and flush.
    pub(crate) fn open(
        env: Env<WithoutTls>,
        tables: Tables,
        dir: PathBuf,
        flush_bytes: usize,
        flush_interval: Duration,
    ) -> Result<(Shared, Dirty)> {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        if let Some(parent) = dir.parent() {
            // The log directory itself must survive a crash on first start.
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io(parent))?;
        }
        // Recovery deletes and rewrites segments: a second process on the
        // same directory would pull the log from under the first one.
        let lock_path = dir.join("LOCK");
        let dir_lock = File::create(&lock_path).map_err(io(&lock_path))?;
        dir_lock.try_lock().map_err(|e| StoreError::Io {
            path: lock_path.display().to_string(),
            source: match e {
                std::fs::TryLockError::WouldBlock => std::io::Error::other(
                    "the store is open in another process (is the node already running?)",
                ),
                std::fs::TryLockError::Error(e) => e,
            },
        })?;
        let mut dirty = Dirty::new();
        let mut wtxn = env.write_txn()?;
        let flushed = tables
            .log
            .get(&wtxn, FLUSHED)?
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        let segments = wal::segments(&dir).map_err(io(&dir))?;
        let mut newest = flushed;
        let mut replayed = 0;
        for (generation, path) in &segments {
            newest = newest.max(*generation);
            // Older segments are in LMDB already; one whose deletion was lost
            // in a crash must not roll newer values back.
            if *generation <= flushed {
                continue;
            }
            for payload in wal::records(path, *generation).map_err(io(path))? {
                replayed += 1;
                for op in wal::ops(&payload)? {
                    if op.table == Table::Leaves {
                        // Logged by earlier versions only.
                        note_leaf(&mut dirty, op.key);
                    }
                    if op.table == Table::Entries
                        && let Some(v) = op.value
                        && let Some((leaf, hash)) = leaf_of(op.key, v)
                    {
                        note_leaf(&mut dirty, &leaf);
                        tables.db(Table::Leaves).put(&mut wtxn, &leaf, &hash)?;
                    }
                    let db = tables.db(op.table);
                    match op.value {
                        Some(v) => db.put(&mut wtxn, op.key, v)?,
                        None => {
                            db.delete(&mut wtxn, op.key)?;
                        }
                    }
                }
            }
        }
        if dirty.is_empty() {
            tables.log.put(&mut wtxn, FLUSHED, &newest.to_be_bytes())?;
            wtxn.commit()?;
            for (_, path) in &segments {
                std::fs::remove_file(path).map_err(io(path))?;
            }
        } else {
            // The trie above the replayed leaves is not in LMDB yet: keep the
            // segments (replaying them again is harmless) until the flush
            // after the re-hash has it all, or a crash before then would
            // leave leaves and trie apart for good.
            wtxn.commit()?;
        }
        let segment =
            Segment::create(&dir, newest + 1, segment_bytes(flush_bytes)).map_err(io(&dir))?;
        let shared = Shared {
            env,
            tables,
            dir,
            writer: Mutex::new(Writer { segment }),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            flushing: Mutex::new(()),
            flush_bytes,
            flush_interval,
            abandon: AtomicBool::new(false),
            log_broken: AtomicBool::new(false),
            replayed,
            _dir_lock: dir_lock,
        };
        Ok((shared, dirty))
    }

    /// The layers and a read transaction that together make one view.
    pub(crate) fn read(&self) -> Result<(Layers, RoTxn<'static, WithoutTls>)> {
        let state = lock(&self.state);
        // Opened under the lock: a flush that finishes later cannot drop a
        // frozen layer this view has not got in LMDB.
        let txn = self.env.clone().static_read_txn()?;
        let layers = Layers {
            mem: state.active.clone(),
            frozen: state.frozen.as_ref().map(|f| f.mem.clone()),
        };
        Ok((layers, txn))
    }

    /// Becomes the writer, blocking while another is.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    /// Refuses a commit while LMDB is far behind the log (flushes failing,
    /// e.g. a full disk or map): memory and the log would grow without
    /// bound, and a restart would have to replay it all.
    pub(crate) fn check_backlog(&self) -> Result<()> {
        let state = lock(&self.state);
        // A migration's run alone may be larger than the limit: counted, it
        // would refuse every commit until the flush before it finished.
        if state.frozen.is_some() && state.active.map_bytes() > BACKLOG_FLUSHES * self.flush_bytes {
            return Err(StoreError::Backlog(
                state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "flushes are not finishing".into()),
            ));
        }
        Ok(())
    }

    /// Whether a failed append left the log's end unknown (no commit can
    /// be logged until a restart replays it). While a commit holds the
    /// writer, the last answer stands: a broken log never heals.
    pub(crate) fn log_broken(&self) -> bool {
        if self.log_broken.load(Ordering::Relaxed) {
            return true;
        }
        let broken = match self.writer.try_lock() {
            Ok(w) => w.segment.is_broken(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().segment.is_broken(),
            Err(std::sync::TryLockError::WouldBlock) => false,
        };
        if broken {
            self.log_broken.store(true, Ordering::Relaxed);
        }
        broken
    }

    /// The log's directory: runs' files go there too.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes a durable commit's writes visible (`writer` held); `logged`
    /// is how much log the current segment now holds.
    pub(crate) fn publish(&self, mem: Mem, logged: u64) {
        let mut state = lock(&self.state);
        let old = std::mem::replace(&mut state.active, mem);
        state.logged = logged;
        if state.due(self.flush_bytes) {
            self.wake.notify_one();
        }
        drop(state);
        // Freeing the nodes the commit copied takes a while: not while
        // readers wait for the lock.
        drop(old);
    }

    /// Writes what is committed to LMDB and retires the log segments that
    /// held it: everything if `all`, else until less than a flush's worth
    /// is left.
    pub(crate) fn flush(&self, all: bool) -> Result<()> {
        let _one = lock(&self.flushing);
        loop {
            // A frozen layer left by a failed flush goes first.
            let pending = lock(&self.state).frozen.clone();
            let frozen = match pending {
                Some(p) => p,
                None => {
                    // Best effort, off the writer lock: if it fails, the
                    // rotation writes the new segment itself and reports.
                    let _ = wal::prepare_spare(&self.dir, segment_bytes(self.flush_bytes));
                    match self.rotate()? {
                        Some(p) => p,
                        None => return Ok(()),
                    }
                }
            };
            let mut wtxn = self.env.write_txn()?;
            let mut pending = 0usize;
            for t in Table::ALL {
                let db = self.tables.db(t);
                for (k, v) in frozen.mem.iter(t) {
                    match v {
                        Some(v) => db.put(&mut wtxn, k, v)?,
                        None => {
                            db.delete(&mut wtxn, k)?;
                        }
                    }
                    pending += k.len() + v.map_or(0, <[u8]>::len);
                    if pending >= FLUSH_CHUNK {
                        // LMDB holds a transaction's pages in memory until
                        // it commits: a large layer goes in several. Until
                        // the last one, readers still read the layer over
                        // whatever part of it LMDB has, and a crash replays
                        // the log, which is kept until then.
                        wtxn.commit()?;
                        // What it read of a run is in LMDB now; read again
                        // (until the layer goes), it maps again.
                        frozen.mem.release_run_pages();
                        wtxn = self.env.write_txn()?;
                        pending = 0;
                    }
                }
            }
            self.tables
                .log
                .put(&mut wtxn, FLUSHED, &frozen.generation.to_be_bytes())?;
            wtxn.commit()?;
            {
                let mut state = lock(&self.state);
                state.frozen = None;
                state.last_error = None;
            }
            for (g, path) in wal::segments(&self.dir).map_err(io(&self.dir))? {
                if g == frozen.generation {
                    // Twice what this one needed, so that the next segment
                    // rarely grows, up to what a flush lets it reach.
                    let size = (frozen.used * 2).clamp(1 << 20, segment_bytes(self.flush_bytes));
                    wal::recycle(&self.dir, &path, size).map_err(io(&path))?;
                } else if g < frozen.generation {
                    std::fs::remove_file(&path).map_err(io(&path))?;
                }
            }
            // A large layer's values leave the heap with it (once no
            // reader holds it); glibc keeps what they freed in its arenas,
            // where it counts in RSS for good, unless handed back.
            let large = frozen.used >= TRIM_AFTER_BYTES;
            drop(frozen);
            if large {
                crate::release_free_memory();
            }
            let state = lock(&self.state);
            if state.active.is_empty() || (!all && !state.due(self.flush_bytes)) {
                return Ok(());
            }
        }
    }

    /// Freezes the active layer and starts a new segment for what follows.
    fn rotate(&self) -> Result<Option<Frozen>> {
        let mut writer = lock(&self.writer);
        if writer.segment.is_broken() {
            // Its end is unknown: it must be replayed as it is, at restart,
            // before anything that a new segment would add.
            return Err(StoreError::Io {
                path: self.dir.display().to_string(),
                source: std::io::Error::other("the log is broken; restart the node"),
            });
        }
        // `active` cannot change while this holds the writer, so the
        // segment is created (and synced) without blocking readers.
        if lock(&self.state).active.is_empty() {
            return Ok(None);
        }
        let generation = writer.segment.generation();
        let used = writer.segment.len();
        writer.segment =
            Segment::create(&self.dir, generation + 1, segment_bytes(self.flush_bytes))
                .map_err(io(&self.dir))?;
        let mut state = lock(&self.state);
        let frozen = Frozen {
            mem: Arc::new(std::mem::take(&mut state.active)),
            generation,
            used,
        };
        state.logged = 0;
        state.frozen = Some(frozen.clone());
        Ok(Some(frozen))
    }
}

/// How far a segment is written ahead: about what a flush lets it reach.
/// A flushed layer of at least this many logged bytes hands the heap's
/// free memory back to the OS (see [`crate::release_free_memory`]): large
/// values, not the many small writes of a busy node.
const TRIM_AFTER_BYTES: u64 = 16 << 20;

fn segment_bytes(flush_bytes: usize) -> u64 {
    flush_bytes as u64 + (1 << 20)
}

/// Owns the flush thread; the last [`Store`](crate::store::Store) handle dropping
/// stops it and flushes what is left.
pub(crate) struct Handle {
    pub(crate) shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    pub(crate) fn start(shared: Shared) -> Result<Handle> {
        let shared = Arc::new(shared);
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-flush".into())
            .spawn(move || flusher(&worker))
            .map_err(|source| StoreError::Io {
                path: "store-flush thread".into(),
                source,
            })?;
        Ok(Handle {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn abandon(&self) {
        self.shared.abandon.store(true, Ordering::Relaxed);
    }
}

fn flusher(shared: &Shared) {
    loop {
        {
            let state = lock(&shared.state);
            if state.stop {
                return;
            }
            let (state, _) = shared
                .wake
                .wait_timeout_while(state, shared.flush_interval, |s| {
                    !s.stop && !s.due(shared.flush_bytes)
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.stop {
                return;
            }
        }
        if let Err(e) = shared.flush(false) {
            // Writes stay durable in the log; try again after a pause rather
            // than spin on a full disk.
            tracing::warn!(error = %e, "flushing the write-ahead log to LMDB failed");
            let mut state = lock(&shared.state);
            state.last_error = Some(e.to_string());
            let _ = shared
                .wake
                .wait_timeout_while(state, RETRY, |s| !s.stop)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if !self.shared.abandon.load(Ordering::Relaxed)
            && let Err(e) = self.shared.flush(true)
        {
            tracing::warn!(error = %e, "flushing the write-ahead log at close failed; it is replayed at the next open");
        }
    }
}
