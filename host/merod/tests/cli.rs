//! merod's command line: init, config edits, help, plain logs on a pipe, and
//! the lines `merod dev` prints.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::process::Command;

fn merod() -> Command {
    Command::new(env!("CARGO_BIN_EXE_merod"))
}

/// Fails with the process's stderr unless it succeeded.
fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails unless the process failed saying `needle` on stderr.
fn assert_fails_saying(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(needle), "{err}");
}

/// `merod --home <home> <args>`, run to its end.
fn in_home(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    merod().arg("--home").arg(home).args(args).output().unwrap()
}

#[test]
fn init_writes_a_loopback_config_once_and_config_edits_it() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| in_home(home.path(), args);
    let out = run(&[
        "--node",
        "n1",
        "init",
        "--server-port",
        "3111",
        "--swarm-port",
        "3112",
    ]);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("config.toml")
            && text.contains("peer id")
            && text.contains("http://127.0.0.1:3111"),
        "{text}"
    );
    let config = std::fs::read_to_string(home.path().join("n1/config.toml")).unwrap();
    assert!(
        config.contains("/ip4/127.0.0.1/tcp/3111") && config.contains("/ip4/127.0.0.1/tcp/3112")
    );
    assert!(!config.contains("0.0.0.0"));

    let again = run(&["--node", "n1", "init"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialized"));

    let edit = run(&[
        "--node",
        "n1",
        "config",
        "sync.frequency_ms=500",
        "discovery.mdns=false",
    ]);
    assert_ok(&edit);
    let config = std::fs::read_to_string(home.path().join("n1/config.toml")).unwrap();
    assert!(config.contains("frequency_ms = 500"), "{config}");
    let bad = run(&["--node", "n1", "config", "sync.frequency_ms=soon"]);
    assert!(!bad.status.success());
    // A misspelt key is refused with its name, and the file is unchanged.
    assert_fails_saying(
        &run(&["--node", "n1", "config", "sync.frequncy_ms=300"]),
        "frequncy_ms",
    );
    let after = std::fs::read_to_string(home.path().join("n1/config.toml")).unwrap();
    assert_eq!(after, config);
    assert_fails_saying(&run(&["--node", "nope", "run"]), "init");
}

#[test]
fn help_has_examples() {
    for cmd in ["init", "config"] {
        let out = merod().args([cmd, "--help"]).output().unwrap();
        assert_ok(&out);
        assert!(String::from_utf8_lossy(&out.stdout).contains("Example"));
    }
}

/// A spawned merod whose stdout and stderr are pipes, read line by line.
struct Spawned {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<(Stream, String)>,
    seen: Vec<(Stream, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

impl Spawned {
    fn start(mut cmd: Command) -> Spawned {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = cmd
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("MEROD_NODE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::sync_channel(1024);
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let err = std::io::BufReader::new(child.stderr.take().unwrap());
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send((Stream::Out, line)).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if tx_err.send((Stream::Err, line)).is_err() {
                    break;
                }
            }
        });
        Spawned {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one on `stream` contains `needle`; panics with
    /// everything seen if none does within the timeout or the process ends.
    fn wait_for(&mut self, stream: Stream, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.0 == stream && line.1.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => panic!(
                    "no {stream:?} line with {needle:?} ({e}); saw {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Stops the process and returns every line it wrote on `stream`.
    fn stop(mut self, stream: Stream) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The readers end at end of file; their senders then drop.
        self.seen.extend(self.lines.iter());
        self.seen
            .into_iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l)
            .collect()
    }
}

fn free_port() -> u16 {
    mero_config::free_loopback_port().unwrap()
}

/// The status of `GET path` on `addr`, over a bare HTTP/1.1 connection.
fn get_status(addr: &str, path: &str, token: Option<&str>) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Initializes node `name` under `home` on free loopback ports.
fn init_node(merod: &std::path::Path, home: &std::path::Path, name: &str) {
    let out = Command::new(merod)
        .arg("--home")
        .arg(home)
        .args(["--node", name, "init", "--swarm-port", "0", "--server-port"])
        .arg(free_port().to_string())
        .output()
        .unwrap();
    assert_ok(&out);
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let home = tempfile::tempdir().unwrap();
    let merod_path = std::path::Path::new(env!("CARGO_BIN_EXE_merod"));
    init_node(merod_path, home.path(), "n1");
    let mut cmd = merod();
    cmd.arg("--home")
        .arg(home.path())
        .args(["--node", "n1", "run"]);
    let mut node = Spawned::start(cmd);
    node.wait_for(Stream::Err, "node running");
    let log = node.stop(Stream::Err).join("\n");
    assert!(!log.contains("\x1b["), "{log}");
}

/// A copy of the merod under test in a directory of its own, with or without
/// a `meroctl` beside it, as `scripts/dev`'s release build leaves them.
fn merod_in_own_dir(with_meroctl: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let merod = dir
        .path()
        .join(format!("merod{}", std::env::consts::EXE_SUFFIX));
    let built = env!("CARGO_BIN_EXE_merod");
    // A hard link is cheap; the target dir and the temp dir share a disk.
    if std::fs::hard_link(built, &merod).is_err() {
        std::fs::copy(built, &merod).unwrap();
    }
    if with_meroctl {
        let meroctl = dir
            .path()
            .join(format!("meroctl{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(meroctl, b"").unwrap();
    }
    (dir, merod)
}

/// Runs `merod dev` from `merod` in a fresh home; returns its stdout lines.
fn dev_lines(merod: &std::path::Path) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    // Initialized first, so that dev takes free ports rather than defaults.
    init_node(merod, home.path(), "dev");
    let mut cmd = Command::new(merod);
    cmd.arg("--home").arg(home.path()).arg("dev");
    let mut node = Spawned::start(cmd);
    node.wait_for(Stream::Out, "Press Ctrl-C to stop.");
    // The printed URL and token work: an authenticated request answers 200.
    let token_line = node
        .seen
        .iter()
        .find(|(_, l)| l.contains("token (admin, 24 h): "))
        .map(|(_, l)| l.clone())
        .unwrap_or_else(|| panic!("no token line in {:#?}", node.seen));
    let api = token_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_start_matches("http://");
    let token = token_line.rsplit(' ').next().unwrap();
    assert_eq!(
        get_status(api, "/admin-api/contexts", Some(token)),
        200,
        "{token_line}"
    );
    assert_eq!(get_status(api, "/admin-api/contexts", None), 401);
    let lines = node.stop(Stream::Out);
    let ctl: Vec<String> = lines
        .iter()
        .filter(|l| l.contains(" call "))
        .cloned()
        .collect();
    assert_eq!(ctl.len(), 2, "{lines:#?}");
    let home = home.path().display().to_string();
    assert!(
        ctl.iter().all(|l| l.contains(&format!("--home {home} "))),
        "{ctl:#?}"
    );
    ctl
}

#[test]
fn dev_prints_meroctl_lines_that_name_the_binary_beside_merod() {
    let (dir, merod) = merod_in_own_dir(true);
    let meroctl = dir
        .path()
        .join(format!("meroctl{}", std::env::consts::EXE_SUFFIX));
    for line in dev_lines(&merod) {
        assert!(
            line.trim_start()
                .starts_with(&format!("{} --home", meroctl.display())),
            "{line}"
        );
        assert!(!line.contains("cargo run"), "{line}");
    }
}

#[test]
fn dev_falls_back_to_cargo_when_no_meroctl_is_beside_merod() {
    let (_dir, merod) = merod_in_own_dir(false);
    for line in dev_lines(&merod) {
        assert!(
            line.trim_start()
                .starts_with("cargo run -q --release -p meroctl -- --home"),
            "{line}"
        );
    }
}

#[test]
fn init_writes_a_private_root_credential_and_refuses_an_open_unauthenticated_api() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| in_home(home.path(), args);
    let out = run(&[
        "--node",
        "n1",
        "init",
        "--server-port",
        "3121",
        "--swarm-port",
        "3122",
    ]);
    assert_ok(&out);
    let credential = home.path().join("n1/credential.json");
    let mode = std::fs::metadata(&credential).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&credential).unwrap()).unwrap();
    assert_eq!(
        v["access_token"].as_str().unwrap().split('.').count(),
        3,
        "a JWT"
    );
    let config = std::fs::read_to_string(home.path().join("n1/config.toml")).unwrap();
    assert!(config.contains("auth_mode = \"embedded\""), "{config}");

    let open = run(&[
        "--node",
        "n2",
        "init",
        "--auth-mode",
        "proxy",
        "--server-host",
        "0.0.0.0",
    ]);
    assert_fails_saying(&open, "without authentication");
    assert!(!home.path().join("n2/config.toml").exists());

    let bad = run(&["--node", "n1", "config", "server.auth_mode=jwt"]);
    assert!(!bad.status.success());
    let text = config.replace("auth_mode = \"embedded\"", "auth_mode = \"none\"");
    std::fs::write(home.path().join("n1/config.toml"), text).unwrap();
    assert_fails_saying(&run(&["--node", "n1", "run"]), "none");
}

#[test]
fn proxy_mode_is_explicit_and_warned_about_at_start() {
    let home = tempfile::tempdir().unwrap();
    let out = merod()
        .arg("--home")
        .arg(home.path())
        .args([
            "--node",
            "p1",
            "init",
            "--auth-mode",
            "proxy",
            "--swarm-port",
            "0",
            "--server-port",
        ])
        .arg(free_port().to_string())
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(!home.path().join("p1/credential.json").exists());
    let mut cmd = merod();
    cmd.arg("--home")
        .arg(home.path())
        .args(["--node", "p1", "run"]);
    let mut node = Spawned::start(cmd);
    node.wait_for(Stream::Err, "checks no credentials");
    node.stop(Stream::Err);
}

/// `POST path` with a JSON body on `addr`, over a bare HTTP/1.1
/// connection; the status and the JSON answer.
fn post_json(addr: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    use std::io::{Read as _, Write as _};
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or_default();
    (status, json)
}

/// Upstream's `user_password` login (calimero-client-py, merobox).
fn login(user: &str, password: &str) -> serde_json::Value {
    serde_json::json!({"auth_method": "user_password", "public_key": "ed25519:cli-test",
        "client_name": "cli-test", "timestamp": 1_700_000_000u64,
        "provider_data": {"username": user, "password": password}})
}

/// `merod auth set-password` on a running node: the password comes from
/// standard input (never the command line), the node reads it without a
/// restart, and a login with it gets tokens of the user's permissions; a
/// wrong password is refused.
#[test]
fn set_password_reads_stdin_and_logins_with_it_work() {
    use std::io::Write as _;
    use std::process::Stdio;
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = in_home(
        home.path(),
        &[
            "--node",
            "n1",
            "init",
            "--swarm-port",
            "0",
            "--server-port",
            &port.to_string(),
        ],
    );
    assert_ok(&out);
    let mut cmd = merod();
    cmd.arg("--home")
        .arg(home.path())
        .args(["--node", "n1", "run"]);
    let mut node = Spawned::start(cmd);
    node.wait_for(Stream::Err, "node running");
    let set_password = |user: &str, password: &str, extra: &[&str]| {
        let mut child = merod()
            .arg("--home")
            .arg(home.path())
            .args(["--node", "n1", "auth", "set-password", "--user", user])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = set_password("alice", "correct horse battery", &[]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Password set for `alice`"));
    assert!(!set_password("carol", "short", &[]).status.success());
    let out = set_password(
        "bob",
        "staple battery horse",
        &["--permission", "application:list"],
    );
    assert_ok(&out);

    let addr = format!("127.0.0.1:{port}");
    let (status, v) = post_json(&addr, "/auth/token", &login("alice", "wrong password"));
    assert_eq!(status, 401, "{v}");
    assert!(v["data"].is_null(), "{v}");
    let (status, v) = post_json(&addr, "/auth/token", &login("carol", "short"));
    assert_eq!(status, 401, "{v}");
    let (status, v) = post_json(
        &addr,
        "/auth/token",
        &login("alice", "correct horse battery"),
    );
    assert_eq!(status, 200, "{v}");
    let access = v["data"]["access_token"].as_str().unwrap();
    assert!(v["data"]["refresh_token"].is_string(), "{v}");
    assert_eq!(get_status(&addr, "/admin-api/contexts", Some(access)), 200);
    // Bob's tokens carry only what his password was set with.
    let (status, v) = post_json(&addr, "/auth/token", &login("bob", "staple battery horse"));
    assert_eq!(status, 200, "{v}");
    let bob = v["data"]["access_token"].as_str().unwrap();
    assert_eq!(get_status(&addr, "/admin-api/applications", Some(bob)), 200);
    assert_eq!(get_status(&addr, "/admin-api/contexts", Some(bob)), 403);
    node.stop(Stream::Err);
}
