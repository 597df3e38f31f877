//! A node whose log cannot be written: its stderr on `/dev/full`, as when
//! the log's disk is full. It must go on serving writes (#19 item 7).

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::fs::File;
use std::process::{Child, Command, Stdio};

use mero_testkit::node::{START_TIMEOUT, TestNode, bin};
use mero_testkit::poll::poll;
use serde_json::json;

/// Kills the process when dropped, so a failing test leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_whose_stderr_is_full_still_serves_set_and_get() {
    let mut node = TestNode::start("n1");
    // Run it again, by hand, with every log line failing to be written.
    assert!(node.stop());
    let full = File::options().write(true).open("/dev/full").unwrap();
    let mut merod = Running(
        Command::new(bin("merod"))
            .arg("--home")
            .arg(node.home.path())
            .args(["--node", &node.name, "run"])
            // Plenty of log lines, each failing.
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(full)
            .spawn()
            .unwrap(),
    );
    let client = node.client();
    let healthy = poll(START_TIMEOUT, || {
        if let Some(status) = merod.0.try_wait().unwrap() {
            panic!("merod with stderr on /dev/full exited with {status}");
        }
        client
            .get(node.url("/admin-api/health"))
            .send()
            .is_ok_and(|r| r.status().is_success())
            .then_some(())
    });
    assert!(
        healthy.is_some(),
        "merod not healthy after {START_TIMEOUT:?}"
    );

    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    for i in 0..20 {
        node.call(
            &ctx,
            "set",
            json!({"key": format!("k{i}"), "value": format!("v{i}")}),
        );
    }
    assert_eq!(node.call(&ctx, "get", json!({"key": "k19"})), "v19");
    assert!(
        merod.0.try_wait().unwrap().is_none(),
        "merod must still be running"
    );

    // It stops cleanly too.
    let _ = Command::new("kill")
        .args(["-TERM", &merod.0.id().to_string()])
        .status();
    let status = merod.0.wait().unwrap();
    assert!(status.success(), "merod exited with {status}");
}
