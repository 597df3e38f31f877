//! meroctl's command line without a node: help, completions, clear errors.

#![allow(clippy::unwrap_used, reason = "tests fail fast")]

use assert_cmd::Command;

fn meroctl() -> Command {
    Command::cargo_bin("meroctl").unwrap()
}

#[test]
fn help_shows_examples_and_completions_are_printed() {
    let out = meroctl().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("call set"),
        "{text}"
    );
    let out = meroctl().args(["call", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--args"));
    for shell in ["bash", "zsh", "fish"] {
        let out = meroctl().args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && out.stdout.len() > 100, "{shell}");
    }
}

#[test]
fn unreachable_nodes_and_unknown_nodes_fail_clearly() {
    let out = meroctl()
        .args(["--api", "http://127.0.0.1:1", "context", "ls"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the node"));
    let home = tempfile::tempdir().unwrap();
    let out = meroctl()
        .arg("--home")
        .arg(home.path())
        .args(["--node", "ghost", "context", "ls"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("merod"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
