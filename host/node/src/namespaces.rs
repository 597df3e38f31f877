//! Namespaces as the API shows them: creating one (its governance and its
//! first context), listing, deleting, and who may subscribe to a group.

use mero_crdt::ContextId;
use mero_store::{ContextMeta, GroupRecord};

use crate::authz;
use crate::blocking::blocking;
use crate::error::{NodeError, Result};
use crate::governance::AppInfo;
use crate::node::Node;

/// A namespace with its counts and contexts.
#[derive(Debug, Clone)]
pub struct NamespaceInfo {
    /// The group record.
    pub group: GroupRecord,
    /// Its members.
    pub members: usize,
    /// Its direct subgroups.
    pub subgroups: usize,
    /// Its contexts.
    pub contexts: Vec<ContextMeta>,
    /// The version of its application, if installed.
    pub app_version: Option<String>,
    /// Its governance heads here: the ops this node's next delta names.
    pub governance_heads: Vec<[u8; 32]>,
}

impl Node {
    /// Creates a namespace running `application` with this node as its
    /// creator (admin), and its first context (running `init` with
    /// `init_params`). Returns the namespace and context ids.
    pub async fn create_namespace(
        &self,
        application: &[u8; 32],
        name: Option<String>,
        app_key: Option<[u8; 32]>,
        init_params: Vec<u8>,
    ) -> Result<([u8; 32], ContextId)> {
        let app = self.application(application)?.record;
        if let Some(key) = app_key
            && key != app.blob
        {
            return Err(NodeError::bad(
                "InvalidAppKey",
                format!(
                    "appKey {} is not the component of application {}",
                    hex::encode(key),
                    hex::encode(app.id)
                ),
            ));
        }
        let id = self
            .inner
            .members
            .create(
                name.clone(),
                AppInfo {
                    id: app.id,
                    blob: app.blob,
                    size: app.size,
                    package: app.package.clone(),
                    version: app.version.clone(),
                    source: app.source.clone(),
                },
            )
            .await?;
        match self
            .create_context(application, &id, init_params, None, name)
            .await
        {
            Ok(ctx) => Ok((id, ctx)),
            Err(e) => {
                // The namespace exists only with its first context.
                let store = self.inner.store.clone();
                self.inner.members.forget(&id);
                let rollback = blocking(move || {
                    let mut w = store.write()?;
                    w.delete_group(&id)?;
                    w.delete_governance(&id)?;
                    w.commit()?;
                    Ok(())
                })
                .await;
                Err(after_rollback(&id, e, rollback))
            }
        }
    }

    fn namespace_info(
        &self,
        snap: &mero_store::Snapshot,
        group: GroupRecord,
        all: &[ContextMeta],
    ) -> Result<NamespaceInfo> {
        let governance = self.inner.members.get(&group.id);
        let subgroups = snap
            .groups()?
            .iter()
            .filter(|g| g.parent == Some(group.id))
            .count();
        let contexts = all
            .iter()
            .filter(|c| c.group == Some(group.id))
            .cloned()
            .collect();
        let app_version = snap.application(&group.application)?.map(|a| a.version);
        Ok(NamespaceInfo {
            members: governance.as_ref().map_or(0, |s| s.members.len()),
            governance_heads: governance
                .map(|s| s.heads.iter().copied().collect())
                .unwrap_or_default(),
            group,
            subgroups,
            contexts,
            app_version,
        })
    }

    /// Every namespace this node knows.
    pub fn namespaces(&self) -> Result<Vec<NamespaceInfo>> {
        let snap = self.inner.store.snapshot()?;
        let contexts = snap.contexts()?;
        let mut groups: Vec<GroupRecord> = snap
            .groups()?
            .into_iter()
            .filter(|g| g.parent.is_none())
            .collect();
        groups.sort_by_key(|g| g.created_at_millis);
        groups
            .into_iter()
            .map(|g| self.namespace_info(&snap, g, &contexts))
            .collect()
    }

    /// One namespace (404 if unknown).
    pub fn namespace(&self, id: &[u8; 32]) -> Result<NamespaceInfo> {
        let snap = self.inner.store.snapshot()?;
        let group = snap
            .group(id)?
            .filter(|g| g.parent.is_none())
            .ok_or_else(|| NodeError::not_found("NamespaceNotFound", "Namespace not found"))?;
        let contexts = snap.contexts()?;
        self.namespace_info(&snap, group, &contexts)
    }

    /// Deletes a namespace, its subgroups and their contexts from this node.
    /// Returns whether it existed.
    pub async fn delete_namespace(&self, id: &[u8; 32]) -> Result<bool> {
        let snap = self.inner.store.snapshot()?;
        if snap.group(id)?.filter(|g| g.parent.is_none()).is_none() {
            return Ok(false);
        }
        let groups = snap.groups()?;
        let mut doomed = vec![*id];
        let mut i = 0;
        while let Some(g) = doomed.get(i).copied() {
            doomed.extend(groups.iter().filter(|c| c.parent == Some(g)).map(|c| c.id));
            i += 1;
        }
        let contexts: Vec<ContextId> = snap
            .contexts()?
            .iter()
            .filter(|c| c.group.is_some_and(|g| doomed.contains(&g)))
            .map(|c| c.id)
            .collect();
        drop(snap);
        for ctx in contexts {
            self.inner.exec.delete_context(ctx).await?;
        }
        let store = self.inner.store.clone();
        blocking(move || {
            let mut w = store.write()?;
            for g in &doomed {
                w.delete_group(g)?;
                w.delete_governance(g)?;
            }
            w.commit()?;
            Ok(())
        })
        .await?;
        self.inner.members.forget(id);
        Ok(true)
    }

    /// Whether a client of this node may subscribe to group `group`: this
    /// node is one of its members.
    pub fn check_subscribe_group(&self, group: &[u8; 32]) -> Result<()> {
        let ns = self
            .inner
            .members
            .containing_group(group)
            .ok_or_else(|| NodeError::not_found("GroupNotFound", "Group not found"))?;
        Ok(authz::may_see_group(&ns, &self.public_key(), group)?)
    }
}

/// The error of a namespace creation whose first context failed: the
/// original one if the namespace was undone, else one naming both failures
/// (a namespace without a context is left behind, for the operator to
/// delete), logged as an error.
fn after_rollback(id: &[u8; 32], original: NodeError, rollback: Result<()>) -> NodeError {
    match rollback {
        Ok(()) => original,
        Err(r) => {
            let ns = hex::encode(id);
            tracing::error!(namespace = %ns, error = %original, rollback = %r,
                "creating a namespace failed and undoing it failed too");
            NodeError::Internal(format!(
                "creating namespace {ns} failed ({original}), and undoing it failed too \
                 ({r}): it remains without a context; delete it"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rollback_is_an_error_naming_both_failures() {
        let original = NodeError::bad("InitFailed", "init trapped");
        let e = after_rollback(
            &[0xab; 32],
            original,
            Err(NodeError::Internal("the map is full".into())),
        );
        assert_eq!(e.kind(), "InternalError");
        let m = e.to_string();
        for part in ["init trapped", "the map is full", &"ab".repeat(32)] {
            assert!(m.contains(part), "{m} lacks {part}");
        }
    }

    #[test]
    fn a_rollback_that_worked_leaves_the_original_error() {
        let e = after_rollback(
            &[1; 32],
            NodeError::bad("InitFailed", "init trapped"),
            Ok(()),
        );
        assert_eq!(
            (e.kind(), e.to_string()),
            ("InitFailed", "init trapped".into())
        );
    }
}
