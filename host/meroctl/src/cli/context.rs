//! `meroctl context`: create, list, inspect, sync, watch and delete
//! contexts, and resolve the aliases other nouns accept for a context.

use clap::Subcommand;
use comfy_table::Table;
use mero_api::ids::parse_b58;
use mero_api::outcome::{ContextCreated, ContextDeleted, SyncStarted};
use mero_api::upgrade::{ResyncRequest, ResyncResponse};
use mero_api::{
    AliasValue, Context, ContextList, CreateContextAlias, CreateContextData, CreateContextRequest,
    Data, Deleted,
};
use serde::de::IgnoredAny;

use super::args::init_params;
use crate::client::{Client, ClientError, NoBody};
use crate::output::{Format, Output, Report, kv, list};
use crate::socket;

#[derive(Subcommand)]
pub(super) enum ContextCmd {
    /// Creates a context in a namespace or group and runs the app's init.
    #[command(
        after_help = "Example:\n  meroctl --node node1 context create -a <APP_ID> --group-id <NAMESPACE_ID> --name kv"
    )]
    Create {
        /// The installed application.
        #[arg(long, short = 'a')]
        application_id: String,
        /// The namespace or group (hex or base58).
        #[arg(long)]
        group_id: String,
        /// JSON arguments of init.
        #[arg(long)]
        params: Option<String>,
        /// An alias for the context.
        #[arg(long)]
        name: Option<String>,
        /// The chain protocol it is associated with: near, ethereum, icp or
        /// stellar (recorded in governance; set once).
        #[arg(long)]
        protocol: Option<String>,
    },
    /// Lists contexts.
    Ls,
    /// Shows a context: root hash, DAG heads, app version.
    #[command(after_help = "Example:\n  meroctl --node node1 context get <CONTEXT_ID> info")]
    Get {
        /// Context id or alias.
        context: String,
        /// What to show (only `info`).
        #[arg(default_value = "info")]
        what: String,
    },
    /// Deletes a context from this node.
    Delete {
        /// Context id or alias.
        context: String,
    },
    /// Starts a sync round with peers now.
    Sync {
        /// Context id or alias.
        context: String,
    },
    /// Takes a member's state of the context anew (for a copy that went
    /// astray). Refused while this node has DAG heads of its own unless
    /// --force, which drops its replicated state first (private storage is
    /// kept).
    #[command(after_help = "Example:\n  meroctl --node node2 context resync <CONTEXT_ID> --force")]
    Resync {
        /// Context id or alias.
        context: String,
        /// Drop this node's replicated state even though it has heads of its own.
        #[arg(long)]
        force: bool,
    },
    /// Prints the context's events as they arrive (JSON lines with
    /// `--output-format json`).
    #[command(after_help = "Examples:
  meroctl --node node2 context watch --context <CONTEXT_ID>
  meroctl --node node2 context watch -c <CONTEXT_ID> --event-type ExecutionEvent -n 10
  meroctl --node node2 context watch -c <CONTEXT_ID> --event-type Inserted

Event types: StateMutation, ExecutionEvent (or the app's event kind, e.g. Inserted),
SyncStatus, AppVersionChanged.")]
    Watch {
        /// Context id or alias.
        #[arg(long, short = 'c')]
        context: String,
        /// Only these event types (repeatable).
        #[arg(long = "event-type")]
        event_type: Vec<String>,
        /// Stop after this many events.
        #[arg(long, short = 'n')]
        count: Option<usize>,
    },
}

pub(super) async fn run(client: &Client, out: &Output, cmd: ContextCmd) -> Result<(), ClientError> {
    match cmd {
        ContextCmd::Create {
            application_id,
            group_id,
            params,
            name,
            protocol,
        } => {
            let body = CreateContextRequest {
                application_id,
                group_id,
                initialization_params: init_params(params)?,
                context_seed: None,
                identity_secret: None,
                name: name.clone(),
            };
            let made: Data<CreateContextData> = client.post("/admin-api/contexts", &body).await?;
            let made = made.data;
            if let Some(protocol) = protocol {
                let _: IgnoredAny = client
                    .put(
                        &format!("/admin-api/contexts/{}/protocol", made.context_id),
                        &mero_api::chains::SetProtocolRequest { protocol },
                    )
                    .await?;
            }
            if let Some(alias) = &name {
                let body = CreateContextAlias {
                    alias: alias.clone(),
                    context_id: made.context_id.clone(),
                };
                let _: IgnoredAny = client
                    .post("/admin-api/alias/create/context", &body)
                    .await?;
            }
            out.write(&ContextCreated {
                context_id: made.context_id,
                member_public_key: made.member_public_key,
                group_id: made.group_id,
                alias: name,
            })
        }
        ContextCmd::Ls => {
            let all: Data<ContextList> = client.get("/admin-api/contexts").await?;
            let protocols = protocols(client).await?;
            let rows: Vec<ContextRow> = all
                .data
                .contexts
                .into_iter()
                .map(|c| ContextRow::new(c, &protocols))
                .collect();
            out.write(&rows)
        }
        ContextCmd::Get { context, what } => {
            if what != "info" {
                return Err(ClientError::Usage(format!(
                    "unknown view `{what}`; use `info`"
                )));
            }
            let ctx = resolve(client, &context).await?;
            let c: Data<Context> = client.get(&format!("/admin-api/contexts/{ctx}")).await?;
            out.write(&ContextRow::new(c.data, &protocols(client).await?))
        }
        ContextCmd::Watch {
            context,
            event_type,
            count,
        } => {
            let ctx = resolve(client, &context).await?;
            socket::watch(
                client,
                &ctx,
                event_type,
                count,
                out.format() == Format::Json,
            )
            .await
        }
        ContextCmd::Sync { context } => {
            let ctx = resolve(client, &context).await?;
            let _: IgnoredAny = client
                .post(&format!("/admin-api/contexts/sync/{ctx}"), &NoBody {})
                .await?;
            out.write(&SyncStarted { context_id: ctx })
        }
        ContextCmd::Resync { context, force } => {
            let ctx = resolve(client, &context).await?;
            let done: ResyncResponse = client
                .post(
                    &format!("/admin-api/contexts/{ctx}/resync"),
                    &ResyncRequest { force },
                )
                .await?;
            out.write(&done)
        }
        ContextCmd::Delete { context } => {
            let ctx = resolve(client, &context).await?;
            let deleted: Data<Deleted> =
                client.delete(&format!("/admin-api/contexts/{ctx}")).await?;
            if !deleted.data.is_deleted {
                return Err(ClientError::Api {
                    status: reqwest::StatusCode::NOT_FOUND,
                    kind: "ContextNotFound".into(),
                    message: format!("no context {ctx} on this node"),
                });
            }
            out.write(&ContextDeleted {
                context_id: ctx,
                is_deleted: true,
            })
        }
    }
}

/// A context id, or the id an alias stands for.
pub(super) async fn resolve(client: &Client, s: &str) -> Result<String, ClientError> {
    if parse_b58(s, "context id").is_ok() {
        return Ok(s.to_string());
    }
    let found: Data<AliasValue> = client
        .post(&format!("/admin-api/alias/lookup/context/{s}"), &NoBody {})
        .await?;
    found.data.value.ok_or_else(|| {
        ClientError::Usage(format!("`{s}` is neither a context id nor a context alias"))
    })
}

impl Report for ContextCreated {
    fn table(&self) -> Table {
        let mut rows = vec![
            ("Context ID", self.context_id.clone()),
            ("Member Public Key", self.member_public_key.clone()),
        ];
        if let Some(alias) = &self.alias {
            rows.push(("Alias", alias.clone()));
        }
        kv(&rows)
    }
}

/// The chain protocols of the node's namespaces and contexts.
async fn protocols(client: &Client) -> Result<mero_api::chains::Protocols, ClientError> {
    let p: Data<mero_api::chains::Protocols> = client.get("/admin-api/protocols").await?;
    Ok(p.data)
}

/// A context as `ls` and `get` print it: the node's fields and its chain
/// protocol (`protocol`, absent if none).
#[derive(serde::Serialize)]
pub(crate) struct ContextRow {
    #[serde(flatten)]
    context: Context,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<String>,
}

impl ContextRow {
    fn new(context: Context, protocols: &mero_api::chains::Protocols) -> ContextRow {
        let protocol = protocols.contexts.get(&context.id).cloned();
        ContextRow { context, protocol }
    }
}

impl Report for Vec<ContextRow> {
    /// The README's columns, and Protocol where a context has one.
    fn table(&self) -> Table {
        let with_protocol = self.iter().any(|r| r.protocol.is_some());
        let mut header = vec![
            "Context ID",
            "Name",
            "Application ID",
            "Version",
            "Root Hash",
        ];
        if with_protocol {
            header.push("Protocol");
        }
        list(&header, self, |r| {
            let c = &r.context;
            let mut row = vec![
                c.id.clone(),
                c.name.clone().unwrap_or_default(),
                c.application_id.clone(),
                c.application_version.clone().unwrap_or_default(),
                c.root_hash.clone(),
            ];
            if with_protocol {
                row.push(r.protocol.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
    }
}

impl Report for ContextRow {
    fn table(&self) -> Table {
        let mut t = self.context.table();
        t.add_row(vec![
            "Protocol".to_string(),
            self.protocol.clone().unwrap_or_else(|| "-".into()),
        ]);
        t
    }
}

impl Report for Context {
    fn table(&self) -> Table {
        let heads = self
            .dag_heads
            .iter()
            .map(mero_api::ids::b58)
            .collect::<Vec<_>>()
            .join("\n");
        kv(&[
            ("Context ID", self.id.clone()),
            ("Name", self.name.clone().unwrap_or_default()),
            ("Application ID", self.application_id.clone()),
            (
                "App version",
                self.application_version.clone().unwrap_or_default(),
            ),
            ("Group ID", self.group_id.clone().unwrap_or_default()),
            ("Root hash", self.root_hash.clone()),
            ("DAG heads", heads),
            ("Deltas", self.delta_count.unwrap_or_default().to_string()),
        ])
    }
}

impl Report for SyncStarted {
    fn table(&self) -> Table {
        kv(&[
            ("Context ID", self.context_id.clone()),
            ("Sync", "started".into()),
        ])
    }
}

impl Report for ContextDeleted {
    fn table(&self) -> Table {
        kv(&[
            ("Context ID", self.context_id.clone()),
            ("Deleted", self.is_deleted.to_string()),
        ])
    }
}

impl Report for ResyncResponse {
    fn table(&self) -> Table {
        kv(&[
            ("Context ID", self.context_id.clone()),
            ("Resynced", self.resync_started.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(id: &str, name: Option<&str>) -> Context {
        Context {
            id: id.into(),
            application_id: "App1".into(),
            root_hash: "Root1".into(),
            dag_heads: vec![[0; 32]],
            application_version: Some("0.0.0".into()),
            state_version: Some(1),
            name: name.map(str::to_string),
            group_id: Some("ab".into()),
            delta_count: Some(3),
            sync_status: None,
        }
    }

    #[test]
    fn a_context_list_has_the_readmes_columns() {
        let row = |c| ContextRow {
            context: c,
            protocol: None,
        };
        let shown = vec![row(context("Ctx1", None)), row(context("Ctx2", Some("kv")))].human();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines[1],
            "│ Context ID ┆ Name ┆ Application ID ┆ Version ┆ Root Hash │"
        );
        assert_eq!(
            lines[3],
            "│ Ctx1       ┆      ┆ App1           ┆ 0.0.0   ┆ Root1     │"
        );
        assert_eq!(
            lines[5],
            "│ Ctx2       ┆ kv   ┆ App1           ┆ 0.0.0   ┆ Root1     │"
        );
    }

    #[test]
    fn a_context_list_shows_protocols_when_a_context_has_one() {
        let rows = vec![
            ContextRow {
                context: context("Ctx1", None),
                protocol: Some("near".into()),
            },
            ContextRow {
                context: context("Ctx2", None),
                protocol: None,
            },
        ];
        let shown = rows.human();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[1].ends_with("┆ Root Hash ┆ Protocol │"), "{shown}");
        assert!(lines[3].ends_with("┆ near     │"), "{shown}");
        assert!(lines[5].ends_with("┆ -        │"), "{shown}");
    }

    #[test]
    fn a_context_shows_its_heads_in_base58() {
        let shown = context("Ctx1", Some("kv")).human();
        assert!(
            shown.contains("┆ 11111111111111111111111111111111 │"),
            "{shown}"
        );
        assert!(shown.contains("│ Deltas         ┆ 3"), "{shown}");
    }

    #[test]
    fn a_created_context_shows_its_alias_only_if_it_has_one() {
        let made = ContextCreated {
            context_id: "Ctx1".into(),
            member_public_key: "Key1".into(),
            group_id: None,
            alias: None,
        };
        assert!(!made.human().contains("Alias"));
        let named = ContextCreated {
            alias: Some("kv".into()),
            ..made
        };
        assert!(named.human().contains("│ Alias             ┆ kv"));
    }
}
