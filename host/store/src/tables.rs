use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, WithoutTls};

use crate::error::Result;

pub(crate) type Db = Database<'static, Bytes, Bytes>;

/// Number of data tables.
pub(crate) const COUNT: usize = 16;

/// A data table. Its number is its tag in the write-ahead log, so the order
/// is part of the on-disk format: add new tables at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Table {
    Blobs,
    Apps,
    Contexts,
    Entries,
    Counts,
    Leaves,
    Merkle,
    Deltas,
    Heads,
    Private,
    Groups,
    /// Member records of groups, no longer written: membership is held
    /// once, in governance. Kept so later tables keep their log tags.
    RetiredMembers,
    Aliases,
    /// Signed governance ops of each namespace: (namespace, op id) -> bytes.
    Governance,
    /// Event handlers still to run: (context, delta id, event index) ->
    /// (method, data).
    Handlers,
    /// This node's own records that never replicate (contexts it left,
    /// blobs it holds): kind ‖ 0 ‖ key -> bytes.
    Local,
}

impl Table {
    pub(crate) const ALL: [Table; COUNT] = [
        Table::Blobs,
        Table::Apps,
        Table::Contexts,
        Table::Entries,
        Table::Counts,
        Table::Leaves,
        Table::Merkle,
        Table::Deltas,
        Table::Heads,
        Table::Private,
        Table::Groups,
        Table::RetiredMembers,
        Table::Aliases,
        Table::Governance,
        Table::Handlers,
        Table::Local,
    ];

    /// Whether the table's keys start with a context id and it holds nothing
    /// but that context's data. No wildcard on purpose: a new table must
    /// decide here, and [`PER_CONTEXT`](Self::PER_CONTEXT) follows.
    const fn per_context(self) -> bool {
        match self {
            Table::Entries
            | Table::Counts
            | Table::Leaves
            | Table::Merkle
            | Table::Deltas
            | Table::Heads
            | Table::Private
            | Table::Handlers => true,
            // `contexts` is keyed by the id alone: the context's record,
            // which `delete_context` removes last.
            Table::Blobs
            | Table::Apps
            | Table::Contexts
            | Table::Groups
            | Table::RetiredMembers
            | Table::Aliases
            | Table::Governance
            | Table::Local => false,
        }
    }

    /// The per-context tables, in table order: deleting a context sweeps its
    /// prefix in each. Computed from [`per_context`](Self::per_context) at
    /// compile time; a count other than 8 fails the build (and `cargo check`:
    /// see the `const _` below).
    pub(crate) const PER_CONTEXT: [Table; 8] = {
        let mut out = [Table::Entries; 8];
        let mut n = 0;
        let mut i = 0;
        while i < COUNT {
            if Table::ALL[i].per_context() {
                out[n] = Table::ALL[i];
                n += 1;
            }
            i += 1;
        }
        assert!(n == out.len(), "PER_CONTEXT's length is not the count");
        out
    };

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Blobs => "blobs",
            Table::Apps => "apps",
            Table::Contexts => "contexts",
            Table::Entries => "entries",
            Table::Counts => "counts",
            Table::Leaves => "leaves",
            Table::Merkle => "merkle",
            Table::Deltas => "deltas",
            Table::Heads => "heads",
            Table::Private => "private",
            Table::Groups => "groups",
            Table::RetiredMembers => "members",
            Table::Aliases => "aliases",
            Table::Governance => "governance",
            Table::Handlers => "handlers",
            Table::Local => "local",
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Table> {
        Table::ALL.get(usize::from(tag)).copied()
    }
}

// A free constant is evaluated even by `cargo check`, so a wrong count in
// `PER_CONTEXT` shows up there too, not only when building.
const _: [Table; 8] = Table::PER_CONTEXT;

/// LMDB handles of every table, plus `log`, which records how much of the
/// write-ahead log LMDB already holds. Cheap to copy.
#[derive(Clone, Copy)]
pub(crate) struct Tables {
    dbs: [Db; COUNT],
    pub(crate) log: Db,
}

impl Tables {
    pub(crate) fn create(env: &Env<WithoutTls>) -> Result<Tables> {
        let wtxn = env.write_txn()?;
        let (dbs, log) = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| {
                let mut dbs = Vec::with_capacity(COUNT);
                for t in Table::ALL {
                    dbs.push(dbo.create_database::<Bytes, Bytes>(wtxn, Some(t.name()))?);
                }
                let dbs: [_; COUNT] = dbs
                    .try_into()
                    .map_err(|_| heed::Error::Io(std::io::Error::other("table count")))?;
                let log = dbo.create_database::<Bytes, Bytes>(wtxn, Some("log"))?;
                Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit((dbs, log)))
            })?
            .unwrap_commit();
        Ok(Tables { dbs, log })
    }

    pub(crate) fn db(&self, t: Table) -> Db {
        self.dbs[t as usize]
    }
}
