//! `meroctl group upgrade`: move a group (or, cascading, its subtree) to
//! another version of its application, see how it stands on this node and
//! across the members, retry a failed one, abort a cascade.

use std::io::IsTerminal as _;
use std::time::Duration;

use clap::Subcommand;
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mero_api::Data;
use mero_api::upgrade::{
    AbortMigrationResponse, CascadeStatusEntry, GroupUpgradeStatus, MigrationStatusResponse,
    UpgradeGroupRequest, UpgradeGroupResponse,
};
use serde::Serialize;

use crate::client::{Client, ClientError, NoBody};
use crate::output::{Format, Output, Report, kv, list, or_dash};

#[derive(Subcommand)]
pub(crate) enum UpgradeCmd {
    /// Upgrades the group's contexts to another version of their app: each is
    /// migrated and checked on this node first; a failure changes nothing.
    #[command(
        after_help = "Example:\n  meroctl --node node1 group upgrade trigger <GROUP_ID> --target-application-id <APP_ID>"
    )]
    Trigger {
        /// Group id (hex).
        group: String,
        /// The application version to move to.
        #[arg(long)]
        target_application_id: String,
        /// Upgrade every group below it that runs the same app too, group
        /// by group in the background.
        #[arg(long)]
        cascade: bool,
        /// Swap the code across state versions (refused unless the layouts are equal).
        #[arg(long)]
        force_code_only: bool,
        /// With --cascade: show progress and wait until every group
        /// completed (exit status 0) or one failed or was aborted (1).
        #[arg(long, requires = "cascade")]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 600, requires = "wait")]
        timeout: u64,
    },
    /// Every group of the subtree with an upgrade or in a cascade, and where
    /// it stands on this node.
    #[command(
        after_help = "Example:\n  meroctl --node node1 group upgrade cascade-status <NAMESPACE_ID>"
    )]
    CascadeStatus {
        /// Namespace (or group) id (hex).
        namespace: String,
    },
    /// Where every member of the namespace stands, from their signed reports.
    #[command(
        after_help = "Example:\n  meroctl --node node1 group upgrade migration-status <NAMESPACE_ID>"
    )]
    MigrationStatus {
        /// Namespace id (hex).
        namespace: String,
    },
    /// Stops the cascades of the subtree on every node: groups not yet
    /// committed stay on their version; committed ones complete.
    #[command(after_help = "Example:\n  meroctl --node node1 group upgrade abort <NAMESPACE_ID>")]
    Abort {
        /// Namespace (or group) id (hex).
        namespace: String,
    },
    /// The group's upgrade as this node sees it.
    Status {
        /// Group id (hex).
        group: String,
    },
    /// Runs a failed upgrade again.
    Retry {
        /// Group id (hex).
        group: String,
    },
}

/// `upgrade status` when there is none.
#[derive(serde::Serialize)]
struct NoUpgrade;

impl Report for NoUpgrade {
    fn table(&self) -> Table {
        kv(&[("Upgrade", "No active upgrade in progress".into())])
    }
}

pub(crate) async fn run(client: &Client, out: &Output, cmd: UpgradeCmd) -> Result<(), ClientError> {
    match cmd {
        UpgradeCmd::Trigger {
            group,
            target_application_id,
            cascade,
            force_code_only,
            wait,
            timeout,
        } => {
            let body = UpgradeGroupRequest {
                target_application_id,
                cascade,
                force_code_only,
            };
            let done: Data<UpgradeGroupResponse> = client
                .post(&format!("/admin-api/groups/{group}/upgrade"), &body)
                .await?;
            if !wait {
                return out.write(&done.data);
            }
            let entries =
                wait_for_cascade(client, out, &group, Duration::from_secs(timeout)).await?;
            let failed = entries
                .iter()
                .filter(|e| e.upgrade.status != "completed")
                .count();
            out.write(&CascadeStatus(entries))?;
            if failed > 0 {
                return Err(ClientError::Usage(format!(
                    "the cascade did not complete: {failed} group(s) failed or were aborted"
                )));
            }
            Ok(())
        }
        UpgradeCmd::CascadeStatus { namespace } => {
            let status: Data<Vec<CascadeStatusEntry>> = client
                .get(&format!("/admin-api/groups/{namespace}/cascade-status"))
                .await?;
            out.write(&CascadeStatus(status.data))
        }
        UpgradeCmd::MigrationStatus { namespace } => {
            let status: MigrationStatusResponse = client
                .get(&format!("/admin-api/groups/{namespace}/migration-status"))
                .await?;
            out.write(&status)
        }
        UpgradeCmd::Abort { namespace } => {
            let done: AbortMigrationResponse = client
                .post(
                    &format!("/admin-api/groups/{namespace}/migration/abort"),
                    &NoBody {},
                )
                .await?;
            out.write(&done)
        }
        UpgradeCmd::Status { group } => {
            let status: Data<Option<GroupUpgradeStatus>> = client
                .get(&format!("/admin-api/groups/{group}/upgrade/status"))
                .await?;
            match status.data {
                Some(s) => out.write(&s),
                None => out.write(&NoUpgrade),
            }
        }
        UpgradeCmd::Retry { group } => {
            let done: Data<UpgradeGroupResponse> = client
                .post(
                    &format!("/admin-api/groups/{group}/upgrade/retry"),
                    &NoBody {},
                )
                .await?;
            out.write(&done.data)
        }
    }
}

/// Polls `cascade-status` until no group is in progress, drawing a bar
/// of the groups settled (on stderr, when it is a terminal and the output
/// is a table); returns the last answer.
async fn wait_for_cascade(
    client: &Client,
    out: &Output,
    ns: &str,
    timeout: Duration,
) -> Result<Vec<CascadeStatusEntry>, ClientError> {
    let bar = if out.format() == Format::Human && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} groups {msg}") {
        bar.set_style(style);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status: Data<Vec<CascadeStatusEntry>> = client
            .get(&format!("/admin-api/groups/{ns}/cascade-status"))
            .await?;
        let entries = status.data;
        let settled = entries
            .iter()
            .filter(|e| e.upgrade.status != "in_progress")
            .count();
        bar.set_length(entries.len() as u64);
        bar.set_position(settled as u64);
        let swapped: u32 = entries
            .iter()
            .filter_map(|e| e.upgrade.local_contexts_swapped)
            .sum();
        bar.set_message(format!("({swapped} contexts swapped here)"));
        if !entries.is_empty() && settled == entries.len() {
            bar.finish_and_clear();
            return Ok(entries);
        }
        if tokio::time::Instant::now() >= deadline {
            bar.finish_and_clear();
            return Err(ClientError::Usage(format!(
                "the cascade had not settled after {}s: {settled}/{} groups",
                timeout.as_secs(),
                entries.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `cascade-status`: the list itself in JSON, a row per group as a table.
#[derive(Serialize)]
#[serde(transparent)]
struct CascadeStatus(Vec<CascadeStatusEntry>);

impl Report for CascadeStatus {
    fn table(&self) -> Table {
        list(
            &["Group ID", "Status", "To", "Swapped", "Failed", "Error"],
            &self.0,
            |e| {
                let u = &e.upgrade;
                vec![
                    e.group_id.clone(),
                    u.status.clone(),
                    format!("{} (state v{})", u.to_version, u.to_state_version),
                    format!(
                        "{}/{}",
                        u.local_contexts_swapped.unwrap_or(0),
                        u.local_contexts_total.unwrap_or(0)
                    ),
                    count(u.local_contexts_failed),
                    or_dash(u.error.as_deref()),
                ]
            },
        )
    }
}

impl Report for MigrationStatusResponse {
    fn table(&self) -> Table {
        let r = &self.rollup;
        let mut t = kv(&[
            ("Target state version", self.target_version.to_string()),
            ("Members", self.expected_members.to_string()),
            (
                "Rollup",
                format!(
                    "{} migrated, {} in progress, {} failed, {} unknown",
                    r.migrated, r.in_progress, r.failed, r.unknown
                ),
            ),
            ("All migrated", r.all_migrated.to_string()),
            (
                "Fleet completed at",
                self.fleet_completed_at
                    .map_or_else(|| "-".into(), |t| t.to_string()),
            ),
        ]);
        let rows = list(
            &[
                "Member",
                "State",
                "Schema",
                "Residue",
                "Authored left",
                "Failure",
            ],
            &self.members,
            |m| {
                let rep = m.report.as_ref();
                vec![
                    m.peer.clone(),
                    m.state.clone(),
                    rep.map_or_else(|| "-".into(), |r| r.schema_version.to_string()),
                    rep.map_or_else(|| "-".into(), |r| r.residue_auto.to_string()),
                    rep.map_or_else(|| "-".into(), |r| r.authored_remaining.to_string()),
                    or_dash(rep.and_then(|r| r.migration_failed.as_deref())),
                ]
            },
        );
        t.add_row(vec!["Per member".to_string(), rows.to_string()]);
        t
    }
}

impl Report for AbortMigrationResponse {
    fn table(&self) -> Table {
        let join = |ids: &[String]| {
            if ids.is_empty() {
                "-".to_string()
            } else {
                ids.join("\n")
            }
        };
        kv(&[
            ("Namespace ID", self.namespace_id.clone()),
            ("Aborted", self.aborted.to_string()),
            ("Left on their version", join(&self.aborted_group_ids)),
            (
                "Committed (complete everywhere)",
                join(&self.committed_group_ids),
            ),
        ])
    }
}

fn count(n: Option<u32>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

impl Report for UpgradeGroupResponse {
    fn table(&self) -> Table {
        kv(&[
            ("Group ID", self.group_id.clone()),
            ("Status", self.status.clone()),
            ("Contexts", count(self.local_contexts_total)),
            ("Swapped", count(self.local_contexts_swapped)),
            ("Failed", count(self.local_contexts_failed)),
        ])
    }
}

impl Report for GroupUpgradeStatus {
    fn table(&self) -> Table {
        let mut t = kv(&[
            ("Status", self.status.clone()),
            (
                "From",
                format!("{} (state v{})", self.from_version, self.from_state_version),
            ),
            (
                "To",
                format!("{} (state v{})", self.to_version, self.to_state_version),
            ),
            ("Target application", self.target_application_id.clone()),
            ("Initiated by", self.initiated_by.clone()),
            ("Contexts", count(self.local_contexts_total)),
            ("Swapped", count(self.local_contexts_swapped)),
            ("Failed", count(self.local_contexts_failed)),
            ("Error", or_dash(self.error.as_deref())),
        ]);
        if !self.contexts.is_empty() {
            let rows = list(&["Context ID", "Root Hash", "Error"], &self.contexts, |c| {
                vec![
                    c.context_id.clone(),
                    or_dash(c.root_hash.as_deref()),
                    or_dash(c.error.as_deref()),
                ]
            });
            t.add_row(vec!["Per context".to_string(), rows.to_string()]);
        }
        t
    }
}
