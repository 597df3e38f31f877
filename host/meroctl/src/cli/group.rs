//! `meroctl group`: join a context of a namespace, list a group's contexts,
//! change a subgroup's settings; `group members` is in [`members`],
//! `group metadata` in [`metadata`], `group upgrade` in [`upgrade`].

mod members;
mod metadata;
mod upgrade;

use clap::Subcommand;
use comfy_table::Table;
use mero_api::outcome::VisibilitySet;
use mero_api::{Data, GroupContext, JoinContextData, SetVisibilityRequest};
use serde::de::IgnoredAny;

use crate::client::{Client, ClientError, NoBody};
use crate::output::{Output, Report, kv, list, or_dash};

#[derive(Subcommand)]
pub(super) enum GroupCmd {
    /// Joins a context of a namespace this node is a member of and pulls its state.
    #[command(after_help = "Example:\n  meroctl --node node2 group join-context <CONTEXT_ID>")]
    JoinContext {
        /// Context id.
        context: String,
    },
    /// Members of a group.
    #[command(subcommand)]
    Members(members::MembersCmd),
    /// Contexts of a group.
    #[command(subcommand)]
    Contexts(GroupContextsCmd),
    /// A subgroup's settings.
    #[command(subcommand)]
    Settings(GroupSettingsCmd),
    /// Moving the group to another version of its application.
    #[command(subcommand)]
    Upgrade(upgrade::UpgradeCmd),
    /// Metadata records of the group, its members and its contexts.
    #[command(subcommand)]
    Metadata(metadata::MetadataCmd),
}

#[derive(Subcommand)]
pub(super) enum GroupContextsCmd {
    /// Lists contexts registered in the group.
    Ls {
        /// Group (namespace) id.
        group: String,
    },
}

#[derive(Subcommand)]
pub(super) enum GroupSettingsCmd {
    /// Opens a subgroup (the parent's members holding join-open-subgroups
    /// are members) or restricts it (members are admitted one by one).
    #[command(
        after_help = "Example:\n  meroctl --node node1 group settings set-subgroup-vis <SUBGROUP_ID> --mode restricted"
    )]
    SetSubgroupVis {
        /// Subgroup id.
        group: String,
        /// open or restricted.
        #[arg(long)]
        mode: String,
    },
}

pub(super) async fn run(client: &Client, out: &Output, cmd: GroupCmd) -> Result<(), ClientError> {
    match cmd {
        GroupCmd::JoinContext { context } => {
            let joined: Data<JoinContextData> = client
                .post(&format!("/admin-api/contexts/{context}/join"), &NoBody {})
                .await?;
            out.write(&joined.data)
        }
        GroupCmd::Members(cmd) => members::run(client, out, cmd).await,
        GroupCmd::Upgrade(cmd) => upgrade::run(client, out, cmd).await,
        GroupCmd::Metadata(cmd) => metadata::run(client, out, cmd).await,
        GroupCmd::Contexts(GroupContextsCmd::Ls { group }) => {
            let contexts: Data<Vec<GroupContext>> = client
                .get(&format!("/admin-api/groups/{group}/contexts"))
                .await?;
            out.write(&contexts.data)
        }
        GroupCmd::Settings(GroupSettingsCmd::SetSubgroupVis { group, mode }) => {
            let body = SetVisibilityRequest {
                subgroup_visibility: mode,
            };
            let _: IgnoredAny = client
                .put(
                    &format!("/admin-api/groups/{group}/settings/subgroup-visibility"),
                    &body,
                )
                .await?;
            out.write(&VisibilitySet {
                group_id: group,
                subgroup_visibility: body.subgroup_visibility,
            })
        }
    }
}

impl Report for JoinContextData {
    fn table(&self) -> Table {
        kv(&[
            ("Context ID", self.context_id.clone()),
            ("Member Public Key", self.member_public_key.clone()),
        ])
    }
}

impl Report for Vec<GroupContext> {
    fn table(&self) -> Table {
        list(&["Context ID", "Name"], self, |c| {
            vec![c.context_id.clone(), or_dash(c.name.as_deref())]
        })
    }
}

impl Report for VisibilitySet {
    fn table(&self) -> Table {
        kv(&[
            ("Group ID", self.group_id.clone()),
            ("Visibility", self.subgroup_visibility.clone()),
        ])
    }
}
