//! `GET /sse`: the same events as `/ws`, as a server-sent event stream.
//!
//! `GET /sse?contextIds=A,B&groupIds=G&eventTypes=T` opens a session (its id
//! comes back in the `X-SSE-Session-ID` header and in the first event);
//! `POST /sse/subscription` changes what a session receives. Every event has
//! the id `{run}-{seq}`: a client that reconnects with `Last-Event-ID` (and
//! its session id, to keep its subscriptions) first receives what it missed
//! from the node's event log (the last [`mero_node::events::LOG_CAPACITY`]
//! events), then live ones. When the log no longer has them, or the node
//! restarted in between, a `Gap` event says so instead of silence. A client
//! that falls [`mero_node::events::CHANNEL_CAPACITY`] events behind (it
//! stopped reading, so the stream is not polled while the node publishes)
//! has its stream ended; it resumes the same way, `EventSource` on its own.
//! Members' ephemeral states (`set_ephemeral`) are state, not history:
//! each stream opened or resumed first gets the current ones of its
//! contexts, as `Ephemeral` events with their `ageMs` and no id. A stream
//! lives no longer than the token it was opened with: when that is revoked
//! or expires, a last event says so (`{"type": "TokenRevoked" |
//! "TokenExpired", "data": {"code", "reason"}}`) and the stream ends.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use mero_node::Node;
use mero_node::events::{Event, Filter};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::{Auth, AuthError, Grants};
use crate::error::ApiError;
use crate::ws::{Subscription, authorize, may_subscribe, parse_ids};

/// Sessions kept for clients to come back to; the oldest go first.
const MAX_SESSIONS: usize = 1_024;

/// Subscriptions of SSE sessions, by session id.
#[derive(Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<SessionMap>>);

#[derive(Default)]
struct SessionMap {
    by_id: HashMap<String, Arc<RwLock<Filter>>>,
    order: VecDeque<String>,
}

impl Sessions {
    fn get(&self, id: &str) -> Option<Arc<RwLock<Filter>>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.by_id.get(id).cloned()
    }

    fn open(&self, filter: Filter) -> (String, Arc<RwLock<Filter>>) {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let filter = Arc::new(RwLock::new(filter));
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.order.len() >= MAX_SESSIONS
            && let Some(old) = map.order.pop_front()
        {
            map.by_id.remove(&old);
        }
        map.order.push_back(id.clone());
        map.by_id.insert(id.clone(), filter.clone());
        (id, filter)
    }
}

/// What `GET /sse` takes: comma-separated lists.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpenQuery {
    #[serde(default)]
    context_ids: Option<String>,
    #[serde(default)]
    group_ids: Option<String>,
    #[serde(default)]
    event_types: Option<String>,
}

fn list(s: Option<&String>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// Applies a subscription to `filter`, or says why it cannot.
fn subscribe(
    node: &Node,
    grants: &Grants,
    filter: &mut Filter,
    s: &Subscription,
) -> Result<(), ApiError> {
    may_subscribe(grants, s).map_err(|why| ApiError::forbidden("Forbidden", why))?;
    let (contexts, groups) = parse_ids(s).map_err(|e| ApiError::bad("InvalidId", e))?;
    authorize(node, &contexts, &groups).map_err(|(kind, why)| {
        if kind == "Unauthorized" {
            ApiError::forbidden("NotAMember", why)
        } else {
            ApiError::not_found("NotFound", why)
        }
    })?;
    filter.contexts.extend(contexts);
    filter.groups.extend(groups);
    if let Some(types) = &s.event_types {
        filter.types = types.iter().cloned().collect();
    }
    Ok(())
}

/// Opens (or resumes) an event stream.
pub(crate) async fn open(
    State(node): State<Node>,
    State(auth): State<Auth>,
    State(sessions): State<Sessions>,
    Extension(grants): Extension<Grants>,
    headers: HeaderMap,
    Query(q): Query<OpenQuery>,
) -> Result<Response, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let asked = Subscription {
        context_ids: list(q.context_ids.as_ref()),
        group_ids: list(q.group_ids.as_ref()),
        event_types: q.event_types.as_ref().map(|t| list(Some(t))),
        ..Subscription::default()
    };
    // A known session keeps its subscriptions; the query adds to them.
    let (id, filter) = match header("x-sse-session-id").and_then(|id| {
        let f = sessions.get(&id)?;
        Some((id, f))
    }) {
        Some(found) => found,
        None => sessions.open(Filter::default()),
    };
    {
        let mut f = filter.write().unwrap_or_else(|p| p.into_inner());
        subscribe(&node, &grants, &mut f, &asked)?;
    }
    let bus = node.events().clone();
    let resume = header("last-event-id").and_then(|last| {
        let (run, seq) = last.split_once('-')?;
        Some((run.parse::<u64>().ok()?, seq.parse::<u64>().ok()?))
    });
    let (rx, first) = match resume {
        Some((run, seq)) if run == bus.boot() => match bus.resume(seq) {
            (rx, Ok(missed)) => (rx, Ok(missed)),
            (rx, Err(gap)) => (
                rx,
                Err(json!({
                    "type": "Gap",
                    "data": { "reason": "the events after Last-Event-ID are no longer kept", "oldest": gap.oldest },
                })),
            ),
        },
        Some(_) => (
            bus.subscribe(),
            Err(json!({
                "type": "Gap",
                "data": { "reason": "the node restarted since Last-Event-ID; events before are gone" },
            })),
        ),
        None => (bus.subscribe(), Ok(Vec::new())),
    };
    // Read after subscribing to the bus: a state set meanwhile comes twice
    // rather than never.
    let states: Vec<Event> = {
        let f = filter.read().unwrap_or_else(|p| p.into_inner());
        f.contexts
            .iter()
            .flat_map(|c| node.ephemeral_replay(c))
            .filter(|e| f.matches(e))
            .collect()
    };
    let hello = json!({ "type": "Session", "data": { "sessionId": id } });
    let ended: Ending = Box::pin(async move { auth.ended(&grants).await });
    let stream = events(bus.boot(), hello, first, states, rx, filter, ended);
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    if let Ok(v) = id.parse() {
        response.headers_mut().insert("x-sse-session-id", v);
    }
    Ok(response)
}

/// Resolves when the stream's token is no longer accepted.
type Ending = Pin<Box<dyn Future<Output = AuthError> + Send>>;

struct Streaming {
    run: u64,
    pending: VecDeque<SseEvent>,
    rx: broadcast::Receiver<Arc<Event>>,
    filter: Arc<RwLock<Filter>>,
    last: u64,
    /// `None` once the token ended and the last event is out.
    ended: Option<Ending>,
}

fn events(
    run: u64,
    hello: Value,
    first: Result<Vec<Arc<Event>>, Value>,
    states: Vec<Event>,
    rx: broadcast::Receiver<Arc<Event>>,
    filter: Arc<RwLock<Filter>>,
    ended: Ending,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let mut pending = VecDeque::new();
    pending.push_back(SseEvent::default().data(hello.to_string()));
    let mut last = 0;
    match first {
        Ok(missed) => {
            let f = filter.read().unwrap_or_else(|p| p.into_inner());
            for e in missed {
                last = e.seq;
                if f.matches(&e) {
                    pending.push_back(sse(run, &e));
                }
            }
        }
        Err(gap) => pending.push_back(SseEvent::default().data(gap.to_string())),
    }
    // Outside the sequence: no id, so a client's Last-Event-ID stays that
    // of the last sequenced event.
    pending.extend(states.iter().map(|e| SseEvent::default().data(e.text())));
    let state = Streaming {
        run,
        pending,
        rx,
        filter,
        last,
        ended: Some(ended),
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            // Ended by the token: the last event is out, the stream is over.
            let ended = s.ended.as_mut()?;
            if let Some(e) = s.pending.pop_front() {
                return Some((Ok(e), s));
            }
            let next = tokio::select! {
                biased;
                why = ended => Err(why),
                received = s.rx.recv() => Ok(received),
            };
            let received = match next {
                Ok(received) => received,
                Err(why) => {
                    s.ended = None;
                    let last = json!({
                        "type": why.kind(),
                        "data": { "code": why.code(), "reason": why.to_string() },
                    });
                    return Some((Ok(SseEvent::default().data(last.to_string())), s));
                }
            };
            match received {
                // Replayed already.
                Ok(e) if e.seq <= s.last => {}
                Ok(e) => {
                    s.last = e.seq;
                    let wanted = s
                        .filter
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .matches(&e);
                    if wanted {
                        return Some((Ok(sse(s.run, &e)), s));
                    }
                }
                // Fell behind: end the stream; the client resumes from its
                // last id and the log fills the gap.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "dropping an SSE subscriber that fell behind");
                    return None;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

fn sse(run: u64, e: &Event) -> SseEvent {
    SseEvent::default()
        .id(format!("{run}-{}", e.seq))
        .data(e.text())
}

/// `POST /sse/subscription`: `{"sessionId", "method": "subscribe" |
/// "unsubscribe", "contextIds", "groupIds", "eventTypes"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Change {
    session_id: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(flatten)]
    subscription: Subscription,
}

fn default_method() -> String {
    "subscribe".into()
}

/// Changes a session's subscriptions.
pub(crate) async fn change(
    State(node): State<Node>,
    State(sessions): State<Sessions>,
    Extension(grants): Extension<Grants>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut req: Change = crate::admin::json_body(&body)?;
    req.subscription = std::mem::take(&mut req.subscription).normalized();
    let filter = sessions
        .get(&req.session_id)
        .ok_or_else(|| ApiError::not_found("SessionNotFound", "no SSE session with that id"))?;
    let mut f = filter.write().unwrap_or_else(|p| p.into_inner());
    match req.method.as_str() {
        "subscribe" => subscribe(&node, &grants, &mut f, &req.subscription)?,
        "unsubscribe" => {
            let (contexts, groups) =
                parse_ids(&req.subscription).map_err(|e| ApiError::bad("InvalidId", e))?;
            for c in &contexts {
                f.contexts.remove(c);
            }
            for g in &groups {
                f.groups.remove(g);
            }
        }
        other => {
            return Err(ApiError::bad(
                "InvalidMethod",
                format!("method is `subscribe` or `unsubscribe`, not `{other}`"),
            ));
        }
    }
    let mut contexts: Vec<String> = f
        .contexts
        .iter()
        .map(|c| bs58::encode(c.0).into_string())
        .collect();
    contexts.sort();
    let mut groups: Vec<String> = f.groups.iter().map(hex::encode).collect();
    groups.sort();
    Ok(Json(
        json!({ "data": { "contextIds": contexts, "groupIds": groups } }),
    ))
}
