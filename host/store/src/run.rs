//! Runs: one large commit's writes (a migration rewriting a whole state),
//! sorted once and held in files rather than in memory.
//!
//! A run is built by writing records to one unnamed file per table in the
//! log directory, in key order (sorted a chunk at a time and merged if
//! they do not come so), then mapped read-only, with an index of where
//! each record starts. Its bytes live in the page cache, which the
//! kernel may write back and evict, not in the node's heap: the only
//! memory a run of a million writes holds is its index (8 bytes a record).
//! Pages a reader touches are mapped into the process until
//! [`Run::release_pages`] drops them again (the flush does so as it goes).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{Mmap, UncheckedAdvice};

use crate::error::{Result, StoreError};
use crate::tables::{COUNT, Table};

/// A record: a key and its value, `None` for a deletion.
pub(crate) type Record<'a> = (&'a [u8], Option<&'a [u8]>);

/// One large commit's writes: per table, records sorted by key, one per
/// key.
pub(crate) struct Run {
    tables: [Sorted; COUNT],
    /// What its files hold.
    pub(crate) bytes: usize,
}

impl Run {
    pub(crate) fn table(&self, t: Table) -> &Sorted {
        &self.tables[t as usize]
    }

    pub(crate) fn tables(&self) -> impl Iterator<Item = &Sorted> {
        self.tables.iter()
    }

    /// Unmaps the pages readers have touched: they stay in the page cache
    /// (or on disk), and a later read maps them again.
    pub(crate) fn release_pages(&self) {
        for s in &self.tables {
            s.release_pages();
        }
    }
}

/// How many reads of a table's file between two releases of its pages: a
/// pass over a run (the re-hash, the flush) then keeps a few MiB of it
/// mapped, not all of it.
const RELEASE_EVERY: usize = if cfg!(test) { 64 } else { 1 << 14 };

/// Records pushed before they are sorted and written out as a chunk (tests
/// make many).
const CHUNK_BYTES: usize = if cfg!(test) { 4 << 10 } else { 4 << 20 };

/// Records in one file, in key order, one per key: `key len: u32 | key |
/// 0 (deleted) or 1 | value len: u32 | value`, and where each starts.
#[derive(Default)]
pub(crate) struct Sorted {
    map: Option<Mmap>,
    starts: Vec<usize>,
    /// Reads since the pages were last released.
    reads: AtomicUsize,
}

/// The record at `at` of `data`, written by `put_record`, so the lengths
/// in it hold.
fn record_at(data: &[u8], at: usize) -> Record<'_> {
    let len = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&data[at..at + 4]);
        u32::from_le_bytes(b) as usize
    };
    let klen = len(at);
    let key = &data[at + 4..at + 4 + klen];
    let tag = at + 4 + klen;
    let value = (data[tag] == 1).then(|| {
        let vlen = len(tag + 1);
        &data[tag + 5..tag + 5 + vlen]
    });
    (key, value)
}

/// Appends a record to `out`; returns its length.
fn put_record(out: &mut impl Write, k: &[u8], v: Option<&[u8]>) -> std::io::Result<usize> {
    // Keys and values are bounded far below 4 GiB (as in the log).
    out.write_all(&(k.len() as u32).to_le_bytes())?;
    out.write_all(k)?;
    match v {
        None => {
            out.write_all(&[0])?;
            Ok(5 + k.len())
        }
        Some(v) => {
            out.write_all(&[1])?;
            out.write_all(&(v.len() as u32).to_le_bytes())?;
            out.write_all(v)?;
            Ok(9 + k.len() + v.len())
        }
    }
}

/// Drops the pages of `map` the process has mapped.
fn release(map: &Mmap) {
    // SAFETY: a shared mapping of a file only its run can write (it has no
    // name, and the run holds its only handle): dropping its pages loses
    // nothing, a later read finds the same bytes in the file.
    #[allow(unsafe_code, reason = "madvise on a shared file mapping")]
    let released = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
    if let Err(e) = released {
        // Only memory is at stake, never data.
        tracing::debug!(error = %e, "could not release a run's pages");
    }
}

/// Maps `file`, which no one else can reach.
fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the file has no name and its run holds its only handle, so
    // nothing else can change it under the map.
    #[allow(unsafe_code, reason = "mapping a file no one else can reach")]
    unsafe {
        Mmap::map(file)
    }
}

impl Sorted {
    fn data(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    fn record(&self, at: usize) -> Record<'_> {
        if self.reads.fetch_add(1, Ordering::Relaxed) % RELEASE_EVERY == RELEASE_EVERY - 1 {
            self.release_pages();
        }
        record_at(self.data(), at)
    }

    fn release_pages(&self) {
        if let Some(map) = &self.map {
            release(map);
        }
    }

    pub(crate) fn key_at(&self, i: usize) -> Option<&[u8]> {
        self.starts.get(i).map(|&at| self.record(at).0)
    }

    pub(crate) fn last_key(&self) -> Option<&[u8]> {
        self.starts.last().map(|&at| self.record(at).0)
    }

    pub(crate) fn get(&self, k: &[u8]) -> Option<Option<&[u8]>> {
        let i = self
            .starts
            .binary_search_by(|&at| self.record(at).0.cmp(k))
            .ok()?;
        Some(self.record(self.starts[i]).1)
    }

    pub(crate) fn range<'a>(&'a self, from: Bound<&[u8]>) -> impl Iterator<Item = Record<'a>> + 'a {
        let first = match from {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.starts.partition_point(|&at| self.record(at).0 < k),
            Bound::Excluded(k) => self.starts.partition_point(|&at| self.record(at).0 <= k),
        };
        self.starts[first..].iter().map(|&at| self.record(at))
    }
}

/// A table's records while they are pushed: written straight to the file
/// while they come in key order (as a caller writing a sorted map pushes
/// them); after the first that does not, sorted a chunk at a time in
/// memory and written out, the chunks merged when the run is sealed.
struct Writing {
    dir: PathBuf,
    file: BufWriter<File>,
    len: usize,
    /// Where each record written out starts in the file.
    starts: Vec<usize>,
    /// The last key written straight out, while every push has come in
    /// order (`chunks` is empty until one does not).
    last: Vec<u8>,
    /// Where each chunk written out starts, as an index into `starts`.
    chunks: Vec<usize>,
    /// The current chunk's records, in push order, and where each starts.
    chunk: Vec<u8>,
    chunk_starts: Vec<usize>,
}

impl Writing {
    fn new(dir: &Path) -> std::io::Result<Writing> {
        Ok(Writing {
            dir: dir.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, tempfile::tempfile_in(dir)?),
            len: 0,
            starts: Vec::new(),
            last: Vec::new(),
            chunks: Vec::new(),
            chunk: Vec::new(),
            chunk_starts: Vec::new(),
        })
    }

    fn push(&mut self, k: &[u8], v: Option<&[u8]>) -> std::io::Result<()> {
        if self.chunks.is_empty() {
            if self.starts.is_empty() || k > &self.last[..] {
                self.starts.push(self.len);
                self.len += put_record(&mut self.file, k, v)?;
                self.last.clear();
                self.last.extend_from_slice(k);
                return Ok(());
            }
            // Out of order: what is written so far is the first chunk.
            self.chunks.push(0);
            self.last = Vec::new();
        }
        self.chunk_starts.push(self.chunk.len());
        put_record(&mut self.chunk, k, v)?;
        if self.chunk.len() >= CHUNK_BYTES {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Sorts the current chunk (of equal keys the last pushed stays) and
    /// writes it out.
    fn write_chunk(&mut self) -> std::io::Result<()> {
        if self.chunk_starts.is_empty() {
            return Ok(());
        }
        let chunk = &self.chunk;
        let key = |at: usize| record_at(chunk, at).0;
        // Stable: of equal keys, the last pushed is the last.
        self.chunk_starts.sort_by(|a, b| key(*a).cmp(key(*b)));
        self.chunks.push(self.starts.len());
        let order = &self.chunk_starts;
        for (i, &at) in order.iter().enumerate() {
            if order.get(i + 1).is_some_and(|&next| key(next) == key(at)) {
                continue;
            }
            let (k, v) = record_at(chunk, at);
            self.starts.push(self.len);
            self.len += put_record(&mut self.file, k, v)?;
        }
        self.chunk.clear();
        self.chunk_starts.clear();
        Ok(())
    }

    /// The records, in one sorted file, mapped.
    fn seal(mut self) -> std::io::Result<Sorted> {
        self.write_chunk()?;
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        let map = map(&file)?;
        let mut sorted = Sorted {
            map: Some(map),
            starts: self.starts,
            reads: AtomicUsize::new(0),
        };
        if self.chunks.len() > 1 && !chunks_in_order(&sorted, &self.chunks) {
            sorted = merge_chunks(&sorted, &self.chunks, &self.dir)?;
        }
        sorted.release_pages();
        Ok(sorted)
    }
}

/// Whether each chunk of `sorted` starts after the one before it ends.
fn chunks_in_order(sorted: &Sorted, chunks: &[usize]) -> bool {
    chunks
        .iter()
        .skip(1)
        .all(|&c| sorted.key_at(c - 1) < sorted.key_at(c))
}

/// Merges the sorted chunks of `sorted` into one sorted file: of equal
/// keys, the later chunk's record stays.
fn merge_chunks(sorted: &Sorted, chunks: &[usize], dir: &Path) -> std::io::Result<Sorted> {
    let mut file = BufWriter::with_capacity(1 << 16, tempfile::tempfile_in(dir)?);
    let data = sorted.data();
    let ends = chunks.iter().copied().skip(1).chain([sorted.starts.len()]);
    // Each chunk's next record (its index in `starts`) and the chunk's end.
    let mut next: Vec<(usize, usize)> = chunks.iter().copied().zip(ends).collect();
    let head = |(i, end): (usize, usize)| (i < end).then(|| record_at(data, sorted.starts[i]));
    let mut starts = Vec::with_capacity(sorted.starts.len());
    let mut len = 0;
    loop {
        // The least key; of equal keys, the latest chunk's record.
        let mut best: Option<Record<'_>> = None;
        for &n in &next {
            if let Some(r) = head(n)
                && best.is_none_or(|b| r.0 <= b.0)
            {
                best = Some(r);
            }
        }
        let Some((k, v)) = best else { break };
        for n in &mut next {
            if head(*n).is_some_and(|r| r.0 == k) {
                n.0 += 1;
            }
        }
        starts.push(len);
        len += put_record(&mut file, k, v)?;
        if starts.len() % RELEASE_EVERY == 0 {
            sorted.release_pages();
        }
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    Ok(Sorted {
        map: Some(map(&file)?),
        starts,
        reads: AtomicUsize::new(0),
    })
}

/// Collects a run's writes, in any order, into files under a directory.
pub(crate) struct RunBuilder<'d> {
    dir: &'d Path,
    tables: [Option<Writing>; COUNT],
    /// The first write that failed: sealing reports it.
    failed: Option<std::io::Error>,
}

impl<'d> RunBuilder<'d> {
    /// A run whose files are made in `dir` (on the store's disk: a
    /// temporary directory may be memory).
    pub(crate) fn new(dir: &'d Path) -> RunBuilder<'d> {
        RunBuilder {
            dir,
            tables: Default::default(),
            failed: None,
        }
    }

    /// Makes room in `t`'s index for `records` more records.
    pub(crate) fn reserve(&mut self, t: Table, records: usize) {
        if records == 0 {
            // No file for a table with nothing to hold.
            return;
        }
        self.slot(t);
        if let Some(w) = &mut self.tables[t as usize] {
            w.starts.reserve_exact(records);
        }
    }

    /// `t`'s records, their file made on first use.
    fn slot(&mut self, t: Table) -> Option<&mut Writing> {
        if self.failed.is_some() {
            return None;
        }
        let slot = &mut self.tables[t as usize];
        if slot.is_none() {
            match Writing::new(self.dir) {
                Ok(w) => *slot = Some(w),
                Err(e) => {
                    self.failed = Some(e);
                    return None;
                }
            }
        }
        slot.as_mut()
    }

    pub(crate) fn push(&mut self, t: Table, k: &[u8], v: Option<&[u8]>) {
        if let Some(w) = self.slot(t)
            && let Err(e) = w.push(k, v)
        {
            self.failed = Some(e);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tables.iter().all(Option::is_none)
    }

    /// The run, mapped and sorted.
    pub(crate) fn seal(self) -> Result<Run> {
        let io = |source| StoreError::Io {
            path: format!("a run's file in {}", self.dir.display()),
            source,
        };
        if let Some(e) = self.failed {
            return Err(io(e));
        }
        let mut bytes = 0;
        let mut tables: [Sorted; COUNT] = Default::default();
        for (slot, writing) in tables.iter_mut().zip(self.tables) {
            if let Some(w) = writing {
                *slot = w.seal().map_err(io)?;
                bytes += slot.data().len() + slot.starts.len() * std::mem::size_of::<usize>();
            }
        }
        Ok(Run { tables, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_sorts_its_chunks_into_one_file_and_keeps_the_last_write_of_each_key() {
        let dir = tempfile::tempdir().unwrap();
        // Keys sharing 32 bytes, some equal in the next eight, some
        // repeated, some prefixes of others.
        let mut b = RunBuilder::new(dir.path());
        let mut expected = std::collections::BTreeMap::new();
        let mut x: u32 = 7;
        for i in 0..2000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut k = vec![9u8; 32];
            k.extend_from_slice(&(x % 97).to_be_bytes());
            k.extend_from_slice(&[0; 4][..(x % 5) as usize]);
            if x.is_multiple_of(3) {
                k.extend_from_slice(&(x % 11).to_be_bytes());
            }
            let v = i.to_be_bytes();
            b.push(Table::Leaves, &k, Some(&v));
            expected.insert(k, v.to_vec());
        }
        // In key order, over many chunks: written as they come.
        for i in 0..2000u32 {
            b.push(
                Table::Entries,
                &i.to_be_bytes(),
                (i % 3 > 0).then_some(&b"v"[..]),
            );
        }
        let run = b.seal().unwrap();
        let entries = run.table(Table::Entries);
        assert_eq!(entries.get(&7u32.to_be_bytes()), Some(Some(&b"v"[..])));
        assert_eq!(entries.get(&9u32.to_be_bytes()), Some(None));
        assert_eq!(entries.get(&2000u32.to_be_bytes()), None);
        assert_eq!(
            entries
                .range(Bound::Excluded(&1997u32.to_be_bytes()))
                .map(|(k, _)| k.to_vec())
                .collect::<Vec<_>>(),
            vec![
                1998u32.to_be_bytes().to_vec(),
                1999u32.to_be_bytes().to_vec()
            ]
        );
        let read = |run: &Run| -> Vec<(Vec<u8>, Vec<u8>)> {
            run.table(Table::Leaves)
                .range(Bound::Unbounded)
                .map(|(k, v)| (k.to_vec(), v.unwrap_or_default().to_vec()))
                .collect()
        };
        let expected: Vec<_> = expected.into_iter().collect();
        assert_eq!(read(&run), expected);
        // Released pages read the same again.
        run.release_pages();
        assert_eq!(read(&run), expected);
        assert!(
            run.table(Table::Counts)
                .range(Bound::Unbounded)
                .next()
                .is_none()
        );
        // Nothing left behind in the directory: the files have no names.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    proptest::proptest! {
        /// Whatever the order and repeats of the writes, a run reads as a
        /// map where the last write of each key stands.
        #[test]
        fn a_run_reads_as_the_last_write_of_each_key(
            writes in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 0..6), proptest::option::of(0u32..1000)),
                1..400,
            ),
            from in proptest::collection::vec(0u8..4, 0..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut b = RunBuilder::new(dir.path());
            let mut model = std::collections::BTreeMap::new();
            for (k, v) in &writes {
                // Padded so that a few hundred writes make several chunks.
                let mut key = k.clone();
                key.resize(k.len() + 40, 0);
                let v = v.map(|v| v.to_be_bytes().to_vec());
                b.push(Table::Leaves, &key, v.as_deref());
                model.insert(key, v);
            }
            let run = b.seal().unwrap();
            let t = run.table(Table::Leaves);
            let got: Vec<_> = t
                .range(Bound::Unbounded)
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                .collect();
            let want: Vec<_> = model.clone().into_iter().collect();
            proptest::prop_assert_eq!(got, want);
            for (k, v) in &model {
                proptest::prop_assert_eq!(t.get(k), Some(v.as_deref()));
            }
            let after: Vec<_> = t.range(Bound::Excluded(&from)).map(|(k, _)| k.to_vec()).collect();
            let want: Vec<_> = model
                .range::<[u8], _>((Bound::Excluded(&from[..]), Bound::Unbounded))
                .map(|(k, _)| k.clone())
                .collect();
            proptest::prop_assert_eq!(after, want);
        }
    }

    #[test]
    fn a_run_that_cannot_write_its_files_fails_when_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let mut b = RunBuilder::new(&gone);
        b.push(Table::Entries, b"k", Some(b"v"));
        assert!(matches!(b.seal(), Err(StoreError::Io { .. })));
    }
}
