//! The workflow's nodes: real `merod` processes on 127.0.0.1, each under a
//! home of its own inside the run's directory. This module owns their life
//! (init with test-suited sync timings, run, health polling, stop, SIGKILL,
//! SIGSTOP/SIGCONT), their logs, and a [`Client`] per node carrying the
//! node's own root credential, as `meroctl --node` sends it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

use super::spec::NodeSpec;
use crate::client::Client;

/// Config keys every node gets: anti-entropy every 300 ms, as the test
/// harness's nodes (`FAST_SYNC` in tests/testkit), so that a restarted or
/// lagging node catches up in well under a second.
const FAST_SYNC: &[&str] = &["sync.frequency_ms=300"];

/// The longest any single request to a node may take: a backstop for
/// steps that bound their requests by no timeout of their own (a frozen
/// node must not hang a run forever). Steps and polls bound theirs more
/// tightly by the time they have left.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a node may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Why a node could not be started or handled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("cannot run {merod}: {source}")]
    Spawn {
        merod: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`merod {args}` for node `{node}` failed: {stderr}")]
    Init {
        node: String,
        args: String,
        stderr: String,
    },
    #[error("node `{node}` exited while starting ({status}); its log: {log}")]
    Exited {
        node: String,
        status: String,
        log: String,
    },
    #[error("node `{node}` was not healthy after {timeout:?}; its log: {log}")]
    Unhealthy {
        node: String,
        timeout: Duration,
        log: String,
    },
    #[error("node `{node}`: {message}")]
    Other { node: String, message: String },
}

/// Where a node stands, as far as the runner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Running,
    Paused,
    Stopped,
}

/// One node.
pub(crate) struct ManagedNode {
    pub(crate) name: String,
    home: PathBuf,
    pub(crate) server_port: u16,
    client: Client,
    child: tokio::sync::Mutex<Option<Child>>,
    state: Mutex<State>,
    merod: PathBuf,
    log_level: String,
}

/// The nodes of a run.
pub(crate) struct Cluster {
    nodes: Vec<ManagedNode>,
}

impl Cluster {
    /// Initialises every node under `dir` (`<dir>/<node>/` is its home)
    /// without starting any.
    pub(crate) async fn init(
        dir: &Path,
        merod: &Path,
        specs: &[NodeSpec],
        log_level: &str,
    ) -> Result<Cluster, NodeError> {
        // Picked below the ephemeral range and never twice in this
        // process, so no two nodes of the run share one.
        let pick = |node: &str, given: Option<u16>| -> Result<u16, NodeError> {
            match given {
                Some(p) => Ok(p),
                None => mero_config::free_loopback_port().map_err(|e| NodeError::Other {
                    node: node.into(),
                    message: e.to_string(),
                }),
            }
        };
        let mut ports = Vec::new();
        for spec in specs {
            ports.push((
                pick(&spec.name, spec.server_port)?,
                pick(&spec.name, spec.swarm_port)?,
            ));
        }
        let mut nodes = Vec::new();
        for (spec, (server, swarm)) in specs.iter().zip(ports) {
            nodes.push(ManagedNode::init(dir, merod, spec, server, swarm, log_level).await?);
        }
        Ok(Cluster { nodes })
    }

    /// No nodes, for tests of steps that need none.
    #[cfg(test)]
    pub(crate) fn empty() -> Cluster {
        Cluster { nodes: Vec::new() }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&ManagedNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub(crate) fn all(&self) -> &[ManagedNode] {
        &self.nodes
    }

    /// Starts every node and waits until each is healthy.
    pub(crate) async fn start_all(&self, timeout: Duration) -> Result<(), NodeError> {
        let started = futures::future::join_all(self.nodes.iter().map(|n| n.start(timeout))).await;
        started.into_iter().collect()
    }

    /// Stops every node (SIGCONT first for a paused one; SIGKILL after a
    /// grace period).
    pub(crate) async fn stop_all(&self) {
        futures::future::join_all(self.nodes.iter().map(ManagedNode::stop)).await;
    }

    /// Lets the nodes outlive this process (`--keep`): their handles are
    /// dropped without killing them.
    pub(crate) fn detach(&self) {
        for n in &self.nodes {
            if let Ok(mut slot) = n.child.try_lock()
                && let Some(child) = slot.take()
            {
                std::mem::forget(child);
            }
        }
    }

    /// `name: path` of every node's log.
    pub(crate) fn log_paths(&self) -> Vec<(String, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.log_path()))
            .collect()
    }
}

impl ManagedNode {
    async fn init(
        dir: &Path,
        merod: &Path,
        spec: &NodeSpec,
        server_port: u16,
        swarm_port: u16,
        log_level: &str,
    ) -> Result<ManagedNode, NodeError> {
        let home = dir.join(&spec.name);
        std::fs::create_dir_all(&home).map_err(|e| NodeError::Other {
            node: spec.name.clone(),
            message: format!("cannot create {}: {e}", home.display()),
        })?;
        let (server, swarm) = (server_port.to_string(), swarm_port.to_string());
        merod_once(
            merod,
            &home,
            &spec.name,
            &["init", "--server-port", &server, "--swarm-port", &swarm],
        )
        .await?;
        let mut config = vec!["config"];
        config.extend_from_slice(FAST_SYNC);
        merod_once(merod, &home, &spec.name, &config).await?;
        let token =
            read_credential(&home.join(&spec.name)).map_err(|message| NodeError::Other {
                node: spec.name.clone(),
                message,
            })?;
        let client = Client::bounded(
            &format!("http://127.0.0.1:{server_port}"),
            token,
            Some(REQUEST_TIMEOUT),
        )
        .map_err(|e| NodeError::Other {
            node: spec.name.clone(),
            message: e.to_string(),
        })?;
        Ok(ManagedNode {
            name: spec.name.clone(),
            home,
            server_port,
            client,
            child: tokio::sync::Mutex::new(None),
            state: Mutex::new(State::Stopped),
            merod: merod.to_path_buf(),
            log_level: log_level.to_string(),
        })
    }

    /// The client of this node, authenticated as its owner.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A client of this node with another token (or none).
    pub(crate) fn client_with(&self, token: Option<String>) -> Result<Client, NodeError> {
        Client::bounded(self.client.base(), token, Some(REQUEST_TIMEOUT)).map_err(|e| {
            NodeError::Other {
                node: self.name.clone(),
                message: e.to_string(),
            }
        })
    }

    /// The node's directory (config, data, credential, log).
    pub(crate) fn dir(&self) -> PathBuf {
        self.home.join(&self.name)
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir().join("merod.log")
    }

    pub(crate) fn state(&self) -> State {
        self.state.lock().map_or(State::Stopped, |s| *s)
    }

    fn set_state(&self, state: State) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    /// Starts `merod run` (its output appended to its log) and polls its
    /// health until it answers or `timeout` passes.
    pub(crate) async fn start(&self, timeout: Duration) -> Result<(), NodeError> {
        let mut slot = self.child.lock().await;
        // A process that has exited (crashed, or killed from outside) is
        // reaped and forgotten: only a live one is "already running".
        if let Some(child) = slot.as_mut()
            && !matches!(child.try_wait(), Ok(Some(_)))
        {
            return Err(self.other("is already running"));
        }
        *slot = None;
        let deadline = Instant::now() + timeout;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| self.other(format!("cannot open its log: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| self.other(format!("cannot open its log: {e}")))?;
        let child = Command::new(&self.merod)
            .arg("--home")
            .arg(&self.home)
            .args(["--node", &self.name, "run"])
            .env("RUST_LOG", &self.log_level)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: Ctrl-C in the terminal reaches the
            // runner, which decides whether nodes stop (`--keep`).
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| NodeError::Spawn {
                merod: self.merod.display().to_string(),
                source,
            })?;
        *slot = Some(child);
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(child) = slot.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                *slot = None;
                return Err(NodeError::Exited {
                    node: self.name.clone(),
                    status: status.to_string(),
                    log: self.log_path().display().to_string(),
                });
            }
            // Each request bounded by the time left: a node frozen with
            // SIGSTOP accepts connections but never answers.
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Ok(_)) =
                tokio::time::timeout(left, self.client.get::<Value>("/admin-api/health")).await
            {
                self.set_state(State::Running);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NodeError::Unhealthy {
                    node: self.name.clone(),
                    timeout,
                    log: self.log_path().display().to_string(),
                });
            }
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after a grace period.
    pub(crate) async fn stop(&self) {
        let mut slot = self.child.lock().await;
        let Some(mut child) = slot.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // A stopped process acts on SIGTERM only once continued.
            signal(pid, "CONT").await;
            signal(pid, "TERM").await;
        }
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        self.set_state(State::Stopped);
    }

    /// SIGKILL, and reaps it.
    pub(crate) async fn kill(&self) {
        let mut slot = self.child.lock().await;
        if let Some(mut child) = slot.take() {
            let _ = child.kill().await;
        }
        self.set_state(State::Stopped);
    }

    /// SIGSTOP: the process freezes (its sockets stay open, unanswered).
    pub(crate) async fn pause(&self) -> Result<(), NodeError> {
        let pid = self.pid().await?;
        signal(pid, "STOP").await;
        self.set_state(State::Paused);
        Ok(())
    }

    /// SIGCONT.
    pub(crate) async fn resume(&self) -> Result<(), NodeError> {
        let pid = self.pid().await?;
        signal(pid, "CONT").await;
        self.set_state(State::Running);
        Ok(())
    }

    async fn pid(&self) -> Result<u32, NodeError> {
        self.child
            .lock()
            .await
            .as_ref()
            .and_then(Child::id)
            .ok_or_else(|| self.other("is not running"))
    }

    /// The last `lines` lines of its log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn other(&self, message: impl Into<String>) -> NodeError {
        NodeError::Other {
            node: self.name.clone(),
            message: message.into(),
        }
    }
}

/// Sends `SIG<name>` to `pid` with kill(1): the workspace forbids the
/// `unsafe` of calling kill(2) directly.
async fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// `merod --home <home> --node <name> <args>`, which must succeed.
async fn merod_once(merod: &Path, home: &Path, name: &str, args: &[&str]) -> Result<(), NodeError> {
    let out = Command::new(merod)
        .arg("--home")
        .arg(home)
        .args(["--node", name])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| NodeError::Spawn {
            merod: merod.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(NodeError::Init {
            node: name.into(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The root credential `merod init` wrote (none in proxy mode).
fn read_credential(dir: &Path) -> Result<Option<String>, String> {
    let path = dir.join("credential.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a credential: {e}", path.display()))?;
    Ok(v.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node whose "merod" is `merod` (a script), served at `base`.
    fn node(dir: &Path, merod: &Path, base: &str) -> ManagedNode {
        ManagedNode {
            name: "n1".into(),
            home: dir.to_path_buf(),
            server_port: 1,
            client: Client::new(base, None).unwrap(),
            child: tokio::sync::Mutex::new(None),
            state: Mutex::new(State::Stopped),
            merod: merod.to_path_buf(),
            log_level: "info".into(),
        }
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join("fake-merod");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// `n.start`, again while the fake merod is "text file busy": a test
    /// on another thread may fork while this one still has the script open
    /// for writing, and the child holds that descriptor until it execs.
    async fn start(n: &ManagedNode, timeout: Duration) -> Result<(), NodeError> {
        for _ in 0..50 {
            match n.start(timeout).await {
                Err(NodeError::Spawn { source, .. }) if source.raw_os_error() == Some(26) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
        n.start(timeout).await
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("meroctl-nodes-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(d.join("n1")).unwrap();
        d
    }

    #[tokio::test]
    async fn a_dead_process_is_not_already_running() {
        let dir = tempdir("dead");
        let merod = script(&dir, "exit 3");
        let n = node(&dir, &merod, "http://127.0.0.1:1");
        let mut dead = Command::new("true").spawn().unwrap();
        let _ = dead.wait().await;
        *n.child.lock().await = Some(dead);
        let e = start(&n, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, NodeError::Exited { .. }), "{e}");
        // A live one is.
        *n.child.lock().await = Some(
            Command::new("sleep")
                .arg("30")
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        );
        let e = n.start(Duration::from_secs(5)).await.unwrap_err();
        assert!(e.to_string().contains("already running"), "{e}");
        n.kill().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_node_that_never_answers_times_out() {
        let dir = tempdir("frozen");
        let merod = script(&dir, "exec sleep 30");
        // Accepts connections and never answers, as a SIGSTOPped node.
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let n = node(&dir, &merod, &base);
        let started = Instant::now();
        let e = start(&n, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(e, NodeError::Unhealthy { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        n.kill().await;
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
