//! Commands over the node's WebSocket (`/ws`): `context watch` prints events
//! as they arrive; `call -i` runs calls typed one per line. Messages are the
//! `mero_api::ws` types.

use std::io::Write as _;

use futures::{SinkExt, StreamExt};
use mero_api::jsonrpc::{ExecuteParams, ExecuteResult, RpcError};
use mero_api::ws::{
    Event, ExecutionEventData, Message, Request, StateMutationData, SubscribeParams,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite;

use crate::client::{Client, ClientError};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A session with the node's socket.
struct Session {
    url: String,
    ws: Ws,
}

impl Session {
    async fn open(client: &Client) -> Result<Session, ClientError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let url = format!("{}/ws", client.base().replacen("http", "ws", 1));
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| socket_error(&url, e))?;
        // The token goes in a header at the upgrade, never in the URL.
        if let Some(t) = client.token() {
            let value = format!("Bearer {t}")
                .parse()
                .map_err(|_| ClientError::Usage("the token is not a valid header value".into()))?;
            req.headers_mut().insert("authorization", value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| socket_error(&url, e))?;
        Ok(Session { url, ws })
    }

    async fn send<P: Serialize>(&mut self, req: &Request<P>) -> Result<(), ClientError> {
        let text = serde_json::to_string(req).map_err(ClientError::Render)?;
        self.ws
            .send(tungstenite::Message::Text(text.into()))
            .await
            .map_err(|e| socket_error(&self.url, e))
    }

    /// The next message; `None` when the node closed the socket without a
    /// reason (with one, an error saying it).
    async fn next(&mut self) -> Result<Option<Message>, ClientError> {
        loop {
            match self.ws.next().await {
                Some(Ok(tungstenite::Message::Text(t))) => {
                    return decode(&self.url, t.as_str()).map(Some);
                }
                Some(Ok(tungstenite::Message::Close(frame))) => {
                    if let Some(f) = frame {
                        return Err(ClientError::Unexpected(format!(
                            "the node closed the socket: {}",
                            f.reason
                        )));
                    }
                    return Ok(None);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(socket_error(&self.url, e)),
                None => return Ok(None),
            }
        }
    }
}

fn socket_error(url: &str, e: tungstenite::Error) -> ClientError {
    ClientError::Socket {
        url: url.to_string(),
        source: Box::new(e),
    }
}

fn decode<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, ClientError> {
    serde_json::from_str(text).map_err(|source| ClientError::Decode {
        what: what.to_string(),
        body: text.to_string(),
        source,
    })
}

/// A reply's result as `T`.
fn result<T: DeserializeOwned>(url: &str, result: Option<Value>) -> Result<T, ClientError> {
    let v = result.unwrap_or(Value::Null);
    serde_json::from_value(v.clone()).map_err(|source| ClientError::Decode {
        what: url.to_string(),
        body: v.to_string(),
        source,
    })
}

/// A failed request's error, as a client error.
fn refused(e: RpcError) -> ClientError {
    ClientError::Api {
        status: reqwest::StatusCode::OK,
        message: e.message(),
        kind: e.kind,
    }
}

/// One event as a line.
fn human(e: &Event) -> String {
    let detail = match e.kind.as_str() {
        "ExecutionEvent" => serde_json::from_value::<ExecutionEventData>(e.data.clone())
            .map(|d| format!("{} {}", d.kind, d.data)),
        "StateMutation" => serde_json::from_value::<StateMutationData>(e.data.clone())
            .map(|d| format!("root {} ({} event(s))", d.new_root, d.events.len())),
        _ => Ok(e.data.to_string()),
    }
    // Data of an unexpected shape is still worth seeing.
    .unwrap_or_else(|_| e.data.to_string());
    let scope = e
        .context_id
        .as_deref()
        .or(e.group_id.as_deref())
        .unwrap_or("-");
    format!("{:<20} {scope}  {detail}", e.kind)
}

fn print(line: impl std::fmt::Display) -> Result<(), ClientError> {
    writeln!(std::io::stdout().lock(), "{line}").map_err(ClientError::Print)
}

/// `context watch`: subscribes to `context` (and `event_types`, if any) and
/// prints each event on a line, until `count` events or the socket closes.
pub(crate) async fn watch(
    client: &Client,
    context: &str,
    event_types: Vec<String>,
    count: Option<usize>,
    json_lines: bool,
) -> Result<(), ClientError> {
    let mut session = Session::open(client).await?;
    let params = SubscribeParams {
        context_ids: vec![context.to_string()],
        group_ids: Vec::new(),
        event_types: (!event_types.is_empty()).then_some(event_types),
    };
    session
        .send(&Request {
            id: 1,
            method: "subscribe".into(),
            params,
        })
        .await?;
    let mut seen = 0;
    while count.is_none_or(|n| seen < n) {
        let Some(msg) = session.next().await? else {
            break;
        };
        if msg.id == Some(1) {
            if let Some(e) = msg.error {
                return Err(refused(e));
            }
            // On stderr, so JSON lines on stdout stay clean.
            eprintln!("watching {context}; Ctrl-C to stop");
            continue;
        }
        let event: Event = result(&session.url, msg.result)?;
        if json_lines {
            print(serde_json::to_string(&event).map_err(ClientError::Render)?)?;
        } else {
            print(human(&event))?;
        }
        seen += 1;
    }
    Ok(())
}

/// `call -i`: reads `METHOD [ARGS_JSON]` lines and runs each over the
/// socket, printing its output (or error) until end of input.
pub(crate) async fn interactive(
    client: &Client,
    context: &str,
    json_lines: bool,
) -> Result<(), ClientError> {
    let mut session = Session::open(client).await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut id = 0u64;
    if !json_lines {
        eprintln!("calls on {context}: one `METHOD [ARGS_JSON]` a line; end with Ctrl-D");
    }
    while let Some(line) = lines.next_line().await.map_err(ClientError::Stdin)? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (method, args) = line.split_once(char::is_whitespace).unwrap_or((line, "{}"));
        let args: Value = match serde_json::from_str(args.trim()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: the arguments are not JSON: {e}");
                continue;
            }
        };
        id += 1;
        let params = ExecuteParams {
            context_id: context.to_string(),
            method: method.to_string(),
            args_json: args,
        };
        session
            .send(&Request {
                id,
                method: "execute".into(),
                params,
            })
            .await?;
        let reply = loop {
            match session.next().await? {
                Some(m) if m.id == Some(id) => break m,
                Some(_) => {}
                None => return Err(ClientError::Unexpected("the node closed the socket".into())),
            }
        };
        if json_lines {
            print(serde_json::to_string(&reply).map_err(ClientError::Render)?)?;
        } else if let Some(e) = reply.error {
            eprintln!("error: {}", refused(e));
        } else {
            let done: ExecuteResult = result(&session.url, reply.result)?;
            match done.output {
                Value::String(s) => print(s)?,
                other => print(other)?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_print_one_line_each() {
        let event = |kind: &str, data| Event {
            context_id: Some("Ctx1".into()),
            group_id: None,
            kind: kind.into(),
            data,
        };
        assert_eq!(
            human(&event(
                "ExecutionEvent",
                json!({"kind": "Inserted", "data": {"key": "a"}})
            )),
            r#"ExecutionEvent       Ctx1  Inserted {"key":"a"}"#
        );
        assert_eq!(
            human(&event(
                "StateMutation",
                json!({"newRoot": "Root1", "deltaId": "D", "local": true,
                    "events": [{"kind": "Inserted", "data": [1], "handler": null}]})
            )),
            "StateMutation        Ctx1  root Root1 (1 event(s))"
        );
        assert_eq!(
            human(&event("SyncStatus", json!({"state": "idle"}))),
            r#"SyncStatus           Ctx1  {"state":"idle"}"#
        );
    }
}
