//! Real `merod` processes on free 127.0.0.1 ports, driven with the real
//! `meroctl` and raw HTTP: the harness of the end-to-end tests and of the
//! benchmark tools in `tests/e2e`. Waits poll with a timeout.
//!
//! - this module: [`TestNode`]'s life (init, run, stop, kill, its log),
//!   finding the workspace's binaries and free ports;
//! - [`http`]: raw requests and JSON-RPC calls;
//! - [`meroctl`]: running `meroctl` against a node, and the flows built on
//!   it (install and create, invite, join);
//! - [`converge`]: settings for several nodes, and waiting until their
//!   roots agree;
//! - [`upgrade`]: the steps of the upgrade tests.

pub mod converge;
pub mod http;
pub mod meroctl;
pub mod upgrade;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use converge::{CONVERGE, FAST_SYNC, assert_converged, assert_converged_within};
pub use http::{authed_client, blocking_client, rpc, token_for};

use crate::poll::poll;

/// How long a node may take to answer its health check.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A binary of this workspace, built next to the tests
/// (`cargo test --workspace` builds both).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // Tests run from target/<profile>/deps, tools from target/<profile>.
    let beside = exe.parent().unwrap().join(name);
    let path = if beside.exists() {
        beside
    } else {
        exe.parent().and_then(Path::parent).unwrap().join(name)
    };
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p merod -p meroctl` (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1, below the ephemeral range (see
/// [`mero_config::free_loopback_port`]).
pub fn free_port() -> u16 {
    mero_config::free_loopback_port().unwrap()
}

/// A running (or stopped) `merod`; killed when dropped.
pub struct TestNode {
    /// The home directory (deleted on drop).
    pub home: tempfile::TempDir,
    /// The node's name.
    pub name: String,
    /// The API port.
    pub port: u16,
    /// The node's root credential (empty if it runs in proxy mode): what
    /// meroctl reads, and what [`request`](Self::request) sends.
    pub token: String,
    child: Option<Child>,
    http: reqwest::blocking::Client,
}

impl TestNode {
    /// Initialises and starts a node.
    pub fn start(name: &str) -> TestNode {
        TestNode::start_with(name, &[])
    }

    /// Initialises a node, sets `config` keys (`key=value`), starts it.
    pub fn start_with(name: &str, config: &[&str]) -> TestNode {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let port_arg = port.to_string();
        let swarm_arg = free_port().to_string();
        merod(
            home.path(),
            name,
            &[
                "init",
                "--server-port",
                &port_arg,
                "--swarm-port",
                &swarm_arg,
            ],
        );
        if !config.is_empty() {
            merod(home.path(), name, &[&["config"][..], config].concat());
        }
        let token = root_token(&home.path().join(name));
        http::remember_token(port, &token);
        let mut node = TestNode {
            home,
            name: name.into(),
            port,
            http: authed_client(&token),
            token,
            child: None,
        };
        node.run();
        node
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// The node's directory.
    pub fn dir(&self) -> PathBuf {
        self.home.path().join(&self.name)
    }

    /// Starts `merod run` and waits until it is healthy.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("merod.log"))
            .unwrap();
        let child = Command::new(bin("merod"))
            .arg("--home")
            .arg(self.home.path())
            .args(["--node", &self.name, "run"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let healthy = poll(START_TIMEOUT, || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("merod exited with {status}:\n{}", self.log());
            }
            self.http
                .get(self.url("/admin-api/health"))
                .send()
                .is_ok_and(|r| r.status().is_success())
                .then_some(())
        });
        assert!(
            healthy.is_some(),
            "merod not healthy after {START_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// What the node logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("merod.log")).unwrap_or_default()
    }

    /// Stops with SIGTERM and waits; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().unwrap().success()
    }

    /// Kills with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The root credential `merod init` wrote in `dir` (empty if none: proxy mode).
fn root_token(dir: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(dir.join("credential.json")) else {
        return String::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// `merod --home <home> --node <name> <args>`, which must succeed.
fn merod(home: &Path, name: &str, args: &[&str]) {
    let out = Command::new(bin("merod"))
        .arg("--home")
        .arg(home)
        .args(["--node", name])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "merod {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
