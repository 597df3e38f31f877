//! `meroctl group upgrade`: move a group to another version of its
//! application, see how it stands, retry a failed one.

use clap::Subcommand;
use comfy_table::Table;
use mero_api::Data;
use mero_api::upgrade::{GroupUpgradeStatus, UpgradeGroupRequest, UpgradeGroupResponse};

use crate::client::{Client, ClientError, NoBody};
use crate::output::{Output, Report, kv, list, or_dash};

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
        /// Upgrade the subgroups too.
        #[arg(long)]
        cascade: bool,
        /// Swap the code across state versions (refused unless the layouts are equal).
        #[arg(long)]
        force_code_only: bool,
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
        } => {
            let body = UpgradeGroupRequest {
                target_application_id,
                cascade,
                force_code_only,
            };
            let done: Data<UpgradeGroupResponse> = client
                .post(&format!("/admin-api/groups/{group}/upgrade"), &body)
                .await?;
            out.write(&done.data)
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
