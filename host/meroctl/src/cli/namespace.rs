//! `meroctl namespace`: create, list, inspect and delete namespaces; invite
//! and join; leave; create and list subgroups.

use clap::Subcommand;
use comfy_table::Table;
use mero_api::chains::{ChainChallenge, ChainChallengeRequest, ChainIdentity, ProveChainRequest};
use mero_api::outcome::NamespaceDeleted;
use mero_api::{
    CreateGroupData, CreateGroupRequest, CreateNamespaceData, CreateNamespaceRequest, Data,
    Deleted, InvitationData, InviteRequest, JoinChainProof, JoinNamespaceData,
    JoinNamespaceRequest, LeaveNamespaceData, Namespace, Subgroup,
};

use super::args::{init_params, parse_json};
use crate::client::{Client, ClientError, NoBody};
use crate::output::{Output, Report, kv, list, or_dash, table};

#[derive(Subcommand)]
pub(super) enum NamespaceCmd {
    /// Creates a namespace and its first context; this node becomes its creator.
    #[command(
        after_help = "Example:\n  meroctl --node node1 namespace create --application-id <APP_ID>"
    )]
    Create {
        /// The installed application.
        #[arg(long, short = 'a')]
        application_id: String,
        /// A name.
        #[arg(long)]
        name: Option<String>,
        /// JSON arguments of the first context's init.
        #[arg(long)]
        params: Option<String>,
        /// The chain protocol it is associated with: near, ethereum, icp or
        /// stellar (recorded in governance; its contexts inherit it).
        #[arg(long)]
        protocol: Option<String>,
    },
    /// Lists namespaces with their contexts' app versions.
    Ls,
    /// Shows one namespace.
    Get {
        /// Namespace id (hex or base58).
        id: String,
    },
    /// Deletes a namespace and its contexts from this node.
    Delete {
        /// Namespace id (hex or base58).
        id: String,
    },
    /// Prints a signed invitation (JSON) for another node to join with.
    #[command(
        after_help = "Example:\n  meroctl --node node1 namespace invite <NAMESPACE_ID> > invitation.json\n  meroctl --node node2 namespace join <NAMESPACE_ID> \"$(cat invitation.json)\""
    )]
    Invite {
        /// Namespace id (hex or base58).
        id: String,
        /// How long it stays valid, in seconds (default: the node's
        /// `membership.invitation_ttl_secs`, a day). It admits one key.
        #[arg(long)]
        expiration_timestamp: Option<u64>,
        /// The role it grants: admin, member or read-only.
        #[arg(long, default_value = "member")]
        role: String,
        /// Accepted for upstream compatibility.
        #[arg(long)]
        recursive: bool,
        /// Binds the invitation to a chain account the joiner must prove
        /// it holds: `ethereum:0x…`, `near:alice.near`, `icp:<principal>`,
        /// `stellar:G…` (repeatable; signed into the invitation).
        #[arg(long = "chain-account", value_name = "CHAIN:ACCOUNT")]
        chain_accounts: Vec<String>,
        /// Gates the join on a token balance of the bound account on that
        /// chain: `ethereum:<token>:<at least>` (base units; repeatable).
        /// The admitting node asks the chain through its relayer.
        #[arg(long = "min-token-balance", value_name = "CHAIN:TOKEN:AMOUNT")]
        min_token_balances: Vec<String>,
    },
    /// Creates a subgroup; contexts created in it are for its members only.
    #[command(after_help = "Examples:
  meroctl --node node1 namespace create-group <NAMESPACE_ID> --name team
  meroctl --node node1 namespace create-group <NAMESPACE_ID> --name secret --restricted")]
    CreateGroup {
        /// Namespace id (hex or base58).
        id: String,
        /// A name.
        #[arg(long)]
        name: Option<String>,
        /// The parent subgroup (the namespace if absent).
        #[arg(long)]
        parent: Option<String>,
        /// Members are admitted one by one (`group members add`) instead of
        /// inheriting the parent's.
        #[arg(long)]
        restricted: bool,
    },
    /// Leaves a namespace: what this node wrote stays; it cannot rejoin.
    Leave {
        /// Namespace id (hex or base58).
        id: String,
    },
    /// Lists a namespace's subgroups.
    Groups {
        /// Namespace id (hex or base58).
        id: String,
    },
    /// Joins a namespace with an invitation: paste exactly what `invite` printed.
    #[command(
        after_help = "Example:\n  meroctl --node node2 namespace join <NAMESPACE_ID> '<INVITATION_JSON>'

An invitation bound to a chain account (`invite --chain-account`) needs a
proof that this node's member holds it: print the challenge on the joining
node, sign its message with the account's key, and join with the signature:
  meroctl --node node2 -o json namespace chain-challenge <NAMESPACE_ID> --chain ethereum --account 0x…
  meroctl --node node2 namespace join <NAMESPACE_ID> '<INVITATION_JSON>' --chain-signature 0x…"
    )]
    Join {
        /// Namespace id (hex or base58).
        id: String,
        /// The invitation: `invite`'s whole output, or its inner invitation.
        invitation: String,
        /// For an invitation bound to a chain account: the account key's
        /// signature of this node's `chain-challenge` message for it
        /// (repeatable, one per bound account, in order).
        #[arg(long = "chain-signature", value_name = "SIGNATURE")]
        chain_signatures: Vec<String>,
        /// The signer's public key, where the account does not give it
        /// (ICP, named NEAR accounts); applies to every signature given.
        #[arg(long)]
        chain_public_key: Option<String>,
        /// The signing scheme if not the chain's default (Ethereum: eip712).
        #[arg(long)]
        chain_scheme: Option<String>,
    },
    /// Prints the challenge this node's member signs with a chain account's
    /// key (NEAR, Ethereum, ICP, Stellar): JSON whose `message` is the exact
    /// text to sign; valid one to two hours.
    #[command(after_help = "Example:
  meroctl --node node1 -o json namespace chain-challenge <NAMESPACE_ID> --chain ethereum --account 0x…
  # sign .message: Ethereum personal_sign (EIP-191); NEAR signMessage (NEP-413, recipient \"mero\");
  # ICP ed25519 over the bytes; Stellar SEP-53 (Keypair.sign_message)")]
    ChainChallenge {
        /// Namespace id (hex or base58).
        id: String,
        /// near, ethereum, icp or stellar.
        #[arg(long)]
        chain: String,
        /// The account: 0x… (Ethereum), alice.near or 64 hex (NEAR), a
        /// principal (ICP), G… (Stellar).
        #[arg(long)]
        account: String,
    },
    /// Attaches a chain account to this node's member: the signature of the
    /// current `chain-challenge` message, verified by every member's node.
    #[command(after_help = "Example:
  meroctl --node node1 namespace prove-chain <NAMESPACE_ID> --chain ethereum --account 0x… --signature 0x…")]
    ProveChain {
        /// Namespace id (hex or base58).
        id: String,
        /// near, ethereum, icp or stellar.
        #[arg(long)]
        chain: String,
        /// The account the challenge was for.
        #[arg(long)]
        account: String,
        /// 0x-hex for Ethereum; base64 or hex for NEAR, ICP and Stellar.
        #[arg(long)]
        signature: String,
        /// The signer's key, for ICP (DER or raw, hex) and named NEAR
        /// accounts (ed25519:<base58>).
        #[arg(long)]
        public_key: Option<String>,
        /// eip191 (default) or eip712 for Ethereum.
        #[arg(long)]
        scheme: Option<String>,
    },
}

pub(super) async fn run(
    client: &Client,
    out: &Output,
    cmd: NamespaceCmd,
) -> Result<(), ClientError> {
    match cmd {
        NamespaceCmd::Create {
            application_id,
            name,
            params,
            protocol,
        } => {
            let body = CreateNamespaceRequest {
                application_id,
                name,
                app_key: None,
                initialization_params: Some(init_params(params)?),
            };
            let made: Data<CreateNamespaceData> =
                client.post("/admin-api/namespaces", &body).await?;
            if let Some(protocol) = protocol {
                let _: serde::de::IgnoredAny = client
                    .put(
                        &format!("/admin-api/namespaces/{}/protocol", made.data.namespace_id),
                        &mero_api::chains::SetProtocolRequest { protocol },
                    )
                    .await?;
            }
            out.write(&made.data)
        }
        NamespaceCmd::Ls => {
            let all: Data<Vec<Namespace>> = client.get("/admin-api/namespaces").await?;
            out.write(&all.data)
        }
        NamespaceCmd::Get { id } => {
            let ns: Data<Namespace> = client.get(&format!("/admin-api/namespaces/{id}")).await?;
            out.write(&ns.data)
        }
        NamespaceCmd::Invite {
            id,
            expiration_timestamp,
            role,
            recursive,
            chain_accounts,
            min_token_balances,
        } => {
            let body = InviteRequest {
                expiration_timestamp,
                recursive: Some(recursive),
                role: Some(role),
                chain_accounts,
                min_token_balances,
            };
            let invited: Data<InvitationData> = client
                .post(&format!("/admin-api/namespaces/{id}/invite"), &body)
                .await?;
            out.write(&invited.data)
        }
        NamespaceCmd::Join {
            id,
            invitation,
            chain_signatures,
            chain_public_key,
            chain_scheme,
        } => {
            // Whatever `invite` printed: the node peels the wrappers.
            let body = JoinNamespaceRequest {
                invitation: parse_json("invitation", &invitation)?,
                chain_proofs: chain_signatures
                    .into_iter()
                    .map(|signature| JoinChainProof {
                        account: None,
                        signature,
                        public_key: chain_public_key.clone(),
                        scheme: chain_scheme.clone(),
                    })
                    .collect(),
            };
            let joined: Data<JoinNamespaceData> = client
                .post(&format!("/admin-api/namespaces/{id}/join"), &body)
                .await?;
            out.write(&joined.data)
        }
        NamespaceCmd::CreateGroup {
            id,
            name,
            parent,
            restricted,
        } => {
            let body = CreateGroupRequest {
                name,
                parent_group_id: parent,
                subgroup_visibility: Some(if restricted { "restricted" } else { "open" }.into()),
            };
            let made: Data<CreateGroupData> = client
                .post(&format!("/admin-api/namespaces/{id}/groups"), &body)
                .await?;
            out.write(&made.data)
        }
        NamespaceCmd::Leave { id } => {
            let left: Data<LeaveNamespaceData> = client
                .post(&format!("/admin-api/namespaces/{id}/leave"), &NoBody {})
                .await?;
            out.write(&left.data)
        }
        NamespaceCmd::Groups { id } => {
            let groups: Data<Vec<Subgroup>> = client
                .get(&format!("/admin-api/namespaces/{id}/groups"))
                .await?;
            out.write(&groups.data)
        }
        NamespaceCmd::ChainChallenge { id, chain, account } => {
            let body = ChainChallengeRequest { chain, account };
            let c: Data<ChainChallenge> = client
                .post(
                    &format!("/admin-api/namespaces/{id}/chain-challenge"),
                    &body,
                )
                .await?;
            out.write(&c.data)
        }
        NamespaceCmd::ProveChain {
            id,
            chain,
            account,
            signature,
            public_key,
            scheme,
        } => {
            let body = ProveChainRequest {
                chain,
                account,
                signature,
                public_key,
                scheme,
            };
            let proven: Data<ChainIdentity> = client
                .post(
                    &format!("/admin-api/namespaces/{id}/chain-identities"),
                    &body,
                )
                .await?;
            out.write(&proven.data)
        }
        NamespaceCmd::Delete { id } => {
            let deleted: Data<Deleted> = client
                .delete(&format!("/admin-api/namespaces/{id}"))
                .await?;
            out.write(&NamespaceDeleted {
                namespace_id: id,
                is_deleted: deleted.data.is_deleted,
            })
        }
    }
}

/// A namespace's contexts, one a line, each with its app version.
fn contexts(n: &Namespace) -> String {
    n.contexts
        .iter()
        .map(|c| format!("{} ({})", c.context_id, c.application_version))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Report for CreateNamespaceData {
    fn table(&self) -> Table {
        kv(&[
            ("Namespace ID", self.namespace_id.clone()),
            ("Context ID", self.context_id.clone()),
        ])
    }
}

impl Report for Vec<Namespace> {
    fn table(&self) -> Table {
        list(
            &[
                "Namespace ID",
                "Application ID",
                "Version",
                "Members",
                "Contexts (app version)",
                "Name",
            ],
            self,
            |n| {
                vec![
                    n.namespace_id.clone(),
                    n.target_application_id.clone(),
                    or_dash(n.app_version.as_deref()),
                    n.member_count.to_string(),
                    contexts(n),
                    or_dash(n.name.as_deref()),
                ]
            },
        )
    }
}

impl Report for Namespace {
    fn table(&self) -> Table {
        kv(&[
            ("Namespace ID", self.namespace_id.clone()),
            ("Name", or_dash(self.name.as_deref())),
            ("Application ID", self.target_application_id.clone()),
            ("App version", self.app_version.clone().unwrap_or_default()),
            ("Members", self.member_count.to_string()),
            ("Contexts", contexts(self)),
        ])
    }
}

impl Report for InvitationData {
    fn table(&self) -> Table {
        kv(&[
            ("Group name", or_dash(self.group_name.as_deref())),
            ("Invitation", pretty(self)),
        ])
    }

    /// The JSON itself, pretty, as upstream prints it: it is meant to be
    /// pasted into `namespace join`.
    fn human(&self) -> String {
        pretty(self)
    }
}

fn pretty(invitation: &InvitationData) -> String {
    // A `Value` and an optional string always render.
    serde_json::to_string_pretty(invitation).unwrap_or_default()
}

impl Report for JoinNamespaceData {
    fn table(&self) -> Table {
        let mut t = table(&[]);
        t.add_row(vec!["Successfully joined namespace"]);
        t
    }
}

impl Report for CreateGroupData {
    fn table(&self) -> Table {
        kv(&[("Group ID", self.group_id.clone())])
    }
}

impl Report for LeaveNamespaceData {
    fn table(&self) -> Table {
        kv(&[
            ("Left namespace", self.namespace_id.clone()),
            ("Member public key", self.member_public_key.clone()),
        ])
    }
}

impl Report for Vec<Subgroup> {
    fn table(&self) -> Table {
        list(
            &[
                "Group ID",
                "Parent",
                "Visibility",
                "Key epoch",
                "Members",
                "Contexts",
                "Name",
            ],
            self,
            |g| {
                vec![
                    g.group_id.clone(),
                    g.parent_group_id.clone(),
                    g.subgroup_visibility.clone(),
                    g.key_epoch.map_or_else(|| "-".into(), |e| e.to_string()),
                    g.member_count.to_string(),
                    g.context_count.to_string(),
                    or_dash(g.name.as_deref()),
                ]
            },
        )
    }
}

impl Report for ChainChallenge {
    fn table(&self) -> Table {
        kv(&[
            ("Message", self.message.clone()),
            ("Signing", self.signing.clone()),
            ("Expires", self.expires.to_string()),
        ])
    }

    /// JSON, as the issue asks: `.message` is the text to sign, and a
    /// script reads it with `jq -r .message`.
    fn human(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl Report for ChainIdentity {
    fn table(&self) -> Table {
        kv(&[
            ("Chain", self.chain.clone()),
            ("Account", self.account.clone()),
            ("Member", self.member.clone()),
            ("On chain", self.on_chain.clone()),
        ])
    }
}

impl Report for NamespaceDeleted {
    fn table(&self) -> Table {
        kv(&[
            ("Namespace ID", self.namespace_id.clone()),
            ("Deleted", self.is_deleted.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_invitation_prints_as_pasteable_json_without_an_envelope() {
        let inv = InvitationData {
            invitation: json!({"invitation": {"inviter_identity": [1]}, "inviter_signature": "ab"}),
            group_name: Some("team".into()),
        };
        let shown = inv.human();
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["invitation"]["inviter_signature"], "ab");
        assert_eq!(back["groupName"], "team");
        assert!(back.get("data").is_none());
        assert!(shown.starts_with("{\n  \"invitation\": {"), "{shown}");
    }

    #[test]
    fn a_join_says_so_in_one_box() {
        let shown = JoinNamespaceData {
            namespace_id: "ab".into(),
            member_identity: "K".into(),
            member_account: "cd".into(),
        }
        .human();
        assert_eq!(
            shown,
            "╭───────────────────────────────╮\n\
             │ Successfully joined namespace │\n\
             ╰───────────────────────────────╯"
        );
    }
}
