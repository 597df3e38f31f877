//! `meroctl`: drives a context node over its HTTP API.

mod client;
mod socket;

use std::io::Write as _;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use client::{Client, ClientError, data};
use comfy_table::modifiers::UTF8_ROUND_CORNERS;
use comfy_table::presets::UTF8_FULL;
use comfy_table::{ContentArrangement, Table};
use mero_api::ids::parse_b58;
use mero_api::jsonrpc::Response;
use mero_api::{
    Application, ApplicationIdData, Context, ContextList, CreateContextData, CreateNamespaceData,
    Namespace,
};
use serde_json::{Value, json};

/// Drive a context node: install apps, create namespaces and contexts, call methods.
#[derive(Parser)]
#[command(name = "meroctl", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Directory holding node directories (for --node).
    #[arg(long, global = true, env = "CALIMERO_HOME")]
    home: Option<PathBuf>,
    /// A local node by name: its API address is read from <home>/<name>/config.toml.
    #[arg(long, global = true, conflicts_with = "api")]
    node: Option<String>,
    /// The node's API URL, e.g. http://127.0.0.1:2528.
    #[arg(long, global = true)]
    api: Option<String>,
    /// Tables for people or the API's JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    output_format: Format,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  meroctl --node node1 app install --path ./kv_store.wasm
  meroctl --node node1 namespace create --application-id <APP_ID>
  meroctl --node node1 context ls
  meroctl --node node1 call set --context <CONTEXT_ID> --args '{\"key\":\"a\",\"value\":\"b\"}'
  meroctl --node node1 call get --context <CONTEXT_ID> --args '{\"key\":\"a\"}'
  meroctl --node node1 namespace invite <NAMESPACE_ID>
  meroctl --node node2 namespace join <NAMESPACE_ID> '<INVITATION_JSON>'
  meroctl --node node2 group join-context <CONTEXT_ID>";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Applications: install, list, inspect, uninstall.
    #[command(subcommand)]
    App(AppCmd),
    /// Namespaces: a root group with an application and its members.
    #[command(subcommand, alias = "ns")]
    Namespace(NamespaceCmd),
    /// Contexts: app instances with their own replicated state.
    #[command(subcommand)]
    Context(ContextCmd),
    /// Groups: members and contexts of a namespace, and joining contexts.
    #[command(subcommand)]
    Group(GroupCmd),
    /// How many peers this node is connected to.
    Peers,
    /// Calls a method of a context; read-only or mutating as the app declares.
    #[command(after_help = "Examples:
  meroctl --node node1 call set --context <CONTEXT_ID> --args '{\"key\":\"a\",\"value\":\"b\"}'
  meroctl --node node1 call entries --context my-alias
  meroctl --node node1 call -i --context my-alias   (then: set {\"key\":\"a\",\"value\":\"b\"})")]
    Call {
        /// The method.
        #[arg(required_unless_present = "interactive")]
        method: Option<String>,
        /// Reads `METHOD [ARGS_JSON]` lines from stdin and runs each over
        /// one WebSocket session.
        #[arg(long, short = 'i')]
        interactive: bool,
        /// Context id or alias.
        #[arg(long, short = 'c')]
        context: String,
        /// Arguments: one JSON object keyed by parameter name.
        #[arg(long, default_value = "{}")]
        args: String,
        /// JSON-RPC request id.
        #[arg(long)]
        id: Option<String>,
    },
    /// Prints shell completions.
    #[command(after_help = "Example:\n  meroctl completions bash > /etc/bash_completion.d/meroctl")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum AppCmd {
    /// Installs a component from a path on the node's machine.
    #[command(
        after_help = "Example:\n  meroctl --node node1 app install --path target/wasm32-wasip2/release/kv_store.wasm"
    )]
    Install {
        /// Path of the .wasm component.
        #[arg(long)]
        path: PathBuf,
        /// Package name.
        #[arg(long, default_value = "unknown")]
        package: String,
        /// Version.
        #[arg(long, default_value = "0.0.0")]
        version: String,
        /// Metadata (stored as bytes).
        #[arg(long, short = 'm')]
        metadata: Option<String>,
    },
    /// Lists installed applications.
    Ls,
    /// Shows an application and its methods.
    Get {
        /// Application id.
        id: String,
    },
    /// Uninstalls an application no context runs.
    Uninstall {
        /// Application id.
        id: String,
    },
}

#[derive(Subcommand)]
enum NamespaceCmd {
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
        /// How long it stays valid, in seconds (default a year).
        #[arg(long)]
        expiration_timestamp: Option<u64>,
        /// The role it grants: admin, member or read-only.
        #[arg(long, default_value = "member")]
        role: String,
        /// Accepted for upstream compatibility.
        #[arg(long)]
        recursive: bool,
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
        after_help = "Example:\n  meroctl --node node2 namespace join <NAMESPACE_ID> '<INVITATION_JSON>'"
    )]
    Join {
        /// Namespace id (hex or base58).
        id: String,
        /// The invitation: `invite`'s whole output, or its inner invitation.
        invitation: String,
    },
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Joins a context of a namespace this node is a member of and pulls its state.
    #[command(after_help = "Example:\n  meroctl --node node2 group join-context <CONTEXT_ID>")]
    JoinContext {
        /// Context id.
        context: String,
    },
    /// Members of a group.
    #[command(subcommand)]
    Members(MembersCmd),
    /// Contexts of a group.
    #[command(subcommand)]
    Contexts(GroupContextsCmd),
    /// A subgroup's settings.
    #[command(subcommand)]
    Settings(GroupSettingsCmd),
}

#[derive(Subcommand)]
enum GroupSettingsCmd {
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

#[derive(Subcommand)]
enum MembersCmd {
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

#[derive(Subcommand)]
enum GroupContextsCmd {
    /// Lists contexts registered in the group.
    Ls {
        /// Group (namespace) id.
        group: String,
    },
}

#[derive(Subcommand)]
enum ContextCmd {
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

struct Out {
    format: Format,
}

impl Out {
    /// Prints `value` as JSON, or `human` as a table.
    fn show(&self, value: &Value, human: impl FnOnce() -> Table) {
        match self.format {
            Format::Json => println!("{value}"),
            Format::Human => println!("{}", human()),
        }
    }
}

/// A table of the objects in the array at `at` (a JSON pointer) in
/// `value`: one column per (header, field); a missing field shows `-`.
fn list_table(value: &Value, at: &str, columns: &[(&str, &str)]) -> Table {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let mut t = table(&headers);
    for row in value
        .pointer(at)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        t.add_row(
            columns
                .iter()
                .map(|(_, k)| match row.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => "-".into(),
                })
                .collect::<Vec<_>>(),
        );
    }
    t
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL)
        .apply_modifier(UTF8_ROUND_CORNERS)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !header.is_empty() {
        t.set_header(header.to_vec());
    }
    t
}

fn kv(rows: &[(&str, String)]) -> Table {
    let mut t = table(&[]);
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v.clone()]);
    }
    t
}

fn base_url(cli: &Cli) -> Result<String, ClientError> {
    if let Some(api) = &cli.api {
        return Ok(api.clone());
    }
    if let Some(node) = &cli.node {
        let home = cli.home.clone().unwrap_or_else(mero_config::default_home);
        let dir = mero_config::node_dir(&home, node);
        let config =
            mero_config::ConfigFile::load(&dir).map_err(|e| ClientError::Usage(e.to_string()))?;
        let addr = config
            .server_addr()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        return Ok(format!("http://{addr}"));
    }
    Ok(format!(
        "http://127.0.0.1:{}",
        mero_config::DEFAULT_SERVER_PORT
    ))
}

/// A context id, or the id an alias stands for.
async fn resolve_context(client: &Client, s: &str) -> Result<String, ClientError> {
    if parse_b58(s, "context id").is_ok() {
        return Ok(s.to_string());
    }
    let found = client
        .post(&format!("/admin-api/alias/lookup/context/{s}"), &json!({}))
        .await?;
    match found.pointer("/data/value").and_then(Value::as_str) {
        Some(id) => Ok(id.to_string()),
        None => Err(ClientError::Usage(format!(
            "`{s}` is neither a context id nor a context alias"
        ))),
    }
}

fn parse_json_arg(what: &str, s: &str) -> Result<Value, ClientError> {
    serde_json::from_str(s).map_err(|e| ClientError::Usage(format!("{what} must be JSON: {e}")))
}

async fn run(cli: Cli) -> Result<(), ClientError> {
    let out = Out {
        format: cli.output_format,
    };
    let client = Client::new(&base_url(&cli)?)?;
    match cli.command {
        Command::Completions { .. } => unreachable_completions(),
        Command::App(cmd) => app(&client, &out, cmd).await,
        Command::Namespace(cmd) => namespace(&client, &out, cmd).await,
        Command::Context(cmd) => context(&client, &out, cmd).await,
        Command::Group(cmd) => group(&client, &out, cmd).await,
        Command::Peers => {
            let value = client.get("/admin-api/peers").await?;
            let count = value.get("count").and_then(Value::as_u64).unwrap_or(0);
            out.show(&value, || kv(&[("Peers", count.to_string())]));
            Ok(())
        }
        Command::Call {
            method,
            interactive,
            context,
            args,
            id,
        } => {
            let ctx = resolve_context(&client, &context).await?;
            let method = match method {
                Some(m) if !interactive => m,
                _ => return socket::interactive(&client, &ctx, out.format == Format::Json).await,
            };
            let args = parse_json_arg("--args", &args)?;
            let req = json!({
                "jsonrpc": "2.0",
                "id": id.map_or(Value::Null, Value::String),
                "method": "execute",
                "params": {"contextId": ctx, "method": method, "argsJson": args},
            });
            let value = client.post("/jsonrpc", &req).await?;
            let resp: Response = data_raw(&value)?;
            if let Some(err) = resp.error {
                let detail = err.detail.unwrap_or_else(|| err.kind.clone());
                let message = match &err.data {
                    Value::String(s) => s.clone(),
                    Value::Object(o) if o.len() == 1 && o.contains_key("message") => {
                        o["message"].as_str().unwrap_or_default().to_string()
                    }
                    other => other.to_string(),
                };
                if out.format == Format::Json {
                    println!("{value}");
                }
                return Err(ClientError::Call {
                    kind: detail,
                    message,
                });
            }
            let output = resp.result.map(|r| r.output).unwrap_or(Value::Null);
            out.show(&value, || {
                let shown = match &output {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other).unwrap_or_default(),
                };
                kv(&[("Method", method), ("Output", shown)])
            });
            Ok(())
        }
    }
}

fn unreachable_completions() -> Result<(), ClientError> {
    Err(ClientError::Usage(
        "completions are printed before connecting".into(),
    ))
}

fn data_raw<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ClientError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ClientError::Unexpected(format!("{e}: {value}")))
}

async fn app(client: &Client, out: &Out, cmd: AppCmd) -> Result<(), ClientError> {
    match cmd {
        AppCmd::Install {
            path,
            package,
            version,
            metadata,
        } => {
            // The node reads the path on its own filesystem: send it absolute.
            let abs = std::fs::canonicalize(&path)
                .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
            let body = json!({
                "path": abs.display().to_string(),
                "metadata": metadata.unwrap_or_default().into_bytes(),
                "package": package,
                "version": version,
            });
            let value = client
                .post("/admin-api/install-dev-application", &body)
                .await?;
            let d: ApplicationIdData = data(&value)?;
            out.show(&value, || {
                let mut t = table(&["Application Installed"]);
                t.add_row(vec![format!(
                    "Successfully installed application '{}'",
                    d.application_id
                )]);
                t
            });
        }
        AppCmd::Ls => {
            let value = client.get("/admin-api/applications").await?;
            let apps: Vec<Application> = data(value.pointer("/data/apps").unwrap_or(&Value::Null))?;
            out.show(&value, || {
                let mut t = table(&["ID", "Package", "Version", "Source", "Size", "Blob"]);
                for a in &apps {
                    t.add_row(vec![
                        a.id.clone(),
                        a.package.clone(),
                        a.version.clone().unwrap_or_default(),
                        a.source.clone(),
                        a.size.to_string(),
                        format!("Blob: {}", a.blob.bytecode),
                    ]);
                }
                t
            });
        }
        AppCmd::Get { id } => {
            let value = client.get(&format!("/admin-api/applications/{id}")).await?;
            let app: Application =
                data(value.pointer("/data/application").unwrap_or(&Value::Null))?;
            out.show(&value, || {
                let methods = app
                    .methods
                    .iter()
                    .map(|m| format!("{} ({})", m.name, m.intent))
                    .collect::<Vec<_>>()
                    .join("\n");
                kv(&[
                    ("ID", app.id.clone()),
                    ("Package", app.package.clone()),
                    ("Version", app.version.clone().unwrap_or_default()),
                    ("Source", app.source.clone()),
                    ("Size", app.size.to_string()),
                    ("Blob", app.blob.bytecode.clone()),
                    ("Methods", methods),
                ])
            });
        }
        AppCmd::Uninstall { id } => {
            let value = client
                .delete(&format!("/admin-api/applications/{id}"))
                .await?;
            out.show(&value, || kv(&[("Uninstalled", id)]));
        }
    }
    Ok(())
}

fn init_params(params: Option<String>) -> Result<Vec<u8>, ClientError> {
    match params {
        None => Ok(Vec::new()),
        Some(p) => {
            parse_json_arg("--params", &p)?;
            Ok(p.into_bytes())
        }
    }
}

async fn namespace(client: &Client, out: &Out, cmd: NamespaceCmd) -> Result<(), ClientError> {
    match cmd {
        NamespaceCmd::Create {
            application_id,
            name,
            params,
        } => {
            let mut body = json!({"applicationId": application_id, "initializationParams": init_params(params)?});
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            let value = client.post("/admin-api/namespaces", &body).await?;
            let d: CreateNamespaceData = data(&value)?;
            out.show(&value, || {
                kv(&[
                    ("Namespace ID", d.namespace_id.clone()),
                    ("Context ID", d.context_id.clone()),
                ])
            });
        }
        NamespaceCmd::Ls => {
            let value = client.get("/admin-api/namespaces").await?;
            let list: Vec<Namespace> = data(&value)?;
            out.show(&value, || {
                let mut t = table(&[
                    "Namespace ID",
                    "Application ID",
                    "Members",
                    "Contexts (app version)",
                    "Name",
                ]);
                for n in &list {
                    let contexts = n
                        .contexts
                        .iter()
                        .map(|c| format!("{} ({})", c.context_id, c.application_version))
                        .collect::<Vec<_>>()
                        .join("\n");
                    t.add_row(vec![
                        n.namespace_id.clone(),
                        n.target_application_id.clone(),
                        n.member_count.to_string(),
                        contexts,
                        n.name.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                t
            });
        }
        NamespaceCmd::Get { id } => {
            let value = client.get(&format!("/admin-api/namespaces/{id}")).await?;
            let n: Namespace = data(&value)?;
            out.show(&value, || {
                let contexts = n
                    .contexts
                    .iter()
                    .map(|c| format!("{} ({})", c.context_id, c.application_version))
                    .collect::<Vec<_>>()
                    .join("\n");
                kv(&[
                    ("Namespace ID", n.namespace_id.clone()),
                    ("Name", n.name.clone().unwrap_or_else(|| "-".into())),
                    ("Application ID", n.target_application_id.clone()),
                    ("App version", n.app_version.clone().unwrap_or_default()),
                    ("Members", n.member_count.to_string()),
                    ("Contexts", contexts),
                ])
            });
        }
        NamespaceCmd::Invite {
            id,
            expiration_timestamp,
            role,
            recursive,
        } => {
            let mut body = json!({"recursive": recursive, "role": role});
            if let Some(secs) = expiration_timestamp {
                body["expirationTimestamp"] = json!(secs);
            }
            let value = client
                .post(&format!("/admin-api/namespaces/{id}/invite"), &body)
                .await?;
            // Always the pretty JSON, as upstream: it is meant to be pasted.
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        NamespaceCmd::Join { id, invitation } => {
            let pasted = parse_json_arg("invitation", &invitation)?;
            let value = client
                .post(
                    &format!("/admin-api/namespaces/{id}/join"),
                    &json!({ "invitation": pasted }),
                )
                .await?;
            out.show(&value, || {
                let mut t = Table::new();
                t.load_preset(comfy_table::presets::UTF8_FULL)
                    .apply_modifier(comfy_table::modifiers::UTF8_ROUND_CORNERS);
                t.add_row(vec!["Successfully joined namespace"]);
                t
            });
        }
        NamespaceCmd::CreateGroup {
            id,
            name,
            parent,
            restricted,
        } => {
            let value = client
                .post(
                    &format!("/admin-api/namespaces/{id}/groups"),
                    &json!({
                        "name": name,
                        "parentGroupId": parent,
                        "subgroupVisibility": if restricted { "restricted" } else { "open" },
                    }),
                )
                .await?;
            let group = value
                .pointer("/data/groupId")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string();
            out.show(&value, || kv(&[("Group ID", group)]));
        }
        NamespaceCmd::Leave { id } => {
            let value = client
                .post(&format!("/admin-api/namespaces/{id}/leave"), &json!({}))
                .await?;
            out.show(&value, || kv(&[("Left namespace", id.clone())]));
        }
        NamespaceCmd::Groups { id } => {
            let value = client
                .get(&format!("/admin-api/namespaces/{id}/groups"))
                .await?;
            out.show(&value, || {
                list_table(
                    &value,
                    "/data",
                    &[
                        ("Group ID", "groupId"),
                        ("Parent", "parentGroupId"),
                        ("Visibility", "subgroupVisibility"),
                        ("Members", "memberCount"),
                        ("Contexts", "contextCount"),
                        ("Name", "name"),
                    ],
                )
            });
        }
        NamespaceCmd::Delete { id } => {
            let value = client
                .delete(&format!("/admin-api/namespaces/{id}"))
                .await?;
            let deleted = value
                .pointer("/data/isDeleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            out.show(&value, || {
                kv(&[("Namespace ID", id), ("Deleted", deleted.to_string())])
            });
        }
    }
    Ok(())
}

fn context_row(c: &Context) -> Vec<String> {
    vec![
        c.id.clone(),
        c.name.clone().unwrap_or_default(),
        c.application_id.clone(),
        c.application_version.clone().unwrap_or_default(),
        c.root_hash.clone(),
    ]
}

const CONTEXT_HEADER: [&str; 5] = [
    "Context ID",
    "Name",
    "Application ID",
    "Version",
    "Root Hash",
];

async fn context(client: &Client, out: &Out, cmd: ContextCmd) -> Result<(), ClientError> {
    match cmd {
        ContextCmd::Create {
            application_id,
            group_id,
            params,
            name,
        } => {
            let body = json!({
                "applicationId": application_id,
                "groupId": group_id,
                "initializationParams": init_params(params)?,
                "contextSeed": null,
                "identitySecret": null,
                "name": name,
            });
            let value = client.post("/admin-api/contexts", &body).await?;
            let d: CreateContextData = data(&value)?;
            if let Some(alias) = &name {
                client
                    .post(
                        "/admin-api/alias/create/context",
                        &json!({"alias": alias, "contextId": d.context_id}),
                    )
                    .await?;
            }
            out.show(&value, || {
                let mut rows = vec![
                    ("Context ID", d.context_id.clone()),
                    ("Member Public Key", d.member_public_key.clone()),
                ];
                if let Some(alias) = name {
                    rows.push(("Alias", alias));
                }
                kv(&rows)
            });
        }
        ContextCmd::Ls => {
            let value = client.get("/admin-api/contexts").await?;
            let list: ContextList = data(&value)?;
            out.show(&value, || {
                let mut t = table(&CONTEXT_HEADER);
                for c in &list.contexts {
                    t.add_row(context_row(c));
                }
                t
            });
        }
        ContextCmd::Get { context, what } => {
            if what != "info" {
                return Err(ClientError::Usage(format!(
                    "unknown view `{what}`; use `info`"
                )));
            }
            let ctx = resolve_context(client, &context).await?;
            let value = client.get(&format!("/admin-api/contexts/{ctx}")).await?;
            let c: Context = data(&value)?;
            out.show(&value, || {
                let heads = c
                    .dag_heads
                    .iter()
                    .map(mero_api::ids::b58)
                    .collect::<Vec<_>>()
                    .join("\n");
                kv(&[
                    ("Context ID", c.id.clone()),
                    ("Name", c.name.clone().unwrap_or_default()),
                    ("Application ID", c.application_id.clone()),
                    (
                        "App version",
                        c.application_version.clone().unwrap_or_default(),
                    ),
                    ("Group ID", c.group_id.clone().unwrap_or_default()),
                    ("Root hash", c.root_hash.clone()),
                    ("DAG heads", heads),
                    ("Deltas", c.delta_count.unwrap_or_default().to_string()),
                ])
            });
        }
        ContextCmd::Watch {
            context,
            event_type,
            count,
        } => {
            let ctx = resolve_context(client, &context).await?;
            socket::watch(client, &ctx, event_type, count, out.format == Format::Json).await?;
        }
        ContextCmd::Sync { context } => {
            let ctx = resolve_context(client, &context).await?;
            let value = client
                .post(&format!("/admin-api/contexts/sync/{ctx}"), &json!({}))
                .await?;
            out.show(&value, || {
                kv(&[("Context ID", ctx), ("Sync", "started".into())])
            });
        }
        ContextCmd::Delete { context } => {
            let ctx = resolve_context(client, &context).await?;
            let value = client.delete(&format!("/admin-api/contexts/{ctx}")).await?;
            let deleted = value
                .pointer("/data/isDeleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !deleted {
                return Err(ClientError::Api {
                    status: reqwest::StatusCode::NOT_FOUND,
                    kind: "ContextNotFound".into(),
                    message: format!("no context {ctx} on this node"),
                });
            }
            out.show(&value, || {
                kv(&[("Context ID", ctx), ("Deleted", "true".into())])
            });
        }
    }
    Ok(())
}

async fn group(client: &Client, out: &Out, cmd: GroupCmd) -> Result<(), ClientError> {
    match cmd {
        GroupCmd::JoinContext { context } => {
            let value = client
                .post(&format!("/admin-api/contexts/{context}/join"), &json!({}))
                .await?;
            let get = |k: &str| {
                value
                    .pointer(&format!("/data/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            out.show(&value, || {
                kv(&[
                    ("Context ID", get("contextId")),
                    ("Member Public Key", get("memberPublicKey")),
                ])
            });
        }
        GroupCmd::Members(MembersCmd::Ls { group }) => {
            let value = client
                .get(&format!("/admin-api/groups/{group}/members"))
                .await?;
            out.show(&value, || {
                list_table(
                    &value,
                    "/members",
                    &[("Identity", "identity"), ("Role", "role")],
                )
            });
        }
        GroupCmd::Members(MembersCmd::SetCaps {
            group,
            member,
            capabilities,
            can_create_context,
            can_invite_members,
            can_join_open_subgroups,
            can_manage_members,
            can_manage_application,
            can_create_subgroup,
            can_delete_subgroup,
            can_manage_visibility,
            can_manage_metadata,
        }) => {
            let flags = [
                can_create_context,
                can_invite_members,
                can_join_open_subgroups,
                can_manage_members,
                can_manage_application,
                can_create_subgroup,
                can_delete_subgroup,
                can_manage_visibility,
                can_manage_metadata,
            ];
            let from_flags = flags
                .iter()
                .zip(CAPABILITIES)
                .filter(|(on, _)| **on)
                .fold(0, |acc, (_, (_, bit))| acc | bit);
            let mask = match capabilities {
                Some(c) => parse_caps(&c)? | from_flags,
                None if flags.iter().any(|f| *f) => from_flags,
                None => {
                    return Err(ClientError::Usage(
                        "give the capabilities: names, a number, or --can-... flags".into(),
                    ));
                }
            };
            let value = client
                .put(
                    &format!("/admin-api/groups/{group}/members/{member}/capabilities"),
                    &json!({ "capabilities": mask }),
                )
                .await?;
            out.show(&value, || {
                kv(&[
                    ("Member", member.clone()),
                    ("Capabilities", format!("{mask} ({})", caps_names(mask))),
                ])
            });
        }
        GroupCmd::Members(MembersCmd::GetCaps { group, member }) => {
            let value = client
                .get(&format!(
                    "/admin-api/groups/{group}/members/{member}/capabilities"
                ))
                .await?;
            let mask = value
                .pointer("/data/capabilities")
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32;
            out.show(&value, || {
                kv(&[
                    ("Member", member.clone()),
                    ("Capabilities", format!("{mask} ({})", caps_names(mask))),
                ])
            });
        }
        GroupCmd::Members(MembersCmd::SetRole {
            group,
            member,
            role,
        }) => {
            let role = match role.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
                "admin" => "Admin",
                "member" => "Member",
                "readonly" => "ReadOnly",
                other => {
                    return Err(ClientError::Usage(format!(
                        "unknown role `{other}`: use admin, member or read-only"
                    )));
                }
            };
            let value = client
                .put(
                    &format!("/admin-api/groups/{group}/members/{member}/role"),
                    &json!({ "role": role }),
                )
                .await?;
            out.show(&value, || {
                kv(&[("Member", member.clone()), ("Role", role.to_string())])
            });
        }
        GroupCmd::Members(MembersCmd::Remove { group, members }) => {
            let value = client
                .post(
                    &format!("/admin-api/groups/{group}/members/remove"),
                    &json!({ "members": members }),
                )
                .await?;
            out.show(&value, || kv(&[("Removed", members.join("\n"))]));
        }
        GroupCmd::Members(MembersCmd::Add { group, members }) => {
            let list: Vec<Value> = members.iter().map(|m| json!({ "identity": m })).collect();
            let value = client
                .post(
                    &format!("/admin-api/groups/{group}/members"),
                    &json!({ "members": list }),
                )
                .await?;
            out.show(&value, || kv(&[("Added", members.join("\n"))]));
        }
        GroupCmd::Settings(GroupSettingsCmd::SetSubgroupVis { group, mode }) => {
            let value = client
                .put(
                    &format!("/admin-api/groups/{group}/settings/subgroup-visibility"),
                    &json!({ "subgroupVisibility": mode }),
                )
                .await?;
            out.show(&value, || {
                kv(&[("Group ID", group.clone()), ("Visibility", mode.clone())])
            });
        }
        GroupCmd::Contexts(GroupContextsCmd::Ls { group }) => {
            let value = client
                .get(&format!("/admin-api/groups/{group}/contexts"))
                .await?;
            out.show(&value, || {
                list_table(
                    &value,
                    "/data",
                    &[("Context ID", "contextId"), ("Name", "name")],
                )
            });
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "meroctl",
            &mut std::io::stdout(),
        );
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
