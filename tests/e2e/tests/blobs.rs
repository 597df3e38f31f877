//! Blobs on real nodes, through `meroctl blob` and raw HTTP: a blob
//! uploaded to a context on one member is fetched by another (in chunks,
//! checked against its id), listed, described by headers and deleted; a
//! blob not announced to the context is not served for it; a node outside
//! the namespace cannot fetch it, and a stranger asking the holder directly
//! over the wire is refused. An upload streams to disk: the node never
//! holds a blob in memory whole, and one over the node's cap
//! (`blobstore.max_blob_bytes`) is refused with nothing kept. Apps refer to
//! blobs: a member's call reads a blob another member uploaded (fetched on
//! the way) and one it made, but not one its node holds for no context; an
//! unknown or malformed id is a clear error.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::Duration;

use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::poll::poll_every;
use serde_json::{Value, json};

/// Bytes that span several fetch chunks (1 MiB each) and end mid-chunk.
fn payload() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..(2 << 20) + 12_345)
        .map(|_| {
            // xorshift: not compressible, not all zeros.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn put(node: &TestNode, query: &str, bytes: Vec<u8>) -> (u16, Value) {
    let resp = node
        .client()
        .put(node.url(&format!("/admin-api/blobs{query}")))
        .body(bytes)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn members_fetch_a_contexts_blobs_from_each_other_and_others_are_refused() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let n3 = TestNode::start_with("node3", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    n3.setup(mero_fixtures::KV_STORE);
    assert_converged(&[&n1, &n2], &ctx);

    let bytes = payload();
    // Beside node1's home, which goes with it.
    let dir = n1.home.path();
    let file = dir.join("blob.bin");
    std::fs::write(&file, &bytes).unwrap();
    let file = file.to_str().unwrap();

    // Uploaded on node1 for the context.
    let up = n1.meroctl_json(&["blob", "upload", "--file", file, "--context-id", &ctx]);
    let id = up["blob_id"].as_str().unwrap().to_string();
    assert_eq!(up["size"], bytes.len());
    let listed = n1.meroctl_json(&["blob", "ls"]);
    assert_eq!(
        listed["blobs"],
        json!([{"blob_id": id, "size": bytes.len()}])
    );
    let info = n1.meroctl_json(&["blob", "info", "--blob-id", &id]);
    assert_eq!(info["size"], bytes.len());
    assert_eq!(info["mimeType"], "application/octet-stream");
    let hash = hex::encode(bs58::decode(&id).into_vec().unwrap());
    assert_eq!(info["hash"], hash.as_str());

    // node2 does not have it, until it fetches it from node1 for the context.
    let (status, e) = n2.request("HEAD", &format!("/admin-api/blobs/{id}"), None);
    assert_eq!(status, 404, "{e}");
    let (status, e) = n2.request("GET", &format!("/admin-api/blobs/{id}"), None);
    assert_eq!((status, e["type"].as_str()), (404, Some("BlobNotFound")));
    let out = dir.join("fetched.bin");
    let out_s = out.to_str().unwrap();
    let got = n2.meroctl_json(&[
        "blob",
        "download",
        "--blob-id",
        &id,
        "--output",
        out_s,
        "--context-id",
        &ctx,
    ]);
    assert_eq!(got["size"], bytes.len());
    assert!(std::fs::read(&out).unwrap() == bytes, "the bytes differ");
    // Kept: listed, and served without asking again.
    assert_eq!(
        n2.meroctl_json(&["blob", "ls"])["blobs"],
        json!([{"blob_id": id, "size": bytes.len()}])
    );
    let resp = n2
        .client()
        .get(n2.url(&format!("/admin-api/blobs/{id}")))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-blob-id"], id.as_str());
    assert_eq!(resp.headers()["etag"], format!("\"{hash}\"").as_str());
    assert!(resp.bytes().unwrap() == bytes);

    // A blob uploaded without the context is not served for it.
    let (status, other) = put(&n1, "", b"not for the context".to_vec());
    assert_eq!(status, 200, "{other}");
    let other = other["data"]["blob_id"].as_str().unwrap().to_string();
    let (status, e) = n2.request(
        "GET",
        &format!("/admin-api/blobs/{other}?context_id={ctx}"),
        None,
    );
    assert_eq!(
        (status, e["type"].as_str()),
        (404, Some("BlobNotFound")),
        "{e}"
    );
    assert!(e["error"].as_str().unwrap().contains("refused"), "{e}");

    // node3 is in no namespace of the context: it cannot ask for it.
    let (status, e) = n3.request(
        "GET",
        &format!("/admin-api/blobs/{id}?context_id={ctx}"),
        None,
    );
    assert_eq!(
        (status, e["type"].as_str()),
        (404, Some("ContextNotFound")),
        "{e}"
    );
    let (status, e) = put(&n3, &format!("?context_id={ctx}"), b"x".to_vec());
    assert_eq!(
        (status, e["type"].as_str()),
        (404, Some("ContextNotFound")),
        "{e}"
    );

    // A stranger asking node1 over the wire is refused, size and bytes.
    let target = mero_config::ConfigFile::load(&n1.dir()).unwrap();
    let hash_raw: [u8; 32] = bs58::decode(&id).into_vec().unwrap().try_into().unwrap();
    let ctx_raw: [u8; 32] = bs58::decode(&ctx).into_vec().unwrap().try_into().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let keypair = mero_network::Keypair::generate_ed25519();
        let (net, _events) =
            mero_network::spawn(mero_network::NetworkConfig::new(keypair)).unwrap();
        let peer = net
            .dial(target.swarm.listen[0].parse().unwrap())
            .await
            .unwrap();
        for req in [
            mero_node::sync::Request::BlobMeta {
                hash: hash_raw,
                context: ctx_raw,
            },
            mero_node::sync::Request::BlobChunk {
                hash: hash_raw,
                context: ctx_raw,
                offset: 0,
                len: 1024,
            },
        ] {
            let answer = net
                .request(peer, borsh::to_vec(&req).unwrap())
                .await
                .unwrap();
            let answer: mero_node::sync::Response = borsh::from_slice(&answer).unwrap();
            assert!(
                matches!(answer, mero_node::sync::Response::Refused(_)),
                "{answer:?}"
            );
        }
        net.shutdown().await;
    });

    // Typed errors: a bad hash, a bad id, a mismatching expected hash.
    let (status, e) = n1.request("GET", "/admin-api/blobs/0OIl", None);
    assert_eq!((status, e["type"].as_str()), (400, Some("InvalidBlobId")));
    let (status, e) = put(&n1, &format!("?hash={other}"), b"other bytes".to_vec());
    assert_eq!(
        (status, e["type"].as_str()),
        (400, Some("BlobHashMismatch")),
        "{e}"
    );
    let (status, e) = put(&n1, "?context_id=nope", b"x".to_vec());
    assert_eq!(
        (status, e["type"].as_str()),
        (400, Some("InvalidContextId")),
        "{e}"
    );

    // Deleted once; then it is gone.
    let deleted = n1.meroctl_json(&["blob", "delete", "--blob-id", &id]);
    assert_eq!(deleted, json!({"blob_id": id, "deleted": true}));
    n1.meroctl_fails(&["blob", "delete", "--blob-id", &id], "BlobNotFound");
    let (status, _) = n1.request("HEAD", &format!("/admin-api/blobs/{id}"), None);
    assert_eq!(status, 404);
}

/// `pid`'s resident set now (`VmRSS`) or at its peak so far (`VmHWM`), in
/// KiB.
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `left` bytes of xorshift noise, read in whatever pieces the client asks.
struct Noise {
    left: u64,
    x: u32,
}

impl std::io::Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 17;
            self.x ^= self.x << 5;
            *b = self.x.to_le_bytes()[0];
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn an_upload_streams_to_disk_and_is_never_held_in_memory_whole() {
    const SIZE: u64 = 320 << 20;
    let n1 = TestNode::start("node1");
    let before = vm_kib(n1.pid(), "VmRSS:");
    let resp = n1
        .client()
        .put(n1.url("/admin-api/blobs"))
        .body(reqwest::blocking::Body::sized(
            Noise {
                left: SIZE,
                x: 0x9e37_79b9,
            },
            SIZE,
        ))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().unwrap();
    assert_eq!(v["data"]["size"], SIZE, "{v}");
    // The peak since start, against the resident set before the upload: a
    // node that buffered the body would have grown by all of it.
    let grew_mib = vm_kib(n1.pid(), "VmHWM:").saturating_sub(before) >> 10;
    assert!(
        grew_mib < 128,
        "a {} MiB upload grew the node by {grew_mib} MiB",
        SIZE >> 20
    );
    // And the bytes are all there, on disk.
    let id = v["data"]["blob_id"].as_str().unwrap();
    let (status, _) = n1.request("HEAD", &format!("/admin-api/blobs/{id}"), None);
    assert_eq!(status, 200);
    let listed = n1.meroctl_json(&["blob", "ls"]);
    assert_eq!(listed["blobs"][0]["size"], SIZE, "{listed}");
}

#[test]
fn an_upload_over_the_nodes_cap_is_refused_and_nothing_is_kept() {
    let n1 = TestNode::start_with("node1", &["blobstore.max_blob_bytes=1000"]);
    let (status, e) = put(&n1, "", vec![7; 1001]);
    assert_eq!(
        (status, e["type"].as_str()),
        (400, Some("BlobTooLarge")),
        "{e}"
    );
    assert!(e["error"].as_str().unwrap().contains("1000 bytes"), "{e}");
    assert_eq!(n1.meroctl_json(&["blob", "ls"])["blobs"], json!([]));
    // Nothing of it left on disk either.
    let tmp = n1.dir().join("blobs/tmp");
    let left = std::fs::read_dir(&tmp).map_or(0, Iterator::count);
    assert_eq!(left, 0, "{} holds a cut upload", tmp.display());
    // At the cap exactly: kept.
    let (status, v) = put(&n1, "", vec![7; 1000]);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["size"], 1000);
}

/// JSON-RPC `execute` that must fail; returns the error.
fn call_fails(node: &TestNode, ctx: &str, method: &str, args: Value) -> Value {
    let v = node.rpc(ctx, method, args);
    assert!(v.get("error").is_some(), "{method} succeeded: {v}");
    v["error"].clone()
}

#[test]
fn a_members_call_reads_a_blob_another_member_uploaded_and_referred_to() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"b"}"#));
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);

    // Text over one fetch chunk and one read (1 MiB each).
    let text: String = (0..(1 << 20) + 54_321)
        .map(|i| char::from(b'a' + (i % 23) as u8))
        .collect();
    let (status, up) = put(
        &n1,
        &format!("?context_id={ctx}"),
        text.clone().into_bytes(),
    );
    assert_eq!(status, 200, "{up}");
    let id = up["data"]["blob_id"].as_str().unwrap().to_string();
    n1.call(
        &ctx,
        "add_task",
        json!({"id": "t1", "title": "x", "column": "todo"}),
    );
    n1.call(&ctx, "attach", json!({"id": "t1", "blob": id}));
    assert_converged(&[&n1, &n2], &ctx);

    // node2 has the reference, not the bytes, until a call reads them.
    let (status, _) = n2.request("HEAD", &format!("/admin-api/blobs/{id}"), None);
    assert_eq!(status, 404);
    // A call waits for the fetch until just before its deadline; a machine
    // too slow for that gets "being fetched" and the fetch goes on.
    let got = poll_every(Duration::from_millis(200), CONVERGE, || {
        let v = n2.rpc(&ctx, "attachment", json!({"id": "t1"}));
        match v.get("error") {
            None => Some(v["result"]["output"].clone()),
            Some(e) => {
                assert!(e.to_string().contains("being fetched"), "{e}");
                None
            }
        }
    })
    .expect("node2 never read the blob");
    assert_eq!(got["blob"], id.as_str());
    assert_eq!(got["size"], text.len());
    assert!(
        got["text"].as_str() == Some(text.as_str()),
        "the bytes differ"
    );
    // Fetched and kept: node2 holds it now.
    let (status, _) = n2.request("HEAD", &format!("/admin-api/blobs/{id}"), None);
    assert_eq!(status, 200);

    // A blob node2's call made: node1 reads it from node2.
    let made = n2.call(
        &ctx,
        "attach_text",
        json!({"id": "t1", "text": "from node2"}),
    );
    assert_converged(&[&n1, &n2], &ctx);
    let got = poll_every(Duration::from_millis(200), CONVERGE, || {
        let v = n1.rpc(&ctx, "attachment", json!({"id": "t1"}));
        v.get("error")
            .is_none()
            .then(|| v["result"]["output"].clone())
    })
    .expect("node1 never read node2's blob");
    assert_eq!(got, json!({"blob": made, "size": 10, "text": "from node2"}));

    // An id no member has: null from the host, a clear app error here.
    let unknown = bs58::encode([1u8; 32]).into_string();
    assert_eq!(
        n2.call(&ctx, "blob_size", json!({"blob": unknown})),
        Value::Null
    );
    n1.call(&ctx, "attach", json!({"id": "t1", "blob": unknown}));
    assert_converged(&[&n1, &n2], &ctx);
    let e = call_fails(&n2, &ctx, "attachment", json!({"id": "t1"}));
    assert!(e.to_string().contains("on no member"), "{e}");
    // A blob node2 holds for no context is not the app's to read, though
    // the app knows its id.
    let (status, v) = put(&n2, "", b"not for the context".to_vec());
    assert_eq!(status, 200, "{v}");
    let private = v["data"]["blob_id"].as_str().unwrap();
    assert_eq!(
        n2.call(&ctx, "blob_size", json!({"blob": private})),
        Value::Null
    );
    // Not an id at all: refused as arguments.
    for garbage in ["0OIl", "abc"] {
        let e = call_fails(
            &n2,
            &ctx,
            "read_blob",
            json!({"blob": garbage, "offset": 0, "len": 1}),
        );
        assert!(e.to_string().to_lowercase().contains("argument"), "{e}");
    }
    // Past the end: out of range, not a trap.
    let e = call_fails(
        &n1,
        &ctx,
        "read_blob",
        json!({"blob": id, "offset": text.len() + 1, "len": 1}),
    );
    assert!(e.to_string().contains("past the end"), "{e}");
    // Both nodes go on.
    assert_eq!(n2.call(&ctx, "stats", json!({}))["tasks"], 1);
    for n in [&n1, &n2] {
        assert!(!n.log().contains("panicked"), "{}", n.log());
    }
}
