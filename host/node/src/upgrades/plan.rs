//! Deciding what an upgrade does, from what the two versions declare: swap
//! the code (same state layout), migrate (a newer state version with a
//! migration from the running one), or refuse, with the reason. Pure: the
//! tests at the end cover every refusal.

use std::collections::BTreeSet;

use mero_runtime::{AppDescription, Field};

/// What an upgrade does to each context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Same state layout: the new code reads the state as it is.
    CodeOnly,
    /// Run the target's migration from state version `from`.
    Migrate {
        /// The running state version.
        from: u32,
    },
}

/// Why an upgrade is refused before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlanError {
    /// The target is another app, not another version of this one.
    #[error(
        "the target is package `{target}`, but the group runs `{current}`: an upgrade moves to another version of the same package"
    )]
    PackageMismatch { current: String, target: String },
    /// The target's state version is older.
    #[error(
        "the target declares state version {to}, older than the running {from}: schema downgrades are not supported"
    )]
    Downgrade { from: u32, to: u32 },
    /// Same state version, different layout.
    #[error(
        "the target changes the state layout ({diff}) without bumping its state version ({version}): bump `#[app::state(version = ..)]` and add a migration"
    )]
    LayoutChangedWithoutVersionBump { version: u32, diff: String },
    /// A newer state version with no way there.
    #[error(
        "the target declares state version {to} but no migration from the running state version {from}"
    )]
    MissingMigration { from: u32, to: u32 },
    /// The target turns an authored collection into one anyone may write.
    #[error(
        "identity downgrade forbidden: field `{field}` is an authored collection ({from}) in the running app and `{to}` in the target; its entries belong to their authors, and only they can rewrite them"
    )]
    IdentityDowngrade {
        field: String,
        from: String,
        to: String,
    },
    /// The migration reads a layout the running app does not have.
    #[error(
        "the target's migration from state version {from} reads a state layout the running app does not have ({diff})"
    )]
    OldStateMismatch { from: u32, diff: String },
}

impl PlanError {
    /// A stable name, for the API.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            PlanError::PackageMismatch { .. } => "PackageMismatch",
            PlanError::Downgrade { .. } => "StateDowngrade",
            PlanError::LayoutChangedWithoutVersionBump { .. } => "LayoutChangedWithoutVersionBump",
            PlanError::MissingMigration { .. } => "MissingMigration",
            PlanError::OldStateMismatch { .. } => "OldStateMismatch",
            PlanError::IdentityDowngrade { .. } => "IdentityDowngrade",
        }
    }
}

/// What moving from `current` to `target` does. `force_code_only` swaps the
/// code even across state versions, but only if the layouts are equal.
pub(crate) fn plan(
    current: &AppDescription,
    target: &AppDescription,
    force_code_only: bool,
) -> Result<Plan, PlanError> {
    if current.package != target.package {
        return Err(PlanError::PackageMismatch {
            current: current.package.clone(),
            target: target.package.clone(),
        });
    }
    let (from, to) = (current.state_version, target.state_version);
    if to < from {
        return Err(PlanError::Downgrade { from, to });
    }
    if let Some((field, from, to)) = identity_downgrade(&current.schema, &target.schema) {
        return Err(PlanError::IdentityDowngrade { field, from, to });
    }
    let layout = diff(&current.schema, &target.schema);
    if to == from || force_code_only {
        return match layout {
            None => Ok(Plan::CodeOnly),
            Some(diff) => Err(PlanError::LayoutChangedWithoutVersionBump { version: to, diff }),
        };
    }
    let Some(migration) = target.migration_from(from) else {
        return Err(PlanError::MissingMigration { from, to });
    };
    // A migration that declares what it reads must read what runs; one
    // that declares nothing reads no old field.
    if !migration.reads.is_empty()
        && let Some(diff) = diff(&current.schema, &migration.reads)
    {
        return Err(PlanError::OldStateMismatch { from, diff });
    }
    Ok(Plan::Migrate { from })
}

/// Whether a collection type, as an app's schema writes it, is authored.
fn is_authored(kind: &str) -> bool {
    let name = kind.split('<').next().unwrap_or(kind);
    let name = name.rsplit("::").next().unwrap_or(name);
    name.starts_with("Authored")
}

/// A field authored in `current` that `target` keeps under the same name
/// as a collection of another kind: (field, current kind, target kind).
fn identity_downgrade(current: &[Field], target: &[Field]) -> Option<(String, String, String)> {
    current
        .iter()
        .filter(|(_, kind)| is_authored(kind))
        .find_map(|(name, kind)| {
            target
                .iter()
                .find(|(n, k)| n == name && !is_authored(k))
                .map(|(_, k)| (name.clone(), kind.clone(), k.clone()))
        })
}

/// How two layouts differ, for humans; `None` if they are the same (field
/// order does not matter: fields are addressed by name).
fn diff(a: &[Field], b: &[Field]) -> Option<String> {
    let a: BTreeSet<&Field> = a.iter().collect();
    let b: BTreeSet<&Field> = b.iter().collect();
    if a == b {
        return None;
    }
    let show = |f: &&Field| format!("{}: {}", f.0, f.1);
    let gone: Vec<String> = a.difference(&b).map(show).collect();
    let new: Vec<String> = b.difference(&a).map(show).collect();
    let mut parts = Vec::new();
    if !gone.is_empty() {
        parts.push(format!("has {} where expected", gone.join(", ")));
    }
    if !new.is_empty() {
        parts.push(format!("{} instead", new.join(", ")));
    }
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mero_runtime::Migration;

    use super::*;

    fn field(name: &str, kind: &str) -> Field {
        (name.to_string(), kind.to_string())
    }

    fn app(state_version: u32, schema: Vec<Field>, migrations: Vec<Migration>) -> AppDescription {
        AppDescription {
            package: "com.example.suite".into(),
            version: format!("{state_version}.0.0"),
            methods: BTreeMap::new(),
            state_version,
            schema,
            migrations,
        }
    }

    fn v1() -> AppDescription {
        app(
            1,
            vec![field("items", "Map"), field("counter", "Lww<u64>")],
            vec![],
        )
    }

    fn migration(from: u32, reads: Vec<Field>) -> Migration {
        Migration {
            from_version: from,
            method: "migrate".into(),
            reads,
            checked: false,
        }
    }

    #[test]
    fn an_authored_field_turned_into_a_plain_one_is_refused() {
        let v1 = app(1, vec![field("wiki", "AuthoredMap<String,String>")], vec![]);
        let plain = app(
            2,
            vec![field("wiki", "UnorderedMap<String,LwwRegister<String>>")],
            vec![migration(1, vec![])],
        );
        let e = plan(&v1, &plain, false).unwrap_err();
        assert_eq!(e.kind(), "IdentityDowngrade");
        assert!(
            e.to_string().contains("identity downgrade forbidden"),
            "{e}"
        );
        // Another value type, still authored, is an ordinary migration.
        let retyped = app(
            2,
            vec![field(
                "wiki",
                "mero_sdk::collections::AuthoredMap<String,Page,String>",
            )],
            vec![migration(1, vec![])],
        );
        assert_eq!(plan(&v1, &retyped, false), Ok(Plan::Migrate { from: 1 }));
    }

    #[test]
    fn same_layout_swaps_the_code() {
        assert_eq!(plan(&v1(), &v1(), false), Ok(Plan::CodeOnly));
    }

    #[test]
    fn field_order_does_not_matter() {
        let mut reordered = v1();
        reordered.schema.reverse();
        assert_eq!(plan(&v1(), &reordered, false), Ok(Plan::CodeOnly));
    }

    #[test]
    fn a_newer_state_runs_its_migration() {
        let v2 = app(
            2,
            vec![field("items", "Map"), field("notes", "Lww<String>")],
            vec![migration(1, v1().schema)],
        );
        assert_eq!(plan(&v1(), &v2, false), Ok(Plan::Migrate { from: 1 }));
    }

    #[test]
    fn a_layout_change_without_a_bump_is_refused() {
        let changed = app(
            1,
            vec![field("items", "Map"), field("counter", "Lww<String>")],
            vec![],
        );
        let e = plan(&v1(), &changed, false).unwrap_err();
        assert_eq!(e.kind(), "LayoutChangedWithoutVersionBump");
        assert!(e.to_string().contains("counter: Lww<String>"), "{e}");
    }

    #[test]
    fn forcing_code_only_still_needs_the_same_layout() {
        let v2 = app(
            2,
            vec![field("notes", "Lww<String>")],
            vec![migration(1, vec![])],
        );
        let e = plan(&v1(), &v2, true).unwrap_err();
        assert_eq!(e.kind(), "LayoutChangedWithoutVersionBump");
        let same = app(2, v1().schema, vec![]);
        assert_eq!(plan(&v1(), &same, true), Ok(Plan::CodeOnly));
    }

    #[test]
    fn refusals_name_their_reason() {
        let other = AppDescription {
            package: "com.example.other".into(),
            ..v1()
        };
        assert_eq!(
            plan(&v1(), &other, false).unwrap_err().kind(),
            "PackageMismatch"
        );

        let v3 = app(3, vec![], vec![migration(2, vec![])]);
        assert_eq!(
            plan(&v1(), &v3, false),
            Err(PlanError::MissingMigration { from: 1, to: 3 })
        );
        assert_eq!(
            plan(&v3, &v1(), false),
            Err(PlanError::Downgrade { from: 3, to: 1 })
        );

        let drifted = app(2, vec![], vec![migration(1, vec![field("items", "Map")])]);
        let e = plan(&v1(), &drifted, false).unwrap_err();
        assert_eq!(e.kind(), "OldStateMismatch");
        assert!(e.to_string().contains("counter"), "{e}");
    }
}
