//! The write-ahead log: what makes a commit durable.
//!
//! A commit appends one record to the current segment, synchronously: one
//! sequential write to blocks already allocated, where an LMDB commit writes every
//! B-tree page it touched (dozens, scattered) and syncs twice. LMDB catches
//! up later, many commits per transaction; a segment is deleted once LMDB
//! holds all of it.
//!
//! Segment `wal/<generation>.log` is a run of records:
//!
//! ```text
//! len: u32 LE | crc32(generation ‖ payload): u32 LE | payload (len bytes)
//! payload = op*, op = table: u8 | key len: u32 LE | key | 0 (delete) | 1 | value len: u32 LE | value
//! ```
//!
//! Reading stops at the first record that is cut short or fails its
//! checksum: the tail of a write that never finished, which was never
//! acknowledged either.
//!
//! A large record (a migration may rewrite a whole state) is not held in
//! memory whole: its payload is written ahead in parts as it is built
//! ([`Segment::stream`]), past the end of the segment, and its header last
//! ([`Segment::append`]). Until the header is written, the record's place
//! holds zeros or a record of an older generation, which reading stops at.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::tables::Table;

const HEADER: usize = 8;

/// A flushed segment kept for the next one to write over. Its old records
/// fail the checksum, which covers the generation.
const SPARE: &str = "spare";

/// One write of a record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Op<'a> {
    pub(crate) table: Table,
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
}

/// Appends a write to a record's payload.
pub(crate) fn push(payload: &mut Vec<u8>, table: Table, key: &[u8], value: Option<&[u8]>) {
    payload.push(table as u8);
    push_bytes(payload, key);
    match value {
        None => payload.push(0),
        Some(v) => {
            payload.push(1);
            push_bytes(payload, v);
        }
    }
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys and values are bounded far below 4 GiB by LMDB and the runtime.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The writes of a record's payload, in order.
pub(crate) fn ops(payload: &[u8]) -> Result<Vec<Op<'_>>, StoreError> {
    let corrupt = |detail: &str| StoreError::Corrupt {
        table: "wal",
        detail: detail.to_string(),
    };
    let mut out = Vec::new();
    let mut rest = payload;
    while let Some((&tag, tail)) = rest.split_first() {
        let table = Table::from_tag(tag).ok_or_else(|| corrupt("unknown table"))?;
        let (key, tail) = take_bytes(tail).ok_or_else(|| corrupt("short key"))?;
        let (value, tail) = match tail.split_first() {
            Some((0, tail)) => (None, tail),
            Some((1, tail)) => {
                let (v, tail) = take_bytes(tail).ok_or_else(|| corrupt("short value"))?;
                (Some(v), tail)
            }
            _ => return Err(corrupt("bad op kind")),
        };
        out.push(Op { table, key, value });
        rest = tail;
    }
    Ok(out)
}

fn take_bytes(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = input.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

fn checksum(generation: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// The segment being appended to.
pub(crate) struct Segment {
    generation: u64,
    file: File,
    len: u64,
    /// A failed append that could not be undone: the segment's end is
    /// unknown, so nothing more may be appended (until a restart replays it).
    broken: bool,
    frame: Vec<u8>,
    /// Payload bytes of the record being built, written ahead of it.
    streamed: u64,
    /// The checksum of those, seeded with the generation.
    crc: crc32fast::Hasher,
}

impl Segment {
    /// Creates segment `generation` in `dir`, durably. It takes the place of
    /// the spare if there is one, so that appends overwrite blocks already
    /// written: a synchronous write then has no file size or extent to
    /// journal, and here costs about half as much as one that grows the file.
    /// Without a spare (a new node) the first `ahead` bytes are written now.
    pub(crate) fn create(dir: &Path, generation: u64, ahead: u64) -> std::io::Result<Segment> {
        let path = path(dir, generation);
        let reused = std::fs::rename(dir.join(SPARE), &path).is_ok();
        // Every write returns once on disk (O_DSYNC): one system call per
        // record, and measurably quicker here than `write` + `fdatasync`.
        let file = OpenOptions::new()
            .create(true)
            .truncate(!reused)
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .open(&path)?;
        if !reused {
            zero_fill(&file, 0, ahead)?;
            use std::io::Seek;
            (&file).seek(std::io::SeekFrom::Start(0))?;
        }
        // The new name must survive a crash as well as the records in it.
        File::open(dir)?.sync_all()?;
        Ok(Segment {
            generation,
            file,
            len: 0,
            broken: false,
            frame: Vec::new(),
            streamed: 0,
            crc: crc32fast::Hasher::new(),
        })
    }

    /// Whether a failed append left the segment's end unknown.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Bytes of records written.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    fn check(&self) -> std::io::Result<()> {
        if self.broken {
            return Err(std::io::Error::other(
                "an earlier write to the log failed; restart the node to recover",
            ));
        }
        Ok(())
    }

    /// Writes `part`, the next part of the payload of the record being
    /// built, ahead of the record, and waits until it is on disk. It counts
    /// only once [`append`](Self::append) writes the rest and the header;
    /// [`discard`](Self::discard) forgets it.
    pub(crate) fn stream(&mut self, part: &[u8]) -> std::io::Result<()> {
        self.check()?;
        if self.streamed == 0 {
            self.crc = crc32fast::Hasher::new();
            self.crc.update(&self.generation.to_le_bytes());
        }
        let at = self.len + HEADER as u64 + self.streamed;
        self.file.write_all_at(part, at)?;
        self.crc.update(part);
        self.streamed += part.len() as u64;
        Ok(())
    }

    /// Whether part of a record was streamed and awaits `append`.
    pub(crate) fn streaming(&self) -> bool {
        self.streamed > 0
    }

    /// Forgets what was streamed of a record that will not be appended:
    /// it lies past the end, and the next record is written over it.
    pub(crate) fn discard(&mut self) {
        self.streamed = 0;
    }

    /// Appends a record (whose payload is what was streamed, then
    /// `payload`) and waits until it is on disk.
    pub(crate) fn append(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.check()?;
        let total = self.streamed + payload.len() as u64;
        let Ok(len) = u32::try_from(total) else {
            self.streamed = 0;
            return Err(std::io::Error::other("a commit of over 4 GiB"));
        };
        let written = if self.streamed == 0 {
            // One write for header and payload: a small record is one
            // synchronous write.
            self.frame.clear();
            self.frame.extend_from_slice(&len.to_le_bytes());
            self.frame
                .extend_from_slice(&checksum(self.generation, payload).to_le_bytes());
            self.frame.extend_from_slice(payload);
            self.file.write_all_at(&self.frame, self.len)
        } else {
            // The rest of the payload, then the header: the record counts
            // only once all of it is on disk.
            let mut crc = self.crc.clone();
            crc.update(payload);
            let mut header = [0u8; HEADER];
            header[..4].copy_from_slice(&len.to_le_bytes());
            header[4..].copy_from_slice(&crc.finalize().to_le_bytes());
            self.file
                .write_all_at(payload, self.len + HEADER as u64 + self.streamed)
                .and_then(|()| self.file.write_all_at(&header, self.len))
        };
        self.streamed = 0;
        match written {
            Ok(()) => {
                self.len += HEADER as u64 + total;
                Ok(())
            }
            Err(e) => {
                // Cut the half-written record off so a later record is not
                // read after it, nor it replayed though reported failed.
                let undone = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data());
                self.broken = undone.is_err();
                if !self.broken {
                    use std::io::Seek;
                    self.broken = self.file.seek(std::io::SeekFrom::Start(self.len)).is_err();
                }
                Err(e)
            }
        }
    }
}

pub(crate) fn path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{generation:016x}.log"))
}

/// Keeps the flushed segment at `path` as the spare, all of its first `size`
/// bytes written (with zeros past its end), or deletes it if there is a spare
/// already.
pub(crate) fn recycle(dir: &Path, path: &Path, size: u64) -> std::io::Result<()> {
    let spare = dir.join(SPARE);
    if spare.exists() {
        return std::fs::remove_file(path);
    }
    let file = OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    if len > size {
        // One that grew large (while flushes failed) is cut back.
        file.set_len(size)?;
        file.sync_all()?;
    } else {
        zero_fill(&file, len, size)?;
    }
    std::fs::rename(path, spare)
}

/// Makes a spare of `size` written bytes if there is none, so that the next
/// segment does not have to be written ahead while commits wait for it.
pub(crate) fn prepare_spare(dir: &Path, size: u64) -> std::io::Result<()> {
    let spare = dir.join(SPARE);
    if spare.exists() {
        return Ok(());
    }
    // Written under another name: a crash leaves no short spare behind
    // (a leftover is overwritten next time; recovery reads only `*.log`).
    let staged = dir.join("spare.tmp");
    let file = File::create(&staged)?;
    zero_fill(&file, 0, size)?;
    std::fs::rename(&staged, &spare)?;
    File::open(dir)?.sync_all()
}

/// Writes zeros over `[from, to)` of `file` and syncs it; nothing if empty.
fn zero_fill(mut file: &File, from: u64, to: u64) -> std::io::Result<()> {
    if from >= to {
        return Ok(());
    }
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(from))?;
    let zeros = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        at += n as u64;
    }
    file.sync_all()
}

/// The segments in `dir`, oldest first.
pub(crate) fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let generation = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| u64::from_str_radix(n, 16).ok());
        if let Some(generation) = generation {
            out.push((generation, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The payloads of the whole records of a segment, in order.
pub(crate) fn records(path: &Path, generation: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut out = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((header, tail)) = rest.split_first_chunk::<HEADER>() {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        // A record is never empty: zeros are space written ahead.
        let Some(len) = usize::try_from(len)
            .ok()
            .filter(|l| *l > 0 && *l <= tail.len())
        else {
            break;
        };
        let (payload, tail) = tail.split_at(len);
        if checksum(generation, payload) != crc {
            break;
        }
        out.push(payload.to_vec());
        rest = tail;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_and_reject_garbage() {
        let mut p = Vec::new();
        push(&mut p, Table::Entries, b"k1", Some(b"v1"));
        push(&mut p, Table::Heads, b"k2", None);
        push(&mut p, Table::Blobs, b"", Some(b""));
        let got = ops(&p).unwrap();
        assert_eq!(
            got,
            vec![
                Op {
                    table: Table::Entries,
                    key: b"k1",
                    value: Some(b"v1")
                },
                Op {
                    table: Table::Heads,
                    key: b"k2",
                    value: None
                },
                Op {
                    table: Table::Blobs,
                    key: b"",
                    value: Some(b"")
                },
            ]
        );
        assert!(ops(&p[..p.len() - 1]).is_err());
        assert!(ops(&[200, 0, 0, 0, 0, 0]).is_err());
        assert!(ops(&[0, 0, 0, 0, 0, 7]).is_err());
    }

    #[test]
    fn reading_stops_at_a_torn_or_foreign_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 7, 4096).unwrap();
        s.append(b"first").unwrap();
        s.append(b"second").unwrap();
        let file = path(dir.path(), 7);
        assert_eq!(
            records(&file, 7).unwrap(),
            vec![b"first".to_vec(), b"second".to_vec()]
        );
        // A record of another generation (a recycled or copied file) is not
        // this segment's.
        assert!(records(&file, 8).unwrap().is_empty());
        // A torn tail: the header promises more than is there.
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2, 3, 4, 9]).unwrap();
        assert_eq!(records(&file, 7).unwrap().len(), 2);
        // A flipped bit in a complete record ends the log there.
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[HEADER + 2] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert!(records(&file, 7).unwrap().is_empty());
        assert_eq!(segments(dir.path()).unwrap(), vec![(7, file.clone())]);
    }

    #[test]
    fn a_record_written_ahead_in_parts_counts_once_whole_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), 5);
        let mut s = Segment::create(dir.path(), 5, 64).unwrap();
        s.append(b"first").unwrap();
        s.stream(b"par").unwrap();
        s.stream(b"ts of ").unwrap();
        // Not a record yet: a crash here loses it, and only it.
        assert_eq!(records(&file, 5).unwrap(), vec![b"first".to_vec()]);
        s.append(b"one").unwrap();
        s.stream(b"dropped").unwrap();
        s.discard();
        s.append(b"last").unwrap();
        assert_eq!(
            records(&file, 5).unwrap(),
            vec![
                b"first".to_vec(),
                b"parts of one".to_vec(),
                b"last".to_vec()
            ]
        );
    }

    #[test]
    fn a_prepared_spare_is_written_ahead_and_taken_by_the_next_segment() {
        let dir = tempfile::tempdir().unwrap();
        prepare_spare(dir.path(), 64 << 10).unwrap();
        // A second call keeps the spare there is.
        prepare_spare(dir.path(), 1).unwrap();
        assert!(segments(dir.path()).unwrap().is_empty());
        let mut s = Segment::create(dir.path(), 3, 0).unwrap();
        let file = path(dir.path(), 3);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 64 << 10);
        assert!(!dir.path().join(SPARE).exists());
        s.append(b"record").unwrap();
        assert_eq!(records(&file, 3).unwrap(), vec![b"record".to_vec()]);
        // Without a spare, the segment itself is written ahead.
        let s = Segment::create(dir.path(), 4, 8192).unwrap();
        assert_eq!(std::fs::metadata(path(dir.path(), 4)).unwrap().len(), 8192);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_recycled_segment_reads_as_empty_then_holds_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 1, 4096).unwrap();
        s.append(b"old record").unwrap();
        drop(s);
        recycle(dir.path(), &path(dir.path(), 1), 4096).unwrap();
        assert!(segments(dir.path()).unwrap().is_empty());
        let mut s = Segment::create(dir.path(), 2, 0).unwrap();
        let file = path(dir.path(), 2);
        assert!(std::fs::metadata(&file).unwrap().len() >= 4096);
        assert!(records(&file, 2).unwrap().is_empty());
        s.append(b"new").unwrap();
        assert_eq!(records(&file, 2).unwrap(), vec![b"new".to_vec()]);
    }
}
