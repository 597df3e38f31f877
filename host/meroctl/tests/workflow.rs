//! `meroctl workflow` as a user runs it: the binary, on small workflows,
//! against real merod processes it starts (the merod built beside it; no
//! application needed). Checks exit statuses and what is printed, never
//! timings.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail fast")]

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;

/// The merod of this build (`cargo test --workspace` builds it).
fn merod() -> PathBuf {
    let meroctl = assert_cmd::cargo::cargo_bin("meroctl");
    let merod = meroctl.with_file_name("merod");
    assert!(
        merod.exists(),
        "{} is missing: run `cargo build -p merod` (or `cargo test --workspace`)",
        merod.display()
    );
    merod
}

/// Runs `meroctl workflow run` on `yaml`, nodes under a temporary directory.
fn run(yaml: &str, extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wf.yml");
    std::fs::write(&file, yaml).unwrap();
    let out = Command::cargo_bin("meroctl")
        .unwrap()
        .args(["workflow", "run"])
        .arg(&file)
        .arg("--merod")
        .arg(merod())
        .arg("--dir")
        .arg(dir.path().join("nodes"))
        .args(extra)
        .output()
        .unwrap();
    (out, dir)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_workflow_that_holds_passes() {
    let (out, dir) = run(
        "name: holds
nodes:
  count: 2
  prefix: n
steps:
  - name: Health
    type: assert_api_response
    node: n-1
    path: /admin-api/health
    match:
      data.status: alive
  - name: No such application
    type: create_namespace
    node: n-2
    application_id: '{{app}}'
    expected_failure: true
    expected_error: HTTP 404
    outputs:
      kind: error_type
      code: error_code
  - name: The refusal's fields
    type: assert
    statements:
      - 'equal({{code}}, 404)'
      - 'contains({{kind}}, NotFound)'
  - name: Who n-2 is
    type: node_identity
    node: n-2
    outputs:
      me: publicKey
  - name: A key in base58
    type: assert
    statements:
      - 'regex({{me}}, ^[1-9A-HJ-NP-Za-km-z]{40,50}$)'
  - name: No namespaces yet
    type: list_namespaces
    node: n-1
    outputs:
      all: ''
  - name: An empty list
    type: json_assert
    statements:
      - 'json_equal({{all}}, [])'
",
        &["--var", "app=FvMCe1D3xrKA7DfavLP9TtXARx2tzxijiSaLbrnaYgJu"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("workflow `holds` passed: 7 steps"),
        "{stdout}"
    );
    assert!(stdout.contains("ok (failed as expected)"), "{stdout}");
    // A passing run removes the node homes it made only when it chose
    // where they go; here `--dir` chose, so they stay.
    assert!(dir.path().join("nodes/n-1/n-1/merod.log").exists());
}

#[test]
fn a_failing_workflow_exits_non_zero_naming_the_step_its_inputs_and_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let (out, _nodes) = run(
        "name: breaks
nodes:
  count: 1
  prefix: n
steps:
  - name: Health
    type: assert_api_response
    node: n-1
    path: /admin-api/health
    match:
      data.status: alive
  - name: Read a context that is not there
    type: call
    node: n-1
    context_id: '{{ctx}}'
    method: get
    args: {key: a}
  - name: Never reached
    type: wait
    seconds: 0
",
        &[
            "--var",
            "ctx=FhkRaaES5F6qz5UigLtyGNMPBmR7AmmgxCLCFd76L44",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for needle in [
        "failed at step `Read a context that is not there` (call,",
        "wf.yml:12) on node n-1",
        "inputs: {",
        "\"context_id\":\"FhkRaaES5F6qz5UigLtyGNMPBmR7AmmgxCLCFd76L44\"",
        "answer: ",
        "node logs:",
        "merod.log",
    ] {
        assert!(stderr.contains(needle), "no `{needle}` in:\n{stderr}");
    }
    assert!(
        stdout.contains("FAILED") && stdout.contains("skipped"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
        "{xml}"
    );
}

#[test]
fn a_bad_workflow_is_refused_before_any_node_starts() {
    let (out, dir) = run(
        "name: bad
nodes:
  count: 1
steps:
  - type: call
    node: calimero-node-1
    context_id: x
    method: get
    agrs: {}
",
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("wf.yml:9: step `call`: unknown key `agrs` (did you mean `args`?)"),
        "{stderr}"
    );
    assert!(!dir.path().join("nodes").exists(), "a node home was made");
}

#[test]
fn a_frozen_node_fails_the_step_instead_of_hanging_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wf.yml");
    std::fs::write(
        &file,
        "name: frozen
nodes:
  count: 2
  prefix: n
steps:
  - name: Freeze n-2
    type: pause_node
    node: n-2
  - name: Sync with a frozen node
    type: wait_for_sync
    nodes: [n-1, n-2]
    context_id: FhkRaaES5F6qz5UigLtyGNMPBmR7AmmgxCLCFd76L44
    timeout: 2
",
    )
    .unwrap();
    // The command's own limit only catches a hang; the step gives up after 2 s.
    let out = Command::cargo_bin("meroctl")
        .unwrap()
        .args(["workflow", "run"])
        .arg(&file)
        .arg("--merod")
        .arg(merod())
        .arg("--dir")
        .arg(dir.path().join("nodes"))
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("no convergence after"), "{stderr}");
}

/// Whether any process's command line mentions `needle`.
fn any_process_mentions(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| String::from_utf8_lossy(&c).contains(needle))
}

#[test]
fn sigterm_while_the_nodes_start_stops_them() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    // A merod whose `run` is slow to answer: start-up lasts seconds.
    let slow = dir.path().join("slow-merod");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" run \"*) sleep 3;; esac\nexec {} \"$@\"\n",
            merod().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("wf.yml");
    std::fs::write(
        &file,
        "name: slow\nnodes:\n  count: 1\n  prefix: n\nsteps:\n  - type: wait\n    seconds: 0\n",
    )
    .unwrap();
    let nodes = dir.path().join("nodes");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("meroctl"))
        .args(["workflow", "run"])
        .arg(&file)
        .arg("--merod")
        .arg(&slow)
        .arg("--dir")
        .arg(&nodes)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The log is opened as `run` starts.
    let log = nodes.join("n-1").join("n-1").join("merod.log");
    let waited = std::time::Instant::now();
    while !log.exists() {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(60),
            "the node never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        !any_process_mentions(&nodes.display().to_string()),
        "a node outlived meroctl"
    );
}
