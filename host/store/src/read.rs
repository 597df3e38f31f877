//! Reads shared by snapshots and write transactions.

use mero_crdt::{ContextId, DeltaId, Hash, SignedDelta};

use crate::error::{Result, StoreError};
use crate::keys::{alias_key, key, local_key};
use crate::memtable::View;
use crate::records::{ApplicationRecord, ContextMeta, GroupRecord, PendingHandler, decode};
use crate::tables::Table;

/// Every record of table `t` whose key starts with `prefix`, decoded.
fn decoded<T: borsh::BorshDeserialize>(v: &View, t: Table, prefix: &[u8]) -> Result<Vec<T>> {
    let mut out = Vec::new();
    v.prefix(t, prefix, |_, value| {
        out.push(decode(t.name(), value)?);
        Ok(true)
    })?;
    Ok(out)
}

/// The record under `k` in table `t`, decoded.
fn record<T: borsh::BorshDeserialize>(v: &View, t: Table, k: &[u8]) -> Result<Option<T>> {
    v.get(t, k)?.map(|b| decode(t.name(), b)).transpose()
}

/// The 32-byte ids that follow `prefix` in the keys of table `t`.
fn ids_after(v: &View, t: Table, prefix: &[u8]) -> Result<Vec<[u8; 32]>> {
    let mut out = Vec::new();
    v.prefix(t, prefix, |k, _| {
        let id = <[u8; 32]>::try_from(&k[prefix.len()..]).map_err(|_| StoreError::Corrupt {
            table: t.name(),
            detail: "bad key".into(),
        })?;
        out.push(id);
        Ok(true)
    })?;
    Ok(out)
}

pub(crate) fn application(v: &View, id: &[u8; 32]) -> Result<Option<ApplicationRecord>> {
    record(v, Table::Apps, id)
}

pub(crate) fn applications(v: &View) -> Result<Vec<ApplicationRecord>> {
    decoded(v, Table::Apps, &[])
}

pub(crate) fn blob(v: &View, hash: &Hash) -> Result<Option<Vec<u8>>> {
    Ok(v.get(Table::Blobs, hash)?.map(<[u8]>::to_vec))
}

pub(crate) fn context_meta(v: &View, ctx: &ContextId) -> Result<Option<ContextMeta>> {
    record(v, Table::Contexts, &ctx.0)
}

pub(crate) fn contexts(v: &View) -> Result<Vec<ContextMeta>> {
    decoded(v, Table::Contexts, &[])
}

pub(crate) fn delta(v: &View, ctx: &ContextId, id: &DeltaId) -> Result<Option<SignedDelta>> {
    v.get(Table::Deltas, &key(&[&ctx.0, &id.0]))?
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

pub(crate) fn heads(v: &View, ctx: &ContextId) -> Result<Vec<DeltaId>> {
    Ok(ids_after(v, Table::Heads, &ctx.0)?
        .into_iter()
        .map(DeltaId)
        .collect())
}

pub(crate) fn private_get(v: &View, ctx: &ContextId, k: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(v.get(Table::Private, &key(&[&ctx.0, k]))?
        .map(<[u8]>::to_vec))
}

/// How many private-storage values a context has here, and their bytes
/// (keys and values).
pub(crate) fn private_usage(v: &View, ctx: &ContextId) -> Result<(u64, u64)> {
    let (mut count, mut bytes) = (0u64, 0u64);
    v.prefix(Table::Private, &ctx.0, |k, value| {
        count += 1;
        bytes = bytes.saturating_add((k.len().saturating_sub(32) + value.len()) as u64);
        Ok(true)
    })?;
    Ok((count, bytes))
}

pub(crate) fn group(v: &View, id: &[u8; 32]) -> Result<Option<GroupRecord>> {
    record(v, Table::Groups, id)
}

pub(crate) fn groups(v: &View) -> Result<Vec<GroupRecord>> {
    decoded(v, Table::Groups, &[])
}

pub(crate) fn alias(v: &View, kind: &str, name: &str) -> Result<Option<[u8; 32]>> {
    Ok(v.get(Table::Aliases, &alias_key(kind, name))?
        .and_then(|v| <[u8; 32]>::try_from(v).ok()))
}

pub(crate) fn local(v: &View, kind: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(v.get(Table::Local, &local_key(kind, key))?
        .map(<[u8]>::to_vec))
}

pub(crate) fn locals(v: &View, kind: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let prefix = local_key(kind, &[]);
    let mut out = Vec::new();
    v.prefix(Table::Local, &prefix, |k, value| {
        out.push((k[prefix.len()..].to_vec(), value.to_vec()));
        Ok(true)
    })?;
    Ok(out)
}

/// The kind of node-local record a delta refused for good is kept under:
/// context id ‖ delta id -> the signed delta.
pub(crate) const REFUSED_DELTA: &str = "refused-delta";

pub(crate) fn refused_delta(
    v: &View,
    ctx: &ContextId,
    id: &DeltaId,
) -> Result<Option<SignedDelta>> {
    let k = [ctx.0.as_slice(), id.0.as_slice()].concat();
    v.get(Table::Local, &local_key(REFUSED_DELTA, &k))?
        .map(|b| {
            SignedDelta::from_bytes(b).map_err(|e| StoreError::Corrupt {
                table: "local",
                detail: e.to_string(),
            })
        })
        .transpose()
}

pub(crate) fn refused_deltas(v: &View, ctx: &ContextId) -> Result<Vec<SignedDelta>> {
    let prefix = local_key(REFUSED_DELTA, &ctx.0);
    let mut out = Vec::new();
    v.prefix(Table::Local, &prefix, |_, value| {
        out.push(
            SignedDelta::from_bytes(value).map_err(|e| StoreError::Corrupt {
                table: "local",
                detail: e.to_string(),
            })?,
        );
        Ok(true)
    })?;
    Ok(out)
}

pub(crate) fn aliases(v: &View, kind: &str) -> Result<Vec<(String, [u8; 32])>> {
    let prefix = alias_key(kind, "");
    let mut out = Vec::new();
    v.prefix(Table::Aliases, &prefix, |k, value| {
        if let (Ok(name), Ok(id)) = (
            std::str::from_utf8(&k[prefix.len()..]),
            <[u8; 32]>::try_from(value),
        ) {
            out.push((name.to_string(), id));
        }
        Ok(true)
    })?;
    Ok(out)
}

pub(crate) fn has_delta(v: &View, ctx: &ContextId, id: &DeltaId) -> Result<bool> {
    Ok(v.get(Table::Deltas, &key(&[&ctx.0, &id.0]))?.is_some())
}

pub(crate) fn delta_ids(v: &View, ctx: &ContextId) -> Result<Vec<DeltaId>> {
    Ok(ids_after(v, Table::Deltas, &ctx.0)?
        .into_iter()
        .map(DeltaId)
        .collect())
}

/// Entries of a context in storage order, after the raw key `after` (as
/// returned in the previous page), at most `limit`.
pub(crate) fn entries_page(
    v: &View,
    ctx: &ContextId,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let start = match after {
        Some(a) => std::ops::Bound::Excluded(key(&[&ctx.0, a])),
        None => std::ops::Bound::Included(ctx.0.to_vec()),
    };
    v.scan(
        Table::Entries,
        start.as_ref().map(Vec::as_slice),
        &ctx.0,
        |k, value| {
            if out.len() >= limit {
                return Ok(false);
            }
            out.push((k[32..].to_vec(), value.to_vec()));
            Ok(true)
        },
    )?;
    Ok(out)
}

pub(crate) fn governance(v: &View, ns: &[u8; 32]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    v.prefix(Table::Governance, ns, |_, value| {
        out.push(value.to_vec());
        Ok(true)
    })?;
    Ok(out)
}

pub(crate) fn pending_handlers(
    v: &View,
    limit: usize,
    skip: &dyn Fn(&ContextId) -> bool,
) -> Result<Vec<PendingHandler>> {
    let mut out = Vec::new();
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "handlers",
        detail,
    };
    v.prefix(Table::Handlers, &[], |k, value| {
        if out.len() >= limit {
            return Ok(false);
        }
        if k.len() != 68 {
            return Err(corrupt(format!("a key of {} bytes", k.len())));
        }
        let mut ctx = [0u8; 32];
        ctx.copy_from_slice(&k[..32]);
        if skip(&ContextId(ctx)) {
            return Ok(true);
        }
        let (method, data): (String, Vec<u8>) =
            borsh::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
        let mut delta = [0u8; 32];
        let mut index = [0u8; 4];
        delta.copy_from_slice(&k[32..64]);
        index.copy_from_slice(&k[64..]);
        out.push(PendingHandler {
            context: ContextId(ctx),
            delta,
            index: u32::from_be_bytes(index),
            method,
            data,
        });
        Ok(true)
    })?;
    Ok(out)
}
