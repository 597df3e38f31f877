//! A lone node SIGKILLed while many clients write to it: no peer can refill
//! it, so every write it acknowledged must come back from its own
//! write-ahead log after the restart, and the node reports that it replayed
//! the log (and how many records). Waits poll with a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mero_testkit::node::{CONVERGE, TestNode};
use mero_testkit::wait_until;
use serde_json::{Value, json};

const CLIENTS: usize = 16;

/// One `set` over JSON-RPC; whether the node acknowledged it.
fn set(client: &reqwest::blocking::Client, port: u16, token: &str, ctx: &str, key: &str) -> bool {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": ctx, "method": "set", "argsJson": {"key": key, "value": key}}});
    client
        .post(format!("http://127.0.0.1:{port}/jsonrpc"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .ok()
        .and_then(|r| r.json::<Value>().ok())
        .is_some_and(|v| v.get("result").is_some())
}

/// The record count of the node's "replayed the write-ahead log" line.
fn replayed(log: &str) -> Option<u64> {
    let line = log
        .lines()
        .find(|l| l.contains("replayed the write-ahead log"))?;
    let count = line.split("records=").nth(1)?;
    count
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

#[test]
fn a_lone_node_killed_under_load_keeps_every_acknowledged_write() {
    let mut node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    assert_eq!(replayed(&node.log()), None, "a fresh node replays nothing");

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (acked, stop, ctx) = (acked.clone(), stop.clone(), ctx.clone());
            let (port, token) = (node.port, node.token.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("c{c}-{i}");
                    if set(&client, port, &token, &ctx, &key) {
                        acked.lock().unwrap().push(key);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    wait_until("the load to get going", CONVERGE, || {
        acked.lock().unwrap().len() >= 300
    });
    // Killed while the clients are still writing.
    node.kill();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();

    node.run();
    let have: BTreeSet<String> = node
        .call(&ctx, "entries", json!({}))
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let lost: Vec<_> = acked.difference(&have).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    // They came back from the log: the node says it replayed it.
    let log = node.log();
    let records = replayed(&log).unwrap_or_else(|| panic!("no replay reported:\n{log}"));
    assert!(records > 0, "{records} records replayed");
    eprintln!(
        "{} writes acknowledged, {records} log records replayed",
        acked.len()
    );
}
