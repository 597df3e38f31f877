//! Aliases: human names for contexts and applications, node-local.

use mero_crdt::ContextId;

use crate::blocking::blocking;
use crate::error::{NodeError, Result};
use crate::node::Node;

/// Longest alias.
pub const MAX_ALIAS_LEN: usize = 50;

impl Node {
    /// Points alias `name` of `kind` (`context` or `application`) at `id`.
    pub async fn create_alias(&self, kind: &'static str, name: &str, id: [u8; 32]) -> Result<()> {
        if name.is_empty()
            || name.len() > MAX_ALIAS_LEN
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(NodeError::bad(
                "InvalidAlias",
                format!(
                    "an alias is 1 to {MAX_ALIAS_LEN} characters of A-Z, a-z, 0-9, '.', '_' and '-'"
                ),
            ));
        }
        let snap = self.inner.store.snapshot()?;
        let exists = match kind {
            "context" => snap.context_meta(&ContextId(id))?.is_some(),
            _ => snap.application(&id)?.is_some(),
        };
        if !exists {
            return Err(NodeError::not_found(
                "NotFound",
                format!("no {kind} with that id"),
            ));
        }
        if snap.alias(kind, name)?.is_some_and(|old| old != id) {
            return Err(NodeError::conflict(
                "AliasExists",
                format!("alias `{name}` already names another {kind}"),
            ));
        }
        drop(snap);
        let store = self.inner.store.clone();
        let name = name.to_string();
        blocking(move || {
            let mut w = store.write()?;
            w.put_alias(kind, &name, &id)?;
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// What alias `name` of `kind` stands for.
    pub fn lookup_alias(&self, kind: &str, name: &str) -> Result<Option<[u8; 32]>> {
        Ok(self.inner.store.snapshot()?.alias(kind, name)?)
    }

    /// Every alias of `kind`.
    pub fn aliases(&self, kind: &str) -> Result<Vec<(String, [u8; 32])>> {
        Ok(self.inner.store.snapshot()?.aliases(kind)?)
    }

    /// Removes an alias; returns whether it existed.
    pub async fn delete_alias(&self, kind: &'static str, name: &str) -> Result<bool> {
        let store = self.inner.store.clone();
        let name = name.to_string();
        blocking(move || {
            let mut w = store.write()?;
            let existed = w.delete_alias(kind, &name)?;
            w.commit()?;
            Ok(existed)
        })
        .await
    }
}
