//! A harness that runs real `merod` processes on free 127.0.0.1 ports and
//! drives them with the real `meroctl` and raw HTTP. Waits poll with a
//! timeout; nothing sleeps a fixed time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness fails fast"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

/// A blocking HTTP client for tools: no proxy, a generous timeout.
pub fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Calls `method` of `ctx` on the node at `port` over JSON-RPC; panics on an
/// error answer; returns the output.
pub fn rpc(
    c: &reqwest::blocking::Client,
    port: u16,
    ctx: &str,
    method: &str,
    args: Value,
) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": ctx, "method": method, "argsJson": args}});
    let v: Value = c
        .post(format!("http://127.0.0.1:{port}/jsonrpc"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(v.get("error").is_none(), "{v}");
    v["result"]["output"].clone()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running (or stopped) `merod`.
pub struct TestNode {
    /// The home directory (deleted on drop).
    pub home: tempfile::TempDir,
    /// The node's name.
    pub name: String,
    /// The API port.
    pub port: u16,
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
        let out = Command::new(bin("merod"))
            .args(["--home"])
            .arg(home.path())
            .args([
                "--node",
                name,
                "init",
                "--server-port",
                &port.to_string(),
                "--swarm-port",
                &free_port().to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "merod init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        if !config.is_empty() {
            let out = Command::new(bin("merod"))
                .arg("--home")
                .arg(home.path())
                .args(["--node", name, "config"])
                .args(config)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "merod config failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut node = TestNode {
            home,
            name: name.into(),
            port,
            child: None,
            http,
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
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("merod exited with {status}:\n{}", self.log());
            }
            if self
                .http
                .get(self.url("/admin-api/health"))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "merod not healthy after {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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

    /// `meroctl --home <home> --node <name>`.
    pub fn meroctl(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(bin("meroctl"));
        c.arg("--home")
            .arg(self.home.path())
            .args(["--node", &self.name]);
        c
    }

    /// Runs meroctl with `--output-format json`, expects success, returns
    /// the JSON it printed.
    pub fn meroctl_json(&self, args: &[&str]) -> Value {
        let out = self
            .meroctl()
            .args(["--output-format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "meroctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A raw request; returns status and JSON body.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// JSON-RPC `execute`; returns the whole response.
    pub fn rpc(&self, ctx: &str, method: &str, args: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
            "params": {"contextId": ctx, "method": method, "argsJson": args}});
        let (status, v) = self.request("POST", "/jsonrpc", Some(&body.to_string()));
        assert_eq!(status, 200, "{v}");
        v
    }

    /// JSON-RPC `execute` expected to succeed; returns its output.
    pub fn call(&self, ctx: &str, method: &str, args: Value) -> Value {
        let v = self.rpc(ctx, method, args);
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"]["output"].clone()
    }

    /// Installs a component by path and creates a namespace running it;
    /// returns (application, namespace, context) ids.
    pub fn setup(&self, component: &str) -> (String, String, String) {
        self.setup_with(component, None)
    }

    /// Like [`setup`](Self::setup), with `init` parameters (JSON).
    pub fn setup_with(&self, component: &str, params: Option<&str>) -> (String, String, String) {
        let app = self.meroctl_json(&["app", "install", "--path", component])["applicationId"]
            .as_str()
            .unwrap()
            .to_string();
        let mut args = vec!["namespace", "create", "--application-id", &app];
        if let Some(p) = params {
            args.extend(["--params", p]);
        }
        let ns = self.meroctl_json(&args);
        (
            app,
            ns["namespaceId"].as_str().unwrap().into(),
            ns["contextId"].as_str().unwrap().into(),
        )
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Config for nodes of multi-node tests: anti-entropy every 300 ms.
pub const FAST_SYNC: &[&str] = &["sync.frequency_ms=300"];

impl TestNode {
    /// A context's root hash on this node (`None` if it has no such context).
    pub fn root(&self, ctx: &str) -> Option<String> {
        let (status, v) = self.request("GET", &format!("/admin-api/contexts/{ctx}"), None);
        (status == 200).then(|| v["data"]["contextStateHash"].as_str().unwrap().to_string())
    }

    /// `meroctl namespace invite`, exactly as printed.
    pub fn invite(&self, ns: &str, extra: &[&str]) -> String {
        let out = self
            .meroctl()
            .args(["namespace", "invite", ns])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "invite failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `meroctl namespace join` then `group join-context` with the real CLI.
    pub fn join(&self, ns: &str, invitation: &str, ctx: &str) {
        self.meroctl()
            .args(["namespace", "join", ns, invitation])
            .assert()
            .success();
        self.meroctl()
            .args(["group", "join-context", ctx])
            .assert()
            .success();
    }
}

/// Waits until every node has the same root hash for `ctx`; panics with the
/// hashes after `timeout`.
pub fn wait_converged(nodes: &[&TestNode], ctx: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let roots: Vec<Option<String>> = nodes.iter().map(|n| n.root(ctx)).collect();
        if roots[0].is_some() && roots.windows(2).all(|w| w[0] == w[1]) {
            return roots[0].clone().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no convergence after {timeout:?}: {roots:?}\n--- {} log:\n{}",
            nodes[0].name,
            nodes[0].log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
