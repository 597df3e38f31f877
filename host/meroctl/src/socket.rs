//! Commands over the node's WebSocket (`/ws`): `context watch` prints events
//! as they arrive; `call -i` runs calls typed one per line.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, ClientError};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(client: &Client) -> Result<Ws, ClientError> {
    let url = format!("{}/ws", client.base().replacen("http", "ws", 1));
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| ClientError::Unexpected(format!("cannot open {url}: {e}")))?;
    Ok(ws)
}

async fn send(ws: &mut Ws, v: &Value) -> Result<(), ClientError> {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .map_err(|e| ClientError::Unexpected(format!("the socket closed: {e}")))
}

/// The next JSON message; `None` when the node closed the socket (with its
/// reason, if it gave one).
async fn next(ws: &mut Ws) -> Result<Option<Value>, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .map(Some)
                    .map_err(|e| ClientError::Unexpected(format!("{e}: {t}")));
            }
            Some(Ok(Message::Close(frame))) => {
                if let Some(f) = frame {
                    return Err(ClientError::Unexpected(format!(
                        "the node closed the socket: {}",
                        f.reason
                    )));
                }
                return Ok(None);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ClientError::Unexpected(e.to_string())),
            None => return Ok(None),
        }
    }
}

/// The error of a reply, as a client error.
fn failed(reply: &Value) -> Option<ClientError> {
    let e = reply.get("error")?;
    Some(ClientError::Api {
        status: reqwest::StatusCode::OK,
        kind: e["type"].as_str().unwrap_or("Error").to_string(),
        message: match &e["data"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    })
}

/// One event as a line.
fn human(e: &Value) -> String {
    let data = &e["data"];
    let detail = match e["type"].as_str() {
        Some("ExecutionEvent") => {
            format!("{} {}", data["kind"].as_str().unwrap_or("?"), data["data"])
        }
        Some("StateMutation") => format!(
            "root {} ({} event(s))",
            data["newRoot"].as_str().unwrap_or("?"),
            data["events"].as_array().map_or(0, Vec::len)
        ),
        _ => data.to_string(),
    };
    let scope = e["contextId"]
        .as_str()
        .or_else(|| e["groupId"].as_str())
        .unwrap_or("-");
    format!(
        "{:<20} {scope}  {detail}",
        e["type"].as_str().unwrap_or("?")
    )
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
    let mut ws = connect(client).await?;
    let mut params = json!({ "contextIds": [context] });
    if !event_types.is_empty() {
        params["eventTypes"] = json!(event_types);
    }
    send(
        &mut ws,
        &json!({"id": 1, "method": "subscribe", "params": params}),
    )
    .await?;
    let mut seen = 0;
    while count.is_none_or(|n| seen < n) {
        let Some(msg) = next(&mut ws).await? else {
            break;
        };
        if msg["id"] == 1 {
            if let Some(e) = failed(&msg) {
                return Err(e);
            }
            // On stderr, so JSON lines on stdout stay clean.
            eprintln!("watching {context}; Ctrl-C to stop");
            continue;
        }
        let event = &msg["result"];
        if json_lines {
            println!("{event}");
        } else {
            println!("{}", human(event));
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
    let mut ws = connect(client).await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut id = 0u64;
    if !json_lines {
        eprintln!("calls on {context}: one `METHOD [ARGS_JSON]` a line; end with Ctrl-D");
    }
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| ClientError::Unexpected(e.to_string()))?
    {
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
        let req = json!({"id": id, "method": "execute",
            "params": {"contextId": context, "method": method, "argsJson": args}});
        send(&mut ws, &req).await?;
        let reply = loop {
            match next(&mut ws).await? {
                Some(v) if v["id"] == id => break v,
                Some(_) => {}
                None => return Err(ClientError::Unexpected("the node closed the socket".into())),
            }
        };
        if json_lines {
            println!("{reply}");
        } else if let Some(e) = failed(&reply) {
            eprintln!("error: {e}");
        } else {
            match &reply["result"]["output"] {
                Value::String(s) => println!("{s}"),
                other => println!("{other}"),
            }
        }
    }
    Ok(())
}
