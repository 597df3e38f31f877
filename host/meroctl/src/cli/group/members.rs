//! `meroctl group members`: list members, set and read capabilities, set
//! roles, admit members to subgroups and remove them.

use clap::Subcommand;
use comfy_table::Table;
use mero_api::chains::{ChainIdentities, ChainIdentity};
use mero_api::outcome::{MemberCapabilities, MemberRoleSet, MembersAdded, MembersRemoved};
use mero_api::{
    AddMember, AddMembersRequest, Capabilities, Data, GroupMember, GroupMembers,
    RemoveMembersRequest, SetRoleRequest,
};
use serde::de::IgnoredAny;

use crate::client::{Client, ClientError};
use crate::output::{Output, Report, kv, list};

#[derive(Subcommand)]
pub(crate) enum MembersCmd {
    /// Lists members and their roles.
    Ls {
        /// Group (namespace) id.
        group: String,
    },
    /// Sets a member's capabilities. The mask is ABSOLUTE: it replaces the
    /// member's capabilities, so list every one it should keep (including
    /// join-open-subgroups, which members have by default).
    #[command(
        after_help = "Capabilities: create-context (1), invite-members (2), join-open-subgroups (4),
manage-members (8), manage-application (16), create-subgroup (32), delete-subgroup (64),
manage-visibility (128), manage-metadata (256); give names, a number, or flags.

Examples:
  meroctl --node node1 group members set-caps <GROUP> <MEMBER> invite-members,join-open-subgroups
  meroctl --node node1 group members set-caps <GROUP> <MEMBER> 6
  meroctl --node node1 group members set-caps <GROUP> <MEMBER> --can-invite-members --can-join-open-subgroups"
    )]
    SetCaps {
        /// Group (namespace) id.
        group: String,
        /// The member's key (hex or base58).
        member: String,
        /// Comma-separated names or a number.
        capabilities: Option<String>,
        #[command(flatten)]
        flags: CapFlags,
    },
    /// Admits namespace members to a (restricted) subgroup.
    #[command(
        after_help = "Example:\n  meroctl --node node1 group members add <SUBGROUP_ID> <MEMBER>"
    )]
    Add {
        /// Subgroup id.
        group: String,
        /// The members' keys (hex or base58).
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Shows a member's effective capabilities.
    GetCaps {
        /// Group (namespace) id.
        group: String,
        /// The member's key (hex or base58).
        member: String,
    },
    /// Sets a member's role: admin, member or read-only.
    SetRole {
        /// Group (namespace) id.
        group: String,
        /// The member's key (hex or base58).
        member: String,
        /// admin, member or read-only.
        role: String,
    },
    /// Removes members; what they wrote before stays.
    Remove {
        /// Group (namespace) id.
        group: String,
        /// The members' keys (hex or base58).
        #[arg(required = true)]
        members: Vec<String>,
    },
}

/// `set-caps`'s `--can-...` flags, in the order of [`CAPABILITIES`].
#[derive(clap::Args)]
pub(crate) struct CapFlags {
    /// May create contexts.
    #[arg(long)]
    can_create_context: bool,
    /// May invite members.
    #[arg(long)]
    can_invite_members: bool,
    /// Joins open subgroups.
    #[arg(long)]
    can_join_open_subgroups: bool,
    /// May manage members.
    #[arg(long)]
    can_manage_members: bool,
    /// May manage the application.
    #[arg(long)]
    can_manage_application: bool,
    /// May create subgroups.
    #[arg(long)]
    can_create_subgroup: bool,
    /// May delete subgroups.
    #[arg(long)]
    can_delete_subgroup: bool,
    /// May open or restrict subgroups.
    #[arg(long)]
    can_manage_visibility: bool,
    /// May change metadata.
    #[arg(long)]
    can_manage_metadata: bool,
}

impl CapFlags {
    /// The mask of the flags given; `None` if none was.
    fn mask(&self) -> Option<u32> {
        let flags = [
            self.can_create_context,
            self.can_invite_members,
            self.can_join_open_subgroups,
            self.can_manage_members,
            self.can_manage_application,
            self.can_create_subgroup,
            self.can_delete_subgroup,
            self.can_manage_visibility,
            self.can_manage_metadata,
        ];
        flags.iter().any(|on| *on).then(|| {
            flags
                .iter()
                .zip(CAPABILITIES)
                .filter(|(on, _)| **on)
                .fold(0, |acc, (_, (_, bit))| acc | bit)
        })
    }
}

/// Capability names and bits, as the node numbers them.
const CAPABILITIES: [(&str, u32); 9] = [
    ("create-context", 1),
    ("invite-members", 2),
    ("join-open-subgroups", 4),
    ("manage-members", 8),
    ("manage-application", 16),
    ("create-subgroup", 32),
    ("delete-subgroup", 64),
    ("manage-visibility", 128),
    ("manage-metadata", 256),
];

/// A mask from a number, or from comma-separated names (`can-` prefixes and
/// underscores allowed).
fn parse_caps(s: &str) -> Result<u32, ClientError> {
    if let Ok(n) = s.trim().parse::<u32>() {
        return Ok(n);
    }
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .try_fold(0u32, |acc, name| {
            let norm = name.to_ascii_lowercase().replace('_', "-");
            let norm = norm.trim_start_matches("can-");
            CAPABILITIES
                .iter()
                .find(|(n, _)| *n == norm)
                .map(|(_, bit)| acc | bit)
                .ok_or_else(|| {
                    ClientError::Usage(format!(
                        "unknown capability `{name}`; known: {}",
                        CAPABILITIES.map(|(n, _)| n).join(", ")
                    ))
                })
        })
}

/// The names of the bits set in `mask`, or `none`.
fn caps_names(mask: u32) -> String {
    let names: Vec<&str> = CAPABILITIES
        .iter()
        .filter(|(_, bit)| mask & bit != 0)
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// A role as the node spells it, from `admin`, `member` or `read-only`
/// (any case, with or without `-`/`_`).
fn parse_role(role: &str) -> Result<&'static str, ClientError> {
    match role.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "admin" => Ok("Admin"),
        "member" => Ok("Member"),
        "readonly" => Ok("ReadOnly"),
        other => Err(ClientError::Usage(format!(
            "unknown role `{other}`: use admin, member or read-only"
        ))),
    }
}

pub(super) async fn run(client: &Client, out: &Output, cmd: MembersCmd) -> Result<(), ClientError> {
    match cmd {
        MembersCmd::Ls { group } => {
            // Not wrapped in `data`, as upstream.
            let listed: GroupMembers = client
                .get(&format!("/admin-api/groups/{group}/members"))
                .await?;
            // Chain identities are proven in namespaces: a subgroup (or an
            // older node) has none to show, which is no error here.
            let chains: Vec<ChainIdentity> = client
                .get::<Data<ChainIdentities>>(&format!(
                    "/admin-api/namespaces/{group}/chain-identities"
                ))
                .await
                .map(|d| d.data.identities)
                .unwrap_or_default();
            let rows: Vec<MemberRow> = listed
                .members
                .into_iter()
                .map(|member| MemberRow {
                    chain_identities: chains
                        .iter()
                        .filter(|c| c.member == member.identity)
                        .map(|c| {
                            let mark = if c.on_chain == "verified" {
                                ""
                            } else {
                                " (unverified on chain)"
                            };
                            format!("{}:{}{mark}", c.chain, c.account)
                        })
                        .collect(),
                    member,
                })
                .collect();
            out.write(&rows)
        }
        MembersCmd::SetCaps {
            group,
            member,
            capabilities,
            flags,
        } => {
            let mask = match (capabilities, flags.mask()) {
                (Some(c), from_flags) => parse_caps(&c)? | from_flags.unwrap_or(0),
                (None, Some(from_flags)) => from_flags,
                (None, None) => {
                    return Err(ClientError::Usage(
                        "give the capabilities: names, a number, or --can-... flags".into(),
                    ));
                }
            };
            let _: IgnoredAny = client
                .put(
                    &format!("/admin-api/groups/{group}/members/{member}/capabilities"),
                    &Capabilities { capabilities: mask },
                )
                .await?;
            out.write(&MemberCapabilities {
                group_id: group,
                member,
                capabilities: mask,
            })
        }
        MembersCmd::GetCaps { group, member } => {
            let caps: Data<Capabilities> = client
                .get(&format!(
                    "/admin-api/groups/{group}/members/{member}/capabilities"
                ))
                .await?;
            out.write(&MemberCapabilities {
                group_id: group,
                member,
                capabilities: caps.data.capabilities,
            })
        }
        MembersCmd::SetRole {
            group,
            member,
            role,
        } => {
            let role = parse_role(&role)?;
            let _: IgnoredAny = client
                .put(
                    &format!("/admin-api/groups/{group}/members/{member}/role"),
                    &SetRoleRequest { role: role.into() },
                )
                .await?;
            out.write(&MemberRoleSet {
                group_id: group,
                member,
                role: role.into(),
            })
        }
        MembersCmd::Remove { group, members } => {
            let body = RemoveMembersRequest { members };
            let _: IgnoredAny = client
                .post(&format!("/admin-api/groups/{group}/members/remove"), &body)
                .await?;
            out.write(&MembersRemoved {
                group_id: group,
                members: body.members,
            })
        }
        MembersCmd::Add { group, members } => {
            let body = AddMembersRequest {
                members: members
                    .iter()
                    .map(|m| AddMember {
                        identity: m.clone(),
                        role: None,
                    })
                    .collect(),
            };
            let _: IgnoredAny = client
                .post(&format!("/admin-api/groups/{group}/members"), &body)
                .await?;
            out.write(&MembersAdded {
                group_id: group,
                members,
            })
        }
    }
}

/// A member as `members ls` prints it: upstream's fields and the chain
/// accounts it proved (`chain:account`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberRow {
    #[serde(flatten)]
    member: GroupMember,
    chain_identities: Vec<String>,
}

impl Report for Vec<MemberRow> {
    fn table(&self) -> Table {
        list(&["Identity", "Role", "Chain Identity"], self, |m| {
            vec![
                m.member.identity.clone(),
                m.member.role.clone(),
                if m.chain_identities.is_empty() {
                    "-".into()
                } else {
                    m.chain_identities.join("\n")
                },
            ]
        })
    }
}

impl Report for MemberCapabilities {
    fn table(&self) -> Table {
        kv(&[
            ("Member", self.member.clone()),
            (
                "Capabilities",
                format!("{} ({})", self.capabilities, caps_names(self.capabilities)),
            ),
        ])
    }
}

impl Report for MemberRoleSet {
    fn table(&self) -> Table {
        kv(&[("Member", self.member.clone()), ("Role", self.role.clone())])
    }
}

impl Report for MembersAdded {
    fn table(&self) -> Table {
        kv(&[("Added", self.members.join("\n"))])
    }
}

impl Report for MembersRemoved {
    fn table(&self) -> Table {
        kv(&[("Removed", self.members.join("\n"))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_parse_from_numbers_and_names() {
        assert_eq!(parse_caps("6").unwrap(), 6);
        assert_eq!(
            parse_caps("invite-members, can_join_open_subgroups").unwrap(),
            6
        );
        assert!(
            parse_caps("flying")
                .unwrap_err()
                .to_string()
                .contains("known: create-context")
        );
        assert_eq!(caps_names(6), "invite-members, join-open-subgroups");
        assert_eq!(caps_names(0), "none");
    }

    #[test]
    fn roles_parse_loosely_and_print_as_the_node_spells_them() {
        assert_eq!(parse_role("read-only").unwrap(), "ReadOnly");
        assert_eq!(parse_role("ADMIN").unwrap(), "Admin");
        assert!(parse_role("boss").is_err());
    }

    #[test]
    fn capabilities_show_the_mask_and_its_names() {
        let caps = MemberCapabilities {
            group_id: "ab".into(),
            member: "cd".into(),
            capabilities: 6,
        };
        assert_eq!(
            caps.human(),
            "╭──────────────┬─────────────────────────────────────────╮\n\
             │ Member       ┆ cd                                      │\n\
             ├╌╌╌╌╌╌╌╌╌╌╌╌╌╌┼╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌┤\n\
             │ Capabilities ┆ 6 (invite-members, join-open-subgroups) │\n\
             ╰──────────────┴─────────────────────────────────────────╯"
        );
        let json = serde_json::to_value(&caps).unwrap();
        assert_eq!(json["capabilities"], 6);
        assert_eq!(json["member"], "cd");
    }
}
