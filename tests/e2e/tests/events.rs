//! Events on real nodes: WebSocket and SSE subscribers receive what calls on
//! any node change, once each and in order; filters, refusals, resuming
//! after a disconnect, and a subscriber that never reads.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mero_testkit::node::{FAST_SYNC, TestNode, assert_converged, bin};
use mero_testkit::poll::poll;
use mero_testkit::{wait_for, wait_until};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(60);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(node: &TestNode) -> Ws {
    tokio_tungstenite::connect_async(node.ws_url())
        .await
        .unwrap()
        .0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message, skipping pings.
async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => panic!("no message: {other:?}"),
        }
    }
}

/// The next pushed event whose type is `kind`.
async fn next_event(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["id"].is_null() && v["result"]["type"] == kind {
            return v["result"].clone();
        }
    }
}

/// The reply to request `id` (events in between are skipped).
async fn reply(ws: &mut Ws, id: u64) -> Value {
    loop {
        let v = next(ws).await;
        if v["id"] == id {
            return v;
        }
    }
}

fn call(node: &TestNode, ctx: &str, method: &str, args: Value) -> Value {
    tokio::task::block_in_place(|| node.call(ctx, method, args))
}

fn two_nodes() -> (TestNode, TestNode, String, String) {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    (n1, n2, ns, ctx)
}

#[test]
fn websocket_subscribers_get_each_event_once_in_order_on_every_node() {
    let (n1, n2, ns, ctx) = two_nodes();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut ws1 = connect(&n1).await;
        let mut ws2 = connect(&n2).await;
        let mut only_updates = connect(&n2).await;
        for ws in [&mut ws1, &mut ws2] {
            send(
                ws,
                json!({"id": 1, "method": "subscribe",
                       "params": {"contextIds": [ctx], "groupIds": [ns]}}),
            )
            .await;
            assert_eq!(
                reply(ws, 1).await,
                json!({"id": 1, "result": {"contextIds": [ctx], "groupIds": [ns]}})
            );
        }
        // The seed page's spelling: one context_id and one event_type.
        send(
            &mut only_updates,
            json!({"id": 2, "method": "subscribe",
                   "params": {"context_id": ctx, "event_type": "Updated"}}),
        )
        .await;
        assert_eq!(
            reply(&mut only_updates, 2).await["result"]["contextIds"][0],
            ctx
        );

        // Calls on node1: its subscribers see them at commit, node2's when
        // the deltas are applied there; each once, in order.
        for i in 0..5 {
            call(
                &n1,
                &ctx,
                "set",
                json!({"key": format!("k{i}"), "value": format!("v{i}")}),
            );
        }
        call(&n1, &ctx, "set", json!({"key": "k0", "value": "changed"}));
        for ws in [&mut ws1, &mut ws2] {
            let mut seen = Vec::new();
            while seen.len() < 6 {
                let v = next(ws).await;
                let r = &v["result"];
                if r["type"] == "ExecutionEvent" {
                    assert_eq!(r["contextId"], ctx);
                    seen.push((
                        r["data"]["kind"].as_str().unwrap().to_string(),
                        r["data"]["data"]["key"].as_str().unwrap().to_string(),
                    ));
                } else if r["type"] == "StateMutation" {
                    assert!(r["data"]["newRoot"].is_string());
                    assert_eq!(r["data"]["events"].as_array().unwrap().len(), 1);
                }
            }
            let expected: Vec<(String, String)> = (0..5)
                .map(|i| ("Inserted".to_string(), format!("k{i}")))
                .chain([("Updated".to_string(), "k0".to_string())])
                .collect();
            assert_eq!(seen, expected);
        }
        // The filtered subscriber saw only the update.
        let first = next(&mut only_updates).await;
        assert_eq!(first["result"]["data"]["kind"], "Updated", "{first}");

        // Nothing is delivered twice: the next event is the next call's.
        call(&n1, &ctx, "set", json!({"key": "marker", "value": "m"}));
        for ws in [&mut ws1, &mut ws2] {
            let e = next_event(ws, "ExecutionEvent").await;
            assert_eq!(e["data"]["data"]["key"], "marker");
        }

        // Membership changes reach group subscribers on both nodes.
        let member =
            tokio::task::block_in_place(|| n1.meroctl_json(&["group", "members", "ls", &ns]))
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["role"] == "Member")
                .unwrap()["identity"]
                .as_str()
                .unwrap()
                .to_string();
        tokio::task::block_in_place(|| {
            n1.meroctl()
                .args(["group", "members", "set-caps", &ns, &member, "4"])
                .assert()
                .success();
        });
        for ws in [&mut ws1, &mut ws2] {
            let e = next_event(ws, "MemberCapabilitySet").await;
            assert_eq!(e["groupId"], ns);
            assert_eq!(e["data"]["memberAccount"], member);
            assert_eq!(e["data"]["capabilities"], 4);
        }

        // Calls run over the same socket.
        send(
            &mut ws2,
            json!({"id": 9, "method": "execute",
                   "params": {"contextId": ctx, "method": "get", "argsJson": {"key": "k3"}}}),
        )
        .await;
        assert_eq!(
            reply(&mut ws2, 9).await,
            json!({"id": 9, "result": {"output": "v3"}})
        );
        send(
            &mut ws2,
            json!({"id": 10, "method": "execute",
                   "params": {"contextId": ctx, "method": "nope", "argsJson": {}}}),
        )
        .await;
        assert!(reply(&mut ws2, 10).await["error"].is_object());
    });
}

#[test]
fn subscriptions_that_may_not_be_made_are_errors_not_silence() {
    let (n1, n2, ns, ctx) = two_nodes();
    let n3 = TestNode::start("node3");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // A node outside the namespace knows neither the context nor the
        // namespace.
        let mut ws = connect(&n3).await;
        send(
            &mut ws,
            json!({"id": 1, "method": "subscribe", "params": {"contextIds": [ctx]}}),
        )
        .await;
        let r = reply(&mut ws, 1).await;
        assert_eq!(r["error"]["type"], "NotFound", "{r}");
        send(
            &mut ws,
            json!({"id": 2, "method": "subscribe", "params": {"groupIds": [ns]}}),
        )
        .await;
        assert_eq!(reply(&mut ws, 2).await["error"]["type"], "NotFound");
        // Malformed requests get an error too.
        ws.send(Message::Text("{not json".into())).await.unwrap();
        assert_eq!(next(&mut ws).await["error"]["type"], "ParseError");
        send(&mut ws, json!({"id": 3, "method": "dance"})).await;
        assert_eq!(reply(&mut ws, 3).await["error"]["type"], "ParseError");
        send(
            &mut ws,
            json!({"id": 4, "method": "subscribe", "params": {"contextIds": ["0OIl"]}}),
        )
        .await;
        assert_eq!(reply(&mut ws, 4).await["error"]["type"], "ParseError");

        // A removed member's node still holds the context, but may not
        // hand out its events.
        let m2 = tokio::task::block_in_place(|| {
            n2.meroctl_json(&["namespace", "leave", &ns]);
            wait_for("node2 to leave", WAIT, || {
                let (status, _) = n2.request("GET", &format!("/admin-api/contexts/{ctx}"), None);
                assert_eq!(status, 200);
                let members = n1.meroctl_json(&["group", "members", "ls", &ns]);
                (members.as_array().unwrap().len() == 1).then_some(members)
            })
        });
        assert_eq!(m2[0]["role"], "Admin");
        let mut ws2 = connect(&n2).await;
        send(
            &mut ws2,
            json!({"id": 5, "method": "subscribe", "params": {"contextIds": [ctx]}}),
        )
        .await;
        let r = reply(&mut ws2, 5).await;
        assert_eq!(r["error"]["type"], "Unauthorized", "{r}");
    });
}

/// An SSE event: its id and JSON data.
struct SseEvent {
    id: Option<String>,
    data: Value,
}

struct Sse {
    response: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(node: &TestNode, query: &str, headers: &[(&str, &str)]) -> (Sse, String) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut req = client
            .get(node.url(&format!("/sse{query}")))
            .bearer_auth(&node.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        let session = response.headers()["x-sse-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        (
            Sse {
                response,
                buf: String::new(),
            },
            session,
        )
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return SseEvent {
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Keys of the next `n` app events.
    async fn keys(&mut self, n: usize) -> (Vec<String>, Option<String>) {
        let mut keys = Vec::new();
        let mut last = None;
        while keys.len() < n {
            let e = self.next().await;
            if e.id.is_some() {
                last = e.id.clone();
            }
            if e.data["type"] == "ExecutionEvent" {
                keys.push(e.data["data"]["data"]["key"].as_str().unwrap().to_string());
            }
        }
        (keys, last)
    }
}

#[test]
fn sse_streams_events_and_resumes_after_a_disconnect() {
    let (n1, n2, ns, ctx) = two_nodes();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut sse, session) = Sse::open(&n2, &format!("?contextIds={ctx}"), &[]).await;
        let hello = sse.next().await;
        assert_eq!(hello.data["type"], "Session");
        assert_eq!(hello.data["data"]["sessionId"], session);
        call(&n1, &ctx, "set", json!({"key": "a0", "value": "x"}));
        call(&n1, &ctx, "set", json!({"key": "a1", "value": "x"}));
        let (keys, last) = sse.keys(2).await;
        assert_eq!(keys, ["a0", "a1"]);
        drop(sse);

        // Missed while away.
        call(&n1, &ctx, "set", json!({"key": "a2", "value": "x"}));
        call(&n1, &ctx, "set", json!({"key": "a3", "value": "x"}));
        tokio::task::block_in_place(|| assert_converged(&[&n1, &n2], &ctx));
        let last = last.unwrap();
        let (mut sse, again) = Sse::open(
            &n2,
            "",
            &[("last-event-id", &last), ("x-sse-session-id", &session)],
        )
        .await;
        assert_eq!(again, session);
        assert_eq!(sse.next().await.data["type"], "Session");
        let (keys, _) = sse.keys(2).await;
        assert_eq!(keys, ["a2", "a3"], "exactly what was missed, in order");
        // Then live.
        call(&n1, &ctx, "set", json!({"key": "a4", "value": "x"}));
        assert_eq!(sse.keys(1).await.0, ["a4"]);

        // The session's subscriptions change with POST /sse/subscription.
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let changed: Value = client
            .post(n2.url("/sse/subscription"))
            .bearer_auth(&n2.token)
            .json(&json!({"sessionId": session, "method": "subscribe", "groupIds": [ns]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(changed["data"]["groupIds"][0], ns);
        let status = client
            .post(n2.url("/sse/subscription"))
            .bearer_auth(&n2.token)
            .json(&json!({"sessionId": "nope", "contextIds": [ctx]}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404);

        // An id from another run of the node: a gap, said plainly.
        let (mut sse, _) = Sse::open(
            &n2,
            &format!("?contextIds={ctx}"),
            &[("last-event-id", "1-5")],
        )
        .await;
        assert_eq!(sse.next().await.data["type"], "Session");
        assert_eq!(sse.next().await.data["type"], "Gap");

        // Refused subscriptions are errors with a status.
        let status = client
            .get(n2.url("/sse?contextIds=11111111111111111111111111111111"))
            .bearer_auth(&n2.token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404);
    });
}

/// An SSE stream over a socket whose receive buffer is a few KiB, read only
/// when the test says: a client that can stop reading and be sure the node
/// soon has to wait for it. HTTP/1.0, so the body is the stream itself.
struct RawSse {
    socket: tokio::net::TcpStream,
    buf: Vec<u8>,
    /// Bytes of event blocks returned so far.
    read: usize,
}

impl RawSse {
    /// Opens `/sse{query}`; returns the stream and its session id.
    async fn open(node: &TestNode, query: &str, headers: &[(&str, &str)]) -> (RawSse, String) {
        use tokio::io::AsyncWriteExt;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut socket = socket
            .connect(([127, 0, 0, 1], node.port).into())
            .await
            .unwrap();
        let mut head = format!(
            "GET /sse{query} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
             Accept: text/event-stream\r\n",
            node.port, node.token
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut sse = RawSse {
            socket,
            buf: Vec::new(),
            read: 0,
        };
        let end = loop {
            if let Some(i) = sse.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(sse.fill().await, "no response head");
        };
        let head = String::from_utf8(sse.buf.drain(..end + 4).collect()).unwrap();
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        let session = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-sse-session-id")
                    .then(|| v.trim().to_string())
            })
            .unwrap();
        (sse, session)
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0; 16 << 10];
        let n = tokio::time::timeout(WAIT, self.socket.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next event, or `None` once the node ended the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                self.read += block.len();
                let block = String::from_utf8(block).unwrap();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(SseEvent {
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            if !self.fill().await {
                assert!(self.buf.is_empty(), "a cut event: {:?}", self.buf);
                return None;
            }
        }
    }
}

/// The sequence number of an SSE id `{run}-{seq}`.
fn seq(id: &str) -> u64 {
    id.split_once('-').unwrap().1.parse().unwrap()
}

/// A TCP socket's send buffer may grow to this many bytes (Linux's
/// `tcp_wmem` maximum): the most a node can have written that a client
/// has not read, besides what the client's own buffer holds.
fn max_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

#[test]
fn an_sse_client_that_falls_behind_is_cut_off_and_resumes_with_nothing_missed() {
    let n1 = TestNode::start("node1");
    let (_, _, ctx) = n1.setup(mero_fixtures::KV_STORE);
    let value = "v".repeat(2 << 10);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut sse, session) = RawSse::open(&n1, &format!("?contextIds={ctx}"), &[]).await;
        assert_eq!(sse.next().await.unwrap().data["type"], "Session");
        // What one call's events weigh on the wire.
        let mut got: Vec<(u64, String)> = Vec::new();
        let mut last = String::new();
        let start = sse.read;
        call(&n1, &ctx, "set", json!({"key": "k0", "value": value}));
        while got.is_empty() {
            let e = sse.next().await.unwrap();
            if let Some(id) = &e.id {
                last = id.clone();
            }
            if e.data["type"] == "ExecutionEvent" {
                let key = e.data["data"]["data"]["key"].as_str().unwrap().to_string();
                got.push((seq(&last), key));
            }
        }
        let per_call = sse.read - start;
        // Enough calls, unread, that whatever the socket buffers can hold,
        // the node's subscriber channel (1,024 events) overflows behind it;
        // few enough that the node's event log (10,000 events, 16 MiB)
        // still holds them all.
        let calls = (max_send_buffer() + (1 << 20)) / per_call + 512 + 100;
        assert!(
            calls * per_call < 15 << 20 && calls * 2 < 9_000,
            "{calls} calls of {per_call} bytes would not fit the node's event log"
        );
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let (n1, ctx, value) = (&n1, &ctx, &value);
                    scope.spawn(move || {
                        for i in (1..=calls).filter(|i| i % 4 == t) {
                            n1.call(ctx, "set", json!({"key": format!("k{i}"), "value": value}));
                        }
                    });
                }
            });
        });

        // Reading again: what the socket held, then the end of the stream
        // (not more events: the subscriber fell behind and was cut off).
        while let Some(e) = sse.next().await {
            if let Some(id) = &e.id {
                last = id.clone();
            }
            assert_ne!(e.data["type"], "Gap", "{}", e.data);
            if e.data["type"] == "ExecutionEvent" {
                let key = e.data["data"]["data"]["key"].as_str().unwrap().to_string();
                got.push((seq(&last), key));
            }
        }
        assert!(
            got.len() < calls + 1,
            "the stream ended with nothing missed"
        );
        tokio::task::block_in_place(|| {
            wait_until("the node to log the drop", WAIT, || {
                n1.log()
                    .contains("dropping an SSE subscriber that fell behind")
            })
        });

        // Resuming from the last id gets exactly what was missed, from the
        // node's log, then live events.
        let (mut sse, again) = RawSse::open(
            &n1,
            "",
            &[("Last-Event-ID", &last), ("X-SSE-Session-ID", &session)],
        )
        .await;
        assert_eq!(again, session);
        assert_eq!(sse.next().await.unwrap().data["type"], "Session");
        call(&n1, &ctx, "set", json!({"key": "live", "value": "x"}));
        loop {
            let e = sse.next().await.expect("the resumed stream ended");
            assert_ne!(e.data["type"], "Gap", "{}", e.data);
            let Some(id) = &e.id else { continue };
            if e.data["type"] == "ExecutionEvent" {
                let key = e.data["data"]["data"]["key"].as_str().unwrap().to_string();
                got.push((seq(id), key.clone()));
                if key == "live" {
                    break;
                }
            }
        }
        // Every call's event once, in the node's order.
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "out of order");
        let mut keys: Vec<String> = got.into_iter().map(|(_, k)| k).collect();
        assert_eq!(keys.pop().as_deref(), Some("live"));
        keys.sort();
        let mut want: Vec<String> = (0..=calls).map(|i| format!("k{i}")).collect();
        want.sort();
        assert_eq!(keys, want);
    });
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_subscriber_that_never_reads_is_dropped_and_the_node_keeps_serving() {
    let n1 = TestNode::start("node1");
    let (_, _, ctx) = n1.setup(mero_fixtures::KV_STORE);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut stuck = connect(&n1).await;
        send(
            &mut stuck,
            json!({"id": 1, "method": "subscribe", "params": {"contextIds": [ctx]}}),
        )
        .await;
        assert!(reply(&mut stuck, 1).await["result"].is_object());
        let before = rss(n1.pid());
        // About 40 KB of events a call (the value comes back in two
        // events, one of them as a byte array): the subscriber's queue and
        // the socket's buffers overflow long before the calls end.
        let value = "v".repeat(8 << 10);
        let mut calls = 0;
        while !n1.log().contains("dropping a WebSocket subscriber") {
            call(
                &n1,
                &ctx,
                "set",
                json!({"key": format!("k{calls}"), "value": value}),
            );
            calls += 1;
            assert!(calls < 5_000, "the stuck subscriber was never dropped");
        }
        // The node still answers, and did not keep the backlog.
        call(&n1, &ctx, "set", json!({"key": "after", "value": "x"}));
        assert_eq!(call(&n1, &ctx, "get", json!({"key": "after"})), json!("x"));
        let after = rss(n1.pid());
        assert!(
            after < before + (128 << 20),
            "RSS grew from {before} to {after} bytes"
        );
        // Reading now drains what the socket held, then the close: code
        // 1008 with the documented reason, not a bare end of stream.
        let close = tokio::time::timeout(WAIT, async {
            loop {
                match stuck.next().await {
                    Some(Ok(Message::Close(frame))) => break frame,
                    Some(Ok(_)) => {}
                    other => panic!("the stream ended without a close frame: {other:?}"),
                }
            }
        })
        .await
        .unwrap()
        .expect("a close frame with a code and a reason");
        assert_eq!(u16::from(close.code), 1008);
        // Dropped for its backlog, or by the writer that waited 5 s for it
        // to take a batch: whichever came first.
        let reason = close.reason.as_str();
        assert!(
            (reason.starts_with("slow_consumer: the client fell ") && reason.contains(" behind"))
                || reason == "slow_consumer: the client took no events for 5 s",
            "{reason}"
        );
    });
}

#[test]
fn meroctl_watches_events_and_calls_interactively() {
    let (n1, n2, _, ctx) = two_nodes();
    let mut watch = std::process::Command::new(bin("meroctl"))
        .arg("--home")
        .arg(n2.home.path())
        .args(["--node", &n2.name, "--output-format", "json"])
        .args(["context", "watch", "--context", &ctx])
        .args(["--event-type", "Inserted", "-n", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Subscribed once it says so.
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stderr.as_mut().unwrap()),
        &mut said,
    )
    .unwrap();
    assert!(said.contains("watching"), "{said}");
    // Calls typed into an interactive session on node1, over its socket.
    let session = n1
        .meroctl()
        .args(["call", "-i", "--context", &ctx])
        .write_stdin("set {\"key\":\"w1\",\"value\":\"a\"}\nget {\"key\":\"w1\"}\nnope\nset {\"key\":\"w2\",\"value\":\"b\"}\n")
        .output()
        .unwrap();
    assert!(session.status.success(), "{session:?}");
    let printed = String::from_utf8_lossy(&session.stdout);
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        ["null", "a", "null"],
        "{session:?}"
    );
    assert!(String::from_utf8_lossy(&session.stderr).contains("error"));

    // The watcher on node2 saw both inserts, as JSON lines, and stopped.
    wait_until("watch to see two events", WAIT, || {
        watch.try_wait().unwrap().is_some()
    });
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["contextId"], ctx);
            v["data"]["data"]["key"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(keys, ["w1", "w2"]);

    // Watching a context this node does not have fails clearly.
    let n3 = TestNode::start("node3");
    n3.meroctl_fails(&["context", "watch", "--context", &ctx], "not found");
}

#[test]
fn a_restarted_node_does_not_replay_old_events_as_new() {
    let (n1, mut n2, _, ctx) = two_nodes();
    for i in 0..3 {
        n1.call(&ctx, "set", json!({"key": format!("old{i}"), "value": "x"}));
    }
    assert_converged(&[&n1, &n2], &ctx);
    n2.stop();
    n2.run();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut ws = connect(&n2).await;
        send(
            &mut ws,
            json!({"id": 1, "method": "subscribe", "params": {"contextIds": [ctx]}}),
        )
        .await;
        assert!(reply(&mut ws, 1).await["result"].is_object());
        // Catching up after the restart brings nothing new; the first app
        // event is the next call's.
        call(&n1, &ctx, "set", json!({"key": "new", "value": "x"}));
        let e = next_event(&mut ws, "ExecutionEvent").await;
        assert_eq!(e["data"]["data"]["key"], "new");
    });
}

#[test]
fn nodes_that_receive_an_event_run_its_handler_and_the_author_does_not() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let mut n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"board"}"#));
    let m2 = n2.join(&ns, &n1.invite(&ns, &[]), &ctx);

    let acks = |n: &TestNode| -> Vec<String> {
        serde_json::from_value(n.call(&ctx, "acknowledgements", json!({}))).unwrap()
    };
    let wait_for_acks = |n: &TestNode, want: &[String]| {
        let seen = poll(WAIT, || (acks(n) == want).then_some(()));
        assert!(seen.is_some(), "acks {:?}, want {want:?}", acks(n));
    };
    n1.call(
        &ctx,
        "add_task",
        json!({"id": "t1", "title": "a", "column": "todo"}),
    );
    // Node2 received TaskAdded and ran on_task_added; its write came back.
    wait_for_acks(&n1, &[format!("t1@{m2}")]);

    // Received while node2 was down: handled once it catches up.
    n2.stop();
    n1.call(
        &ctx,
        "add_task",
        json!({"id": "t2", "title": "b", "column": "todo"}),
    );
    n2.run();
    wait_for_acks(&n1, &[format!("t1@{m2}"), format!("t2@{m2}")]);
    assert_converged(&[&n1, &n2], &ctx);
    // Node1, the author, never acknowledged its own tasks.
    assert!(acks(&n2).iter().all(|a| a.ends_with(&m2)));
}

/// One delta whose 100 events each queue a handler that loops to its
/// deadline, on a receiving node: that context's handlers back off after a
/// failure, so another context's handler still runs there within seconds
/// (not after 100 deadlines), and the failures are not logged one by one.
#[test]
fn a_looping_handler_backs_off_and_other_contexts_handlers_still_run() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, bad_ns, bad) = n1.setup(mero_fixtures::MISBEHAVE);
    n2.join(&bad_ns, &n1.invite(&bad_ns, &[]), &bad);
    let (_, ns, board) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"board"}"#));
    let m2 = n2.join(&ns, &n1.invite(&ns, &[]), &board);

    n1.call(
        &bad,
        "emit_raw",
        json!({"kind": "Spin", "data": "{}", "times": 100}),
    );
    wait_until("node2 to run a looping handler", WAIT, || {
        n2.log().contains("its context's others wait")
    });
    n1.call(
        &board,
        "add_task",
        json!({"id": "t1", "title": "a", "column": "todo"}),
    );
    let acks = || -> Vec<String> {
        serde_json::from_value(n1.call(&board, "acknowledgements", json!({}))).unwrap()
    };
    let seen = poll(Duration::from_secs(30), || {
        (acks() == [format!("t1@{m2}")]).then_some(())
    });
    assert!(seen.is_some(), "node2's handler never ran:\n{}", n2.log());
    let failures = n2.log().matches("event handler failed").count();
    assert!(
        failures < 20,
        "{failures} handler failures logged:\n{}",
        n2.log()
    );
    // The node still serves the hostile context.
    n2.call(&bad, "set", json!({"key": "k", "value": "v"}));
}

/// What node `member` (hex id) wrote to a context, as the store of `node`
/// holds it, and the handlers pending there.
fn handler_state(node: &TestNode, ctx: &str, member: &str) -> (Vec<mero_crdt::SignedDelta>, usize) {
    let store = mero_store::Store::open(&node.dir().join("data"), &Default::default()).unwrap();
    let snapshot = store.snapshot().unwrap();
    let id = mero_crdt::ContextId(bs58::decode(ctx).into_vec().unwrap().try_into().unwrap());
    // Stubs (deltas a snapshot covered) have no body.
    let written = snapshot
        .delta_ids(&id)
        .unwrap()
        .iter()
        .filter_map(|d| snapshot.delta(&id, d).unwrap())
        .filter(|d| hex::encode(d.delta.author.0) == member)
        .collect();
    let pending = snapshot.pending_handlers(usize::MAX).unwrap().len();
    (written, pending)
}

#[test]
fn a_handler_whose_removal_a_crash_lost_runs_again_after_restart() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let mut n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"board"}"#));
    let m2 = n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    let acks = |n: &TestNode| -> Vec<String> {
        serde_json::from_value(n.call(&ctx, "acknowledgements", json!({}))).unwrap()
    };
    n1.call(
        &ctx,
        "add_task",
        json!({"id": "t1", "title": "a", "column": "todo"}),
    );
    wait_until("node2's handler to run", WAIT, || {
        acks(&n1) == [format!("t1@{m2}")]
    });
    // Deltas node2 holds of the context.
    let deltas = |n: &TestNode| {
        let (status, v) = n.request("GET", &format!("/admin-api/contexts/{ctx}"), None);
        assert_eq!(status, 200, "{v}");
        v["data"]["deltaCount"].as_u64().unwrap()
    };
    let before = deltas(&n2);
    n2.stop();

    // The state a crash leaves between the handler's commit and forgetting
    // it: its write is durable, its queue entry is still there (put back
    // here, exactly as merging the delta wrote it, unless the stop came in
    // that window itself).
    let (written, pending) = handler_state(&n2, &ctx, &m2);
    assert_eq!(written.len(), 1, "node2 wrote once, as the handler");
    if pending == 0 {
        let store = mero_store::Store::open(&n2.dir().join("data"), &Default::default()).unwrap();
        let snapshot = store.snapshot().unwrap();
        let id = written[0].delta.context;
        let (added, index, event) = snapshot
            .delta_ids(&id)
            .unwrap()
            .into_iter()
            .find_map(|d| {
                let delta = snapshot.delta(&id, &d).unwrap()?;
                let (i, e) = delta
                    .delta
                    .events
                    .iter()
                    .enumerate()
                    .find(|(_, e)| e.kind == "TaskAdded")?;
                Some((d, i as u32, e.clone()))
            })
            .unwrap();
        let mut w = store.write().unwrap();
        w.put_handler(&id, &added.0, index, "on_task_added", &event.data)
            .unwrap();
        w.commit().unwrap();
    }
    assert_eq!(handler_state(&n2, &ctx, &m2).1, 1);

    // Restarted, node2 runs it again (its second write), then forgets it.
    n2.run();
    wait_until("node2 to run the handler again", WAIT, || {
        deltas(&n2) == before + 1
    });
    // A set: the second run changed nothing the app shows.
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(acks(&n1), [format!("t1@{m2}")]);
    assert_eq!(acks(&n2), [format!("t1@{m2}")]);
    n2.stop();
    let (written, pending) = handler_state(&n2, &ctx, &m2);
    assert_eq!(written.len(), 2, "the handler ran again");
    assert_eq!(pending, 0, "and was forgotten");
}

#[test]
fn an_upgrade_announces_itself_on_every_member_node() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut ws1 = connect(&n1).await;
        let mut ws2 = connect(&n2).await;
        for ws in [&mut ws1, &mut ws2] {
            send(
                ws,
                json!({"id": 1, "method": "subscribe",
                       "params": {"contextIds": [ctx], "groupIds": [ns]}}),
            )
            .await;
            reply(ws, 1).await;
        }
        let v2 = tokio::task::block_in_place(|| {
            let app = n1.meroctl_json(&[
                "app",
                "install",
                "--path",
                mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD,
            ])["applicationId"]
                .as_str()
                .unwrap()
                .to_string();
            n1.meroctl_json(&[
                "group",
                "upgrade",
                "trigger",
                &ns,
                "--target-application-id",
                &app,
            ]);
            app
        });
        assert!(!v2.is_empty());
        for ws in [&mut ws1, &mut ws2] {
            let started = next_event(ws, "MigrationStarted").await;
            assert_eq!(started["groupId"], ns);
            assert_eq!(started["data"]["toVersion"], "2.0.0");
            assert_eq!(started["data"]["toStateVersion"], 2);
            let changed = next_event(ws, "AppVersionChanged").await;
            assert_eq!(
                changed,
                json!({"contextId": ctx, "type": "AppVersionChanged",
                       "data": {"fromVersion": "1.0.0", "toVersion": "2.0.0"}})
            );
            // The fleet's rollup moves as members report, to all migrated,
            // and then (once) the fleet is complete.
            loop {
                let progress = next_event(ws, "MigrationProgress").await;
                assert_eq!(progress["groupId"], ns);
                assert_eq!(progress["data"]["total"], 2, "{progress}");
                assert_eq!(progress["data"]["failed"], 0, "{progress}");
                if progress["data"]["migrated"] == 2 {
                    break;
                }
            }
            let completed = next_event(ws, "MigrationCompleted").await;
            assert_eq!(completed["data"]["toVersion"], "2.0.0");
            assert!(completed["data"]["completedAt"].as_u64().unwrap() > 0);
        }
    });
}
