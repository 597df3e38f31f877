//! Reads shared by snapshots and write transactions.

use heed::RoTxn;
use mero_crdt::{ContextId, DeltaId, Hash, SignedDelta};

use crate::records::{ApplicationRecord, ContextMeta, GroupRecord, MemberRecord, decode};
use crate::tables::Tables;
use crate::{Result, StoreError, key};

pub(crate) fn application(
    txn: &RoTxn,
    t: &Tables,
    id: &[u8; 32],
) -> Result<Option<ApplicationRecord>> {
    t.apps.get(txn, id)?.map(|b| decode("apps", b)).transpose()
}

pub(crate) fn applications(txn: &RoTxn, t: &Tables) -> Result<Vec<ApplicationRecord>> {
    t.apps
        .iter(txn)?
        .map(|item| decode("apps", item?.1))
        .collect()
}

pub(crate) fn blob(txn: &RoTxn, t: &Tables, hash: &Hash) -> Result<Option<Vec<u8>>> {
    Ok(t.blobs.get(txn, hash)?.map(<[u8]>::to_vec))
}

pub(crate) fn context_meta(
    txn: &RoTxn,
    t: &Tables,
    ctx: &ContextId,
) -> Result<Option<ContextMeta>> {
    t.contexts
        .get(txn, &ctx.0)?
        .map(|b| decode("contexts", b))
        .transpose()
}

pub(crate) fn contexts(txn: &RoTxn, t: &Tables) -> Result<Vec<ContextMeta>> {
    t.contexts
        .iter(txn)?
        .map(|item| decode("contexts", item?.1))
        .collect()
}

pub(crate) fn delta(
    txn: &RoTxn,
    t: &Tables,
    ctx: &ContextId,
    id: &DeltaId,
) -> Result<Option<SignedDelta>> {
    t.deltas
        .get(txn, &key(&[&ctx.0, &id.0]))?
        // An empty value is a stub: known from a snapshot, body not kept.
        .filter(|b| !b.is_empty())
        .map(|b| {
            SignedDelta::from_bytes(b).map_err(|e| StoreError::Corrupt {
                table: "deltas",
                detail: e.to_string(),
            })
        })
        .transpose()
}

pub(crate) fn heads(txn: &RoTxn, t: &Tables, ctx: &ContextId) -> Result<Vec<DeltaId>> {
    let mut out = Vec::new();
    for item in t.heads.prefix_iter(txn, &ctx.0)? {
        let (k, _) = item?;
        let id = <[u8; 32]>::try_from(&k[32..]).map_err(|_| StoreError::Corrupt {
            table: "heads",
            detail: "bad key".into(),
        })?;
        out.push(DeltaId(id));
    }
    Ok(out)
}

pub(crate) fn private_get(
    txn: &RoTxn,
    t: &Tables,
    ctx: &ContextId,
    k: &[u8],
) -> Result<Option<Vec<u8>>> {
    Ok(t.private.get(txn, &key(&[&ctx.0, k]))?.map(<[u8]>::to_vec))
}

pub(crate) fn group(txn: &RoTxn, t: &Tables, id: &[u8; 32]) -> Result<Option<GroupRecord>> {
    t.groups
        .get(txn, id)?
        .map(|b| decode("groups", b))
        .transpose()
}

pub(crate) fn groups(txn: &RoTxn, t: &Tables) -> Result<Vec<GroupRecord>> {
    t.groups
        .iter(txn)?
        .map(|item| decode("groups", item?.1))
        .collect()
}

pub(crate) fn member(
    txn: &RoTxn,
    t: &Tables,
    group: &[u8; 32],
    who: &[u8; 32],
) -> Result<Option<MemberRecord>> {
    t.members
        .get(txn, &key(&[group, who]))?
        .map(|b| decode("members", b))
        .transpose()
}

pub(crate) fn members(
    txn: &RoTxn,
    t: &Tables,
    group: &[u8; 32],
) -> Result<Vec<([u8; 32], MemberRecord)>> {
    let mut out = Vec::new();
    for item in t.members.prefix_iter(txn, group)? {
        let (k, v) = item?;
        let who = <[u8; 32]>::try_from(&k[32..]).map_err(|_| StoreError::Corrupt {
            table: "members",
            detail: "bad key".into(),
        })?;
        out.push((who, decode("members", v)?));
    }
    Ok(out)
}

pub(crate) fn alias(txn: &RoTxn, t: &Tables, kind: &str, name: &str) -> Result<Option<[u8; 32]>> {
    Ok(t.aliases
        .get(txn, &alias_key(kind, name))?
        .and_then(|v| <[u8; 32]>::try_from(v).ok()))
}

pub(crate) fn aliases(txn: &RoTxn, t: &Tables, kind: &str) -> Result<Vec<(String, [u8; 32])>> {
    let prefix = alias_key(kind, "");
    let mut out = Vec::new();
    for item in t.aliases.prefix_iter(txn, &prefix)? {
        let (k, v) = item?;
        if let (Ok(name), Ok(id)) = (
            std::str::from_utf8(&k[prefix.len()..]),
            <[u8; 32]>::try_from(v),
        ) {
            out.push((name.to_string(), id));
        }
    }
    Ok(out)
}

pub(crate) fn alias_key(kind: &str, name: &str) -> Vec<u8> {
    key(&[kind.as_bytes(), b"\0", name.as_bytes()])
}

pub(crate) fn has_delta(txn: &RoTxn, t: &Tables, ctx: &ContextId, id: &DeltaId) -> Result<bool> {
    Ok(t.deltas.get(txn, &key(&[&ctx.0, &id.0]))?.is_some())
}

pub(crate) fn delta_ids(txn: &RoTxn, t: &Tables, ctx: &ContextId) -> Result<Vec<DeltaId>> {
    let mut out = Vec::new();
    for item in t.deltas.prefix_iter(txn, &ctx.0)? {
        let (k, _) = item?;
        let id = <[u8; 32]>::try_from(&k[32..]).map_err(|_| StoreError::Corrupt {
            table: "deltas",
            detail: "bad key".into(),
        })?;
        out.push(DeltaId(id));
    }
    Ok(out)
}

/// Entries of a context in storage order, after the raw key `after` (as
/// returned in the previous page), at most `limit`.
pub(crate) fn entries_page(
    txn: &RoTxn,
    t: &Tables,
    ctx: &ContextId,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let start = match after {
        Some(a) => std::ops::Bound::Excluded(key(&[&ctx.0, a])),
        None => std::ops::Bound::Included(ctx.0.to_vec()),
    };
    let range = (
        start.as_ref().map(Vec::as_slice),
        std::ops::Bound::Unbounded,
    );
    for item in t.entries.range(txn, &range)? {
        let (k, v) = item?;
        if !k.starts_with(&ctx.0) || out.len() >= limit {
            break;
        }
        out.push((k[32..].to_vec(), v.to_vec()));
    }
    Ok(out)
}

pub(crate) fn governance(txn: &RoTxn, t: &Tables, ns: &[u8; 32]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for item in t.governance.prefix_iter(txn, ns)? {
        out.push(item?.1.to_vec());
    }
    Ok(out)
}

pub(crate) fn pending_handlers(
    txn: &RoTxn,
    t: &Tables,
    limit: usize,
) -> Result<Vec<crate::PendingHandler>> {
    let mut out = Vec::new();
    for item in t.handlers.iter(txn)?.take(limit) {
        let (k, v) = item?;
        let corrupt = |detail: String| StoreError::Corrupt {
            table: "handlers",
            detail,
        };
        if k.len() != 68 {
            return Err(corrupt(format!("a key of {} bytes", k.len())));
        }
        let (method, data): (String, Vec<u8>) =
            borsh::from_slice(v).map_err(|e| corrupt(e.to_string()))?;
        let mut ctx = [0u8; 32];
        let mut delta = [0u8; 32];
        let mut index = [0u8; 4];
        ctx.copy_from_slice(&k[..32]);
        delta.copy_from_slice(&k[32..64]);
        index.copy_from_slice(&k[64..]);
        out.push(crate::PendingHandler {
            context: ContextId(ctx),
            delta,
            index: u32::from_be_bytes(index),
            method,
            data,
        });
    }
    Ok(out)
}
