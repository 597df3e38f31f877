//! `merod dev`, the README's main job, as a user runs it: it comes up with
//! the bundled kv-store installed and a namespace and context created, the
//! lines it prints (meroctl `set` and `get`, and curl) work as printed, and
//! the next run on the same home reuses the node and its context. Waits
//! read the output with a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mero_testkit::node::bin;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

/// A running `merod dev` and the lines it printed up to its prompt.
struct Dev {
    child: Child,
    lines: Vec<String>,
}

impl Dev {
    fn start(home: &Path) -> Dev {
        let mut child = Command::new(bin("merod"))
            .arg("--home")
            .arg(home)
            .arg("dev")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::sync_channel(64);
        std::thread::spawn(move || {
            // Drains stdout for the node's whole life (a closed pipe would
            // fail its later prints), long after the lines are taken.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        loop {
            match rx.recv_timeout(WAIT) {
                Ok(line) if line.contains("Press Ctrl-C to stop.") => break,
                Ok(line) => lines.push(line),
                Err(e) => panic!("merod dev never got ready ({e}): {lines:#?}"),
            }
        }
        Dev { child, lines }
    }

    /// The printed line containing `needle`, trimmed.
    fn line(&self, needle: &str) -> String {
        self.lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {:#?}", self.lines))
            .trim()
            .to_string()
    }

    /// Stops it as Ctrl-C would; whether it exited cleanly.
    fn stop(mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap().success()
    }
}

/// Runs a printed line with `sh`, which must succeed; its stdout.
fn run(line: &str) -> String {
    let out = Command::new("sh").args(["-c", line]).output().unwrap();
    assert!(
        out.status.success(),
        "{line}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn merod_dev_comes_up_ready_and_its_printed_lines_work() {
    let home = tempfile::tempdir().unwrap();
    // Initialized first on free ports (dev would take the defaults).
    let port = |()| mero_config::free_loopback_port().unwrap().to_string();
    let init = Command::new(bin("merod"))
        .arg("--home")
        .arg(home.path())
        .args(["--node", "dev", "init", "--server-port", &port(())])
        .args(["--swarm-port", &port(())])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");

    let dev = Dev::start(home.path());
    let ready = dev.line("runs context");
    assert!(ready.starts_with("kv-store is application"), "{ready}");
    let ctx = ready
        .trim_end_matches('.')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    // The printed lines, as printed: set, then get and curl read it back.
    run(&dev.line(" call set "));
    let got = run(&dev.line(" call get "));
    assert!(got.contains("world"), "{got}");
    let curl = dev.line("curl ");
    let answer: Value = serde_json::from_str(&run(&curl)).unwrap();
    assert_eq!(answer["result"]["output"], "world", "{answer}");
    assert!(dev.stop(), "merod dev did not stop cleanly");

    // The next run reuses the node: the same context, the value kept.
    let again = Dev::start(home.path());
    assert!(again.line("runs context").ends_with(&format!("{ctx}.")));
    let got = run(&again.line(" call get "));
    assert!(got.contains("world"), "{got}");
    assert!(again.stop());
}
