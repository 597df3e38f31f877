//! Installing from a URL with the expected hash, on a real `merod`: the
//! component served by a loopback HTTP server of the test's own installs
//! when `hash` is its SHA-256 (base58) and is refused, installing nothing,
//! when it is another's or not a hash.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use mero_testkit::node::TestNode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Serves `bytes` to every GET on 127.0.0.1 until the test ends; returns
/// the URL.
fn serve(bytes: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/app.wasm", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the request head, then answer with the bytes.
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&bytes);
        }
    });
    url
}

fn install(node: &TestNode, body: &Value) -> (u16, Value) {
    node.request(
        "POST",
        "/admin-api/install-application",
        Some(&body.to_string()),
    )
}

fn installed(node: &TestNode) -> usize {
    let (status, v) = node.request("GET", "/admin-api/applications", None);
    assert_eq!(status, 200, "{v}");
    v["data"]["apps"].as_array().unwrap().len()
}

#[test]
fn a_url_install_checks_the_hash_it_is_given() {
    let node = TestNode::start("node1");
    let bytes = std::fs::read(mero_fixtures::KV_STORE).unwrap();
    let right = bs58::encode(Sha256::digest(&bytes)).into_string();
    let url = serve(bytes);

    // Another component's hash: refused, nothing installed.
    let other = std::fs::read(mero_fixtures::TASK_BOARD).unwrap();
    let wrong = bs58::encode(Sha256::digest(&other)).into_string();
    let (status, v) = install(&node, &json!({"url": url, "hash": wrong, "metadata": []}));
    assert_eq!(
        (status, v["type"].as_str()),
        (400, Some("HashMismatch")),
        "{v}"
    );
    // Not a hash at all: a typed error too.
    let (status, v) = install(&node, &json!({"url": url, "hash": "0OIl", "metadata": []}));
    assert_eq!(status, 400, "{v}");
    assert_eq!(installed(&node), 0);

    // The right hash: installed, and it runs.
    let (status, v) = install(&node, &json!({"url": url, "hash": right, "metadata": []}));
    assert_eq!(status, 200, "{v}");
    let app = v["data"]["applicationId"].as_str().unwrap().to_string();
    assert_eq!(installed(&node), 1);
    let (status, v) = node.request("GET", &format!("/admin-api/applications/{app}"), None);
    assert_eq!(status, 200, "{v}");
    // Without a hash, a URL install is taken as served.
    let (status, v) = install(&node, &json!({"url": url, "metadata": []}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"]["applicationId"],
        app.as_str(),
        "same bytes, same id"
    );
}
