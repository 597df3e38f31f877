//! Every governance event type a node advertises, produced on real nodes and
//! received over SSE, and SSE's filters: a stream opened with `groupIds`
//! only gets its groups' events (none of a context's), one with
//! `eventTypes` only those types, and `POST /sse/subscription` adding a
//! group changes what the open stream delivers. Waits read the stream with
//! a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::Duration;

use mero_testkit::node::TestNode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

struct Sse {
    response: reqwest::Response,
    buf: String,
    session: String,
}

impl Sse {
    async fn open(node: &TestNode, query: &str) -> Sse {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client
            .get(node.url(&format!("/sse{query}")))
            .bearer_auth(&node.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let session = response.headers()["x-sse-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let mut sse = Sse {
            response,
            buf: String::new(),
            session,
        };
        assert_eq!(sse.next().await["type"], "Session");
        sse
    }

    /// The next event's JSON.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return serde_json::from_str(&data).unwrap();
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk()).await;
            let Ok(Ok(Some(chunk))) = chunk else {
                panic!("the stream ended or stalled: {chunk:?}");
            };
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// `method path body` on `node`, which must answer 200; the answer.
fn ok(node: &TestNode, method: &str, path: &str, body: Value) -> Value {
    let body = (!body.is_null()).then(|| body.to_string());
    let (status, v) = tokio::task::block_in_place(|| node.request(method, path, body.as_deref()));
    assert_eq!(status, 200, "{method} {path}: {v}");
    v
}

#[test]
fn every_governance_event_type_arrives_and_sse_filters_hold() {
    let n1 = TestNode::start("node1");
    let n2 = TestNode::start("node2");
    let n3 = TestNode::start("node3");
    let (app, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut groups = Sse::open(&n1, &format!("?groupIds={ns}")).await;
        let mut joins = Sse::open(&n1, &format!("?groupIds={ns}&eventTypes=MemberJoined")).await;

        // A context event first: the group-only stream must not carry it.
        tokio::task::block_in_place(|| n1.call(&ctx, "set", json!({"key": "k", "value": "v"})));
        let m2 = tokio::task::block_in_place(|| n2.join(&ns, &n1.invite(&ns, &[]), &ctx));
        ok(
            &n1,
            "PUT",
            &format!("/admin-api/groups/{ns}/members/{m2}/role"),
            json!({"role": "ReadOnly"}),
        );
        let created = ok(
            &n1,
            "POST",
            "/admin-api/contexts",
            json!({"applicationId": app, "groupId": ns, "initializationParams": []}),
        );
        let ctx2 = created["data"]["contextId"].as_str().unwrap().to_string();
        let sub = ok(
            &n1,
            "POST",
            &format!("/admin-api/namespaces/{ns}/groups"),
            json!({"name": "team"}),
        );
        let sub = sub["data"]["groupId"].as_str().unwrap().to_string();
        // Events scoped to the subgroup reach the stream once it adds it.
        let (status, v) = tokio::task::block_in_place(|| {
            n1.request(
                "POST",
                "/sse/subscription",
                Some(
                    &json!({"sessionId": groups.session, "method": "subscribe",
                            "groupIds": [sub]})
                    .to_string(),
                ),
            )
        });
        assert_eq!(status, 200, "{v}");
        ok(
            &n1,
            "POST",
            &format!("/admin-api/groups/{sub}/members"),
            json!({"members": [{"identity": m2}]}),
        );
        ok(
            &n1,
            "PUT",
            &format!("/admin-api/groups/{sub}/settings/subgroup-visibility"),
            json!({"subgroupVisibility": "open"}),
        );
        ok(
            &n1,
            "POST",
            &format!("/admin-api/groups/{ns}/members/remove"),
            json!({"members": [m2]}),
        );
        // The last: a second join, the sentinel of the typed stream.
        let m3 = tokio::task::block_in_place(|| {
            let invitation = n1.invite(&ns, &[]);
            n3.meroctl_json(&["namespace", "join", &ns, &invitation])["memberAccount"]
                .as_str()
                .unwrap()
                .to_string()
        });

        // The group stream: each type once in this order, with its data,
        // and nothing of a context.
        let expected = [
            ("MemberJoined", ns.as_str(), json!({"memberAccount": m2})),
            (
                "MemberRoleSet",
                &ns,
                json!({"memberAccount": m2, "role": "ReadOnly"}),
            ),
            ("ContextRegistered", &ns, json!({"contextId": ctx2})),
            ("SubgroupCreated", &ns, json!({"subgroupId": sub})),
            ("MemberAdded", &sub, json!({"memberAccount": m2})),
            (
                "SubgroupVisibilitySet",
                &sub,
                json!({"subgroupVisibility": "open"}),
            ),
            ("MemberRemoved", &ns, json!({"memberAccount": m2})),
            ("MemberJoined", &ns, json!({"memberAccount": m3})),
        ];
        for (kind, group, data) in expected {
            let e = loop {
                let e = groups.next().await;
                assert!(e.get("contextId").is_none(), "a context event: {e}");
                // Key shares and other bookkeeping may come in between.
                if e["type"] == kind && e["groupId"] == group {
                    break e;
                }
            };
            for (k, v) in data.as_object().unwrap() {
                assert_eq!(&e["data"][k], v, "{kind}: {e}");
            }
        }
        // The typed stream: the two joins and nothing in between.
        for m in [&m2, &m3] {
            let e = joins.next().await;
            assert_eq!(e["type"], "MemberJoined", "{e}");
            assert_eq!(e["data"]["memberAccount"], m.as_str(), "{e}");
        }
    });
}
