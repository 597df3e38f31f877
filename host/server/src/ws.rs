//! `GET /ws`: event subscriptions and calls over one WebSocket.
//!
//! Requests are `{"id": u64|null, "method": "subscribe"|"unsubscribe"|
//! "execute", "params": {...}}`; replies carry the request's id, events
//! `"id": null`. A client that does not read its events is disconnected
//! once [`MAX_QUEUED_BYTES`] wait for it, once it falls
//! [`mero_node::events::CHANNEL_CAPACITY`] events behind the node, or once
//! it has read nothing for [`SEND_TIMEOUT`]: the node's memory and its calls
//! never wait on a subscriber. The close frame (1008, the reason starting
//! `slow_consumer: `) follows what the socket holds already, and reaches a
//! client that reads again within [`CLOSE_TIMEOUT`]. A socket
//! lives no longer than the token it was opened with: when that is revoked
//! or expires, the socket is closed (1008, the reason naming
//! `token_revoked` or `token_expired`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use mero_node::Node;
use mero_node::events::Filter;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};

use crate::auth::{Auth, Grants, Permission};
use crate::listen::ConnSlot;

/// Bytes that may wait for one client before it is dropped.
pub(crate) const MAX_QUEUED_BYTES: usize = 4 << 20;

/// Messages that may wait for one client (bounded by bytes first).
const OUT_QUEUE: usize = 4_096;

/// Largest request accepted on the socket.
const MAX_MESSAGE: usize = 1 << 20;

/// How long one message may take to go out before the client is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the close frame to a dropped client may wait for it to read
/// what the socket holds before the connection is cut without it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the close reason of a subscriber dropped for not reading starts
/// (then `: ` and what it did): `token_revoked` and `token_expired` are the
/// other 1008s.
const SLOW: &str = "slow_consumer";

/// Code 1008 (policy violation): the client did not keep up, or its token
/// is no longer accepted.
const POLICY: u16 = 1008;

/// Upgrades to a WebSocket session. The browser layer has already refused
/// foreign origins, and the auth layer has checked the token (header or
/// `?token=`); calls and subscriptions are checked against its grants.
pub(crate) async fn handle(
    State(node): State<Node>,
    State(auth): State<Auth>,
    State(limit): State<InFlight>,
    Extension(grants): Extension<Grants>,
    slot: Option<Extension<ConnSlot>>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            // The connection's place under `max_connections` is held until the
            // socket closes.
            let _slot = slot;
            session(node, auth, socket, grants, limit.0).await;
        })
}

/// How many `execute` calls one socket may have running.
#[derive(Clone, Copy)]
pub(crate) struct InFlight(usize);

impl axum::extract::FromRef<crate::AppState> for InFlight {
    fn from_ref(s: &crate::AppState) -> InFlight {
        InFlight(s.ws_max_in_flight)
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    id: Option<u64>,
    method: String,
    #[serde(default)]
    params: Value,
}

/// What subscribe and unsubscribe take.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Subscription {
    /// Base58 context ids.
    #[serde(default, alias = "context_ids")]
    pub context_ids: Vec<String>,
    /// One more, as `context_id` (the seed page's spelling).
    #[serde(default, alias = "context_id")]
    pub context_id: Option<String>,
    /// Hex namespace or subgroup ids.
    #[serde(default, alias = "group_ids")]
    pub group_ids: Vec<String>,
    /// Event types (or app event kinds) to keep; all if absent.
    #[serde(default, alias = "event_types")]
    pub event_types: Option<Vec<String>>,
    /// One more, as `event_type`.
    #[serde(default, alias = "event_type")]
    pub event_type: Option<String>,
}

impl Subscription {
    /// Folds the singular spellings into the lists.
    pub(crate) fn normalized(mut self) -> Subscription {
        if let Some(c) = self.context_id.take() {
            self.context_ids.push(c);
        }
        if let Some(t) = self.event_type.take() {
            self.event_types.get_or_insert_with(Vec::new).push(t);
        }
        self
    }
}

fn reply(id: Option<u64>, result: Value) -> Value {
    json!({ "id": id, "result": result })
}

fn error(id: Option<u64>, kind: &str, data: impl Into<Value>) -> Value {
    json!({ "id": id, "error": { "type": kind, "data": data.into() } })
}

/// The queue to one client, bounded in messages and in bytes.
#[derive(Clone)]
struct Out {
    tx: mpsc::Sender<String>,
    queued: Arc<AtomicUsize>,
}

impl Out {
    /// Queues `text`; false if the client is too far behind.
    fn push(&self, text: String) -> bool {
        let len = text.len();
        if self.queued.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        if self.tx.try_send(text).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn send(&self, v: &Value) -> bool {
        self.push(v.to_string())
    }
}

async fn session(node: Node, auth: Auth, socket: WebSocket, grants: Grants, max_in_flight: usize) {
    let (sink, mut stream) = socket.split();
    let (tx, out_rx) = mpsc::channel::<String>(OUT_QUEUE);
    let out = Out {
        tx,
        queued: Arc::default(),
    };
    let (close, close_rx) = oneshot::channel::<String>();
    let writer = tokio::spawn(write(sink, out_rx, out.queued.clone(), close_rx));
    let mut events = node.events().subscribe();
    let mut filter = Filter::default();
    // Calls run in their own tasks, at most `max_in_flight` at once; a call
    // past that waits here and the socket is not read meanwhile, so a
    // client that floods calls is held back by TCP, not by our memory.
    let gate = Arc::new(Semaphore::new(max_in_flight));
    let mut waiting: Option<(Option<u64>, Value)> = None;
    let ended = auth.ended(&grants);
    tokio::pin!(ended);
    let dropped = loop {
        tokio::select! {
            why = &mut ended => {
                break Some(format!("{}: {why}", why.code().unwrap_or("unauthorized")));
            }
            permit = gate.clone().acquire_owned(), if waiting.is_some() => {
                let (Ok(permit), Some((id, params))) = (permit, waiting.take()) else {
                    break None;
                };
                spawn_execute(&node, &grants, &out, id, params, permit);
            }
            msg = stream.next(), if waiting.is_none() => match msg {
                Some(Ok(Message::Text(text))) => {
                    match request(&node, &grants, &mut filter, text.as_str()) {
                        Step::Answer(answer) => {
                            if !out.send(&answer) {
                                break Some(format!("{SLOW}: the client does not read its replies"));
                            }
                        }
                        Step::Subscribed(answer, contexts) => {
                            if !out.send(&answer) {
                                break Some(format!("{SLOW}: the client does not read its replies"));
                            }
                            // Presence is state, not history: a new subscriber
                            // gets the current states, each with its age.
                            for e in contexts.iter().flat_map(|c| node.ephemeral_replay(c)) {
                                if filter.matches(&e) {
                                    out.push(format!(r#"{{"id":null,"result":{}}}"#, e.text()));
                                }
                            }
                        }
                        Step::Execute(id, params) => match gate.clone().try_acquire_owned() {
                            Ok(permit) => spawn_execute(&node, &grants, &out, id, params, permit),
                            Err(_) => waiting = Some((id, params)),
                        },
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let e = error(None, "ParseError", "requests are JSON text messages");
                    if !out.send(&e) {
                        break Some(format!("{SLOW}: the client does not read its replies"));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            },
            ev = events.recv() => match ev {
                Ok(e) if filter.matches(&e) => {
                    if !out.push(format!(r#"{{"id":null,"result":{}}}"#, e.text())) {
                        break Some(format!(
                            "{SLOW}: the client fell {MAX_QUEUED_BYTES} bytes of events behind"
                        ));
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    break Some(format!("{SLOW}: the client fell {n} events behind the node"));
                }
                Err(broadcast::error::RecvError::Closed) => break None,
            },
        }
    };
    if let Some(reason) = dropped {
        tracing::info!(%reason, "dropping a WebSocket subscriber");
        let _ = close.send(reason);
    }
    drop(out);
    let _ = writer.await;
}

/// Runs one call in its own task, holding `permit` until it has answered.
fn spawn_execute(
    node: &Node,
    grants: &Grants,
    out: &Out,
    id: Option<u64>,
    params: Value,
    permit: OwnedSemaphorePermit,
) {
    let node = node.clone();
    let grants = grants.clone();
    let out = out.clone();
    tokio::spawn(async move {
        let (_, answer) =
            crate::jsonrpc::execute(&node, &grants, id.map_or(Value::Null, Value::from), params)
                .await;
        let mut answer = serde_json::to_value(answer.0).unwrap_or(Value::Null);
        if let Some(map) = answer.as_object_mut() {
            map.remove("jsonrpc");
        }
        // A full queue means the client is being dropped anyway.
        let _ = out.send(&answer);
        drop(permit);
    });
}

/// Sends queued messages; on `close`, or when the client has read nothing
/// for [`SEND_TIMEOUT`], a close frame with the reason.
async fn write(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut out: mpsc::Receiver<String>,
    queued: Arc<AtomicUsize>,
    mut close: oneshot::Receiver<String>,
) {
    let reason = loop {
        tokio::select! {
            biased;
            reason = &mut close => break reason.ok(),
            msg = out.recv() => {
                let Some(msg) = msg else { break None };
                // What else is queued goes out with it: one flush (one
                // write to the socket) for many events.
                let mut batch = vec![msg];
                while batch.len() < 64 {
                    match out.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                let send = async {
                    for msg in batch {
                        queued.fetch_sub(msg.len(), Ordering::Relaxed);
                        sink.feed(Message::Text(Utf8Bytes::from(msg))).await?;
                    }
                    sink.flush().await
                };
                // A client that does not read leaves this waiting for room:
                // the session giving up on it meanwhile cuts the rest of the
                // batch (the frames already fed stay whole, in order).
                tokio::select! {
                    biased;
                    reason = &mut close => break reason.ok(),
                    sent = tokio::time::timeout(SEND_TIMEOUT, send) => match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => break Some(format!(
                            "{SLOW}: the client took no events for {} s",
                            SEND_TIMEOUT.as_secs()
                        )),
                    },
                }
            }
        }
    };
    // Nothing more is queued for it: the session ends at its next event.
    drop(out);
    if let Some(reason) = reason {
        // Behind what the socket holds already: it reaches a client that
        // reads again within CLOSE_TIMEOUT.
        let frame = CloseFrame {
            code: POLICY,
            reason: Utf8Bytes::from(reason),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    }
}

/// What one request asks for.
enum Step {
    /// This answer, now.
    Answer(Value),
    /// A subscription taken: its answer, then the contexts' current
    /// ephemeral states.
    Subscribed(Value, Vec<mero_node::ContextId>),
    /// A call, answered from its own task so that events keep flowing.
    Execute(Option<u64>, Value),
}

fn request(node: &Node, grants: &Grants, filter: &mut Filter, text: &str) -> Step {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return Step::Answer(error(None, "ParseError", e.to_string())),
    };
    let id = req.id;
    Step::Answer(match req.method.as_str() {
        "subscribe" => return subscribe(node, grants, filter, id, req.params),
        "unsubscribe" => unsubscribe(filter, id, req.params),
        "execute" => return Step::Execute(id, req.params),
        other => error(
            id,
            "ParseError",
            format!("unknown method `{other}`: subscribe, unsubscribe or execute"),
        ),
    })
}

/// Whether `grants` may see the events of these contexts and groups: a
/// context needs `context:execute[<ctx>]` or `context:list[<ctx>]`, a group
/// `group:list[<group>]`. The error names what is missing.
pub(crate) fn may_subscribe(grants: &Grants, s: &Subscription) -> Result<(), String> {
    for c in &s.context_ids {
        let exec = Permission::new(&["context", "execute"], &[c]);
        let list = Permission::new(&["context", "list"], &[c]);
        if !grants.allows(&exec) && !grants.allows(&list) {
            return Err(format!("the token lacks the permission `{list}`"));
        }
    }
    for g in &s.group_ids {
        let list = Permission::new(&["group", "list"], &[g]);
        if !grants.allows(&list) {
            return Err(format!("the token lacks the permission `{list}`"));
        }
    }
    Ok(())
}

/// Parses a subscription's ids; the error names what is wrong.
pub(crate) fn parse_ids(
    s: &Subscription,
) -> Result<(Vec<mero_node::ContextId>, Vec<[u8; 32]>), String> {
    let contexts = s
        .context_ids
        .iter()
        .map(|c| {
            mero_api::ids::parse_b58(c, "context id")
                .map(mero_node::ContextId)
                .map_err(|e| format!("{c}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let groups = s
        .group_ids
        .iter()
        .map(|g| mero_api::ids::parse_group(g).map_err(|e| format!("{g}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((contexts, groups))
}

/// Checks that this node may hand out every id's events; the error lists
/// each refused id with why.
pub(crate) fn authorize(
    node: &Node,
    contexts: &[mero_node::ContextId],
    groups: &[[u8; 32]],
) -> Result<(), (&'static str, String)> {
    let mut refused = Vec::new();
    let mut kind = "NotFound";
    for c in contexts {
        if let Err(e) = node.check_subscribe_context(c) {
            if matches!(e, mero_node::NodeError::Forbidden { .. }) {
                kind = "Unauthorized";
            }
            refused.push(format!("{}: {e}", bs58::encode(c.0).into_string()));
        }
    }
    for g in groups {
        if let Err(e) = node.check_subscribe_group(g) {
            if matches!(e, mero_node::NodeError::Forbidden { .. }) {
                kind = "Unauthorized";
            }
            refused.push(format!("{}: {e}", hex::encode(g)));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err((kind, refused.join("; ")))
    }
}

/// A subscription request's ids, or the error reply.
#[allow(clippy::type_complexity, reason = "one private helper's triple")]
fn parsed(
    id: Option<u64>,
    params: Value,
) -> Result<(Subscription, Vec<mero_node::ContextId>, Vec<[u8; 32]>), Value> {
    let s = serde_json::from_value::<Subscription>(params)
        .map_err(|e| error(id, "ParseError", e.to_string()))?
        .normalized();
    let (contexts, groups) = parse_ids(&s).map_err(|e| error(id, "ParseError", e))?;
    Ok((s, contexts, groups))
}

/// The reply naming the ids a request took.
fn accepted(id: Option<u64>, s: &Subscription) -> Value {
    let mut result = json!({ "contextIds": s.context_ids });
    if !s.group_ids.is_empty() {
        result["groupIds"] = json!(s.group_ids);
    }
    reply(id, result)
}

fn subscribe(
    node: &Node,
    grants: &Grants,
    filter: &mut Filter,
    id: Option<u64>,
    params: Value,
) -> Step {
    let (s, contexts, groups) = match parsed(id, params) {
        Ok(x) => x,
        Err(e) => return Step::Answer(e),
    };
    if let Err(why) = may_subscribe(grants, &s) {
        return Step::Answer(error(id, "Unauthorized", why));
    }
    // All or nothing: a refused id is an error, never a silent drop.
    if let Err((kind, why)) = authorize(node, &contexts, &groups) {
        return Step::Answer(error(id, kind, why));
    }
    filter.contexts.extend(contexts.iter().copied());
    filter.groups.extend(groups);
    if let Some(types) = &s.event_types {
        filter.types = types.iter().cloned().collect();
    }
    Step::Subscribed(accepted(id, &s), contexts)
}

fn unsubscribe(filter: &mut Filter, id: Option<u64>, params: Value) -> Value {
    let (s, contexts, groups) = match parsed(id, params) {
        Ok(x) => x,
        Err(e) => return e,
    };
    for c in &contexts {
        filter.contexts.remove(c);
    }
    for g in &groups {
        filter.groups.remove(g);
    }
    accepted(id, &s)
}
