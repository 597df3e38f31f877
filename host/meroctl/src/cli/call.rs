//! `meroctl call`: runs one method of a context over JSON-RPC, or many
//! typed one per line over the WebSocket (`-i`).

use clap::Args;
use comfy_table::Table;
use mero_api::jsonrpc::{ExecuteParams, Request, Response};
use serde::Serialize;
use serde_json::Value;

use super::args::parse_json;
use super::context::resolve;
use crate::client::{Client, ClientError};
use crate::output::{Format, Output, Report, kv};
use crate::socket;

pub(super) const EXAMPLES: &str = "Examples:
  meroctl --node node1 call set --context <CONTEXT_ID> --args '{\"key\":\"a\",\"value\":\"b\"}'
  meroctl --node node1 call entries --context my-alias
  meroctl --node node1 call -i --context my-alias   (then: set {\"key\":\"a\",\"value\":\"b\"})";

#[derive(Args)]
pub(super) struct CallArgs {
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
}

/// A call's answer. JSON mode prints the JSON-RPC response as the node sent
/// it: that is the protocol's own shape (not an admin envelope), and it
/// echoes the `--id` the caller chose.
#[derive(Serialize)]
#[serde(transparent)]
struct Called {
    #[serde(skip)]
    method: String,
    response: Response,
}

pub(super) async fn run(client: &Client, out: &Output, cmd: CallArgs) -> Result<(), ClientError> {
    let ctx = resolve(client, &cmd.context).await?;
    let method = match cmd.method {
        Some(m) if !cmd.interactive => m,
        _ => return socket::interactive(client, &ctx, out.format() == Format::Json).await,
    };
    let params = ExecuteParams {
        context_id: ctx,
        method: method.clone(),
        args_json: parse_json("--args", &cmd.args)?,
    };
    let req = Request {
        jsonrpc: "2.0".into(),
        id: cmd.id.map_or(Value::Null, Value::String),
        method: "execute".into(),
        params: serde_json::to_value(params).map_err(ClientError::Render)?,
    };
    let response: Response = client.post("/jsonrpc", &req).await?;
    let failed = response.error.clone();
    let called = Called { method, response };
    if let Some(err) = failed {
        // Scripts get the error response on stdout too; people only the
        // message, on stderr.
        if out.format() == Format::Json {
            out.write(&called)?;
        }
        return Err(ClientError::Call {
            message: err.message(),
            kind: err.detail.unwrap_or(err.kind),
        });
    }
    out.write(&called)
}

impl Report for Called {
    fn table(&self) -> Table {
        let shown = match self.response.result.as_ref().map(|r| &r.output) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => pretty(other),
            None => pretty(&Value::Null),
        };
        kv(&[("Method", self.method.clone()), ("Output", shown)])
    }
}

fn pretty(v: &Value) -> String {
    // A `Value` always renders.
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_call_shows_strings_bare_and_json_pretty() {
        let called = |output| Called {
            method: "get".into(),
            response: Response::ok(Value::Null, output),
        };
        let shown = called(json!("b")).human();
        assert!(shown.contains("│ Output ┆ b   │"), "{shown}");
        let shown = called(json!({"a": "b"})).human();
        assert!(shown.contains("┆   \"a\": \"b\" │"), "{shown}");
        assert!(called(Value::Null).human().contains("┆ null │"));
        let json = serde_json::to_value(called(json!("b"))).unwrap();
        assert_eq!(
            json,
            json!({"jsonrpc": "2.0", "id": null, "result": {"output": "b"}})
        );
    }
}
