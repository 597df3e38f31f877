//! The command line: the global flags, which node to talk to, and dispatch
//! to one module per noun. Each noun's module holds its clap enum next to
//! the code that runs it and the reports of what it prints.

mod app;
mod args;
mod blob;
mod call;
mod chain;
mod context;
mod group;
mod namespace;
mod peers;
mod token;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::client::{Client, ClientError};

/// The node's root credential, beside its config.toml (as `merod init`
/// writes it).
const CREDENTIAL_FILE: &str = "credential.json";

#[derive(serde::Deserialize)]
struct Credential {
    access_token: String,
}
use crate::output::{Format, Output};

/// Drive a context node: install apps, create namespaces and contexts, call methods.
#[derive(Parser)]
#[command(name = "meroctl", version, about, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// Directory holding node directories (for --node).
    #[arg(long, global = true, env = "CALIMERO_HOME")]
    home: Option<PathBuf>,
    /// A local node by name: its API address is read from <home>/<name>/config.toml.
    #[arg(long, global = true, conflicts_with = "api")]
    node: Option<String>,
    /// The node's API URL, e.g. http://127.0.0.1:2528.
    #[arg(long, global = true)]
    api: Option<String>,
    /// A bearer token; by default, with --node, the node's root credential
    /// (<home>/<name>/credential.json).
    #[arg(long, global = true, env = "MEROCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
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
  meroctl --node node2 group join-context <CONTEXT_ID>
  meroctl --node node1 token create --scope 'context:execute[<CONTEXT_ID>]' --expires 1h";

#[derive(Subcommand)]
enum Command {
    /// Applications: install, list, inspect, uninstall.
    #[command(subcommand)]
    App(app::AppCmd),
    /// Namespaces: a root group with an application and its members.
    #[command(subcommand, alias = "ns")]
    Namespace(namespace::NamespaceCmd),
    /// Contexts: app instances with their own replicated state.
    #[command(subcommand)]
    Context(context::ContextCmd),
    /// Groups: members and contexts of a namespace, and joining contexts.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Blobs: upload files, list, download (from a context's members too), delete.
    #[command(subcommand)]
    Blob(blob::BlobCmd),
    /// Chains: balances through the node's relayer, attestations it signs.
    #[command(subcommand)]
    Chain(chain::ChainCmd),
    /// How many peers this node is connected to.
    Peers,
    /// Tokens: mint scoped ones for apps and scripts, revoke, rotate keys.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Calls a method of a context; read-only or mutating as the app declares.
    #[command(after_help = call::EXAMPLES)]
    Call(call::CallArgs),
    /// Workflows: merobox's YAML format, run on nodes this command starts.
    #[command(subcommand)]
    Workflow(crate::workflow::WorkflowCmd),
    /// Prints shell completions.
    #[command(after_help = "Example:\n  meroctl completions bash > /etc/bash_completion.d/meroctl")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// Runs the command against the chosen node and prints its answer.
    pub(crate) async fn run(self) -> Result<(), ClientError> {
        if let Command::Completions { shell } = self.command {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "meroctl",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        if let Command::Workflow(cmd) = self.command {
            // Its own nodes: no --node, --api or token applies.
            return Ok(crate::workflow::run(cmd).await?);
        }
        let out = Output::new(self.output_format);
        let client = Client::new(&self.base_url()?, self.bearer()?)?;
        let outcome = match self.command {
            Command::App(cmd) => app::run(&client, &out, cmd).await,
            Command::Namespace(cmd) => namespace::run(&client, &out, cmd).await,
            Command::Context(cmd) => context::run(&client, &out, cmd).await,
            Command::Group(cmd) => group::run(&client, &out, cmd).await,
            Command::Blob(cmd) => blob::run(&client, &out, cmd).await,
            Command::Chain(cmd) => chain::run(&client, &out, cmd).await,
            Command::Peers => peers::run(&client, &out).await,
            Command::Call(cmd) => call::run(&client, &out, cmd).await,
            Command::Token(cmd) => token::run(&client, &out, cmd).await,
            // Handled above, without a node.
            Command::Completions { .. } | Command::Workflow(_) => Ok(()),
        };
        outcome.map_err(crate::client::unauthenticated_hint)
    }

    /// The bearer token: `--token`, else the root credential of `--node`
    /// if it has one (a node in proxy mode has none).
    fn bearer(&self) -> Result<Option<String>, ClientError> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        let Some(node) = &self.node else {
            return Ok(None);
        };
        let home = self.home.clone().unwrap_or_else(mero_config::default_home);
        let path = mero_config::node_dir(&home, node).join(CREDENTIAL_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ClientError::Usage(format!(
                    "cannot read the root credential {}: {e}",
                    path.display()
                )));
            }
        };
        let credential: Credential = serde_json::from_str(&text).map_err(|e| {
            ClientError::Usage(format!("{} is not a credential: {e}", path.display()))
        })?;
        Ok(Some(credential.access_token))
    }

    /// The node's API: `--api`, else `--node`'s configured address, else
    /// the default port on loopback.
    fn base_url(&self) -> Result<String, ClientError> {
        if let Some(api) = &self.api {
            return Ok(api.clone());
        }
        if let Some(node) = &self.node {
            let home = self.home.clone().unwrap_or_else(mero_config::default_home);
            let dir = mero_config::node_dir(&home, node);
            let config = |source| ClientError::Config {
                node: node.clone(),
                source,
            };
            let addr = mero_config::ConfigFile::load(&dir)
                .and_then(|c| c.server_addr())
                .map_err(config)?;
            return Ok(format!("http://{addr}"));
        }
        Ok(format!(
            "http://127.0.0.1:{}",
            mero_config::DEFAULT_SERVER_PORT
        ))
    }
}
