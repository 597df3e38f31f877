use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, WithoutTls};

use crate::Result;

pub(crate) type Db = Database<'static, Bytes, Bytes>;

const NAMES: [&str; 15] = [
    "blobs",
    "apps",
    "contexts",
    "entries",
    "counts",
    "leaves",
    "merkle",
    "deltas",
    "heads",
    "private",
    "groups",
    "members",
    "aliases",
    "governance",
    "handlers",
];

/// Handles of every table; cheap to copy.
#[derive(Clone, Copy)]
pub(crate) struct Tables {
    pub(crate) blobs: Db,
    pub(crate) apps: Db,
    pub(crate) contexts: Db,
    pub(crate) entries: Db,
    pub(crate) counts: Db,
    pub(crate) leaves: Db,
    pub(crate) merkle: Db,
    pub(crate) deltas: Db,
    pub(crate) heads: Db,
    pub(crate) private: Db,
    pub(crate) groups: Db,
    pub(crate) members: Db,
    pub(crate) aliases: Db,
    /// Signed governance ops of each namespace: (namespace, op id) -> bytes.
    pub(crate) governance: Db,
    /// Event handlers still to run: (context, delta id, event index) ->
    /// (method, data).
    pub(crate) handlers: Db,
}

impl Tables {
    pub(crate) fn create(env: &Env<WithoutTls>) -> Result<Tables> {
        let wtxn = env.write_txn()?;
        let [
            blobs,
            apps,
            contexts,
            entries,
            counts,
            leaves,
            merkle,
            deltas,
            heads,
            private,
            groups,
            members,
            aliases,
            governance,
            handlers,
        ] = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| {
                let mut dbs = Vec::with_capacity(NAMES.len());
                for name in NAMES {
                    dbs.push(dbo.create_database::<Bytes, Bytes>(wtxn, Some(name))?);
                }
                let dbs: [_; 15] = dbs
                    .try_into()
                    .map_err(|_| heed::Error::Io(std::io::Error::other("table count")))?;
                Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit(dbs))
            })?
            .unwrap_commit();
        Ok(Tables {
            blobs,
            apps,
            contexts,
            entries,
            counts,
            leaves,
            merkle,
            deltas,
            heads,
            private,
            groups,
            members,
            aliases,
            governance,
            handlers,
        })
    }
}
