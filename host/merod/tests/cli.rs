//! merod's command line: init, config edits, help.

#![allow(clippy::unwrap_used, reason = "tests fail fast")]

use std::process::Command;

fn merod() -> Command {
    Command::new(env!("CARGO_BIN_EXE_merod"))
}

#[test]
fn init_writes_a_loopback_config_once_and_config_edits_it() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        merod()
            .arg("--home")
            .arg(home.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--node",
        "n1",
        "init",
        "--server-port",
        "3111",
        "--swarm-port",
        "3112",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        "sync.interval_ms=500",
        "discovery.mdns=false",
    ]);
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    let config = std::fs::read_to_string(home.path().join("n1/config.toml")).unwrap();
    assert!(config.contains("interval_ms = 500"), "{config}");
    let bad = run(&["--node", "n1", "config", "sync.interval_ms=soon"]);
    assert!(!bad.status.success());
    let missing = run(&["--node", "nope", "run"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("init"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn help_has_examples() {
    let out = merod().args(["init", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Example"));
}
