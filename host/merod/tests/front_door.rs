//! `scripts/ensure-wasm-target`, which `scripts/dev`, `scripts/test` and
//! `.ci/run` run before cargo: it adds the wasm32-wasip2 target only when it
//! is missing, and says what to do when it cannot. Driven against a fake
//! `rustup` and `rustc` on PATH, never the machine's own toolchain.
#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests fail fast")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-wasm-target")
}

fn write_tool(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake toolchain in a temp dir: a `rustc` whose sysroot is `sysroot`,
/// and, if `installed` is given, a `rustup` that lists those targets and logs
/// every call to `calls`.
struct Fake {
    bin: tempfile::TempDir,
    sysroot: tempfile::TempDir,
}

impl Fake {
    fn new(installed: Option<&str>) -> Fake {
        let bin = tempfile::tempdir().unwrap();
        let sysroot = tempfile::tempdir().unwrap();
        write_tool(
            bin.path(),
            "rustc",
            &format!(
                "case \"$1\" in --print) echo '{}' ;; *) echo 'rustc 1.95.0 (fake)' ;; esac\n",
                sysroot.path().display()
            ),
        );
        if let Some(installed) = installed {
            write_tool(
                bin.path(),
                "rustup",
                &format!(
                    "echo \"$*\" >> '{}'\n\
                     if [ \"$*\" = 'target list --installed' ]; then printf '{installed}'; fi\n",
                    bin.path().join("calls").display()
                ),
            );
        }
        Fake { bin, sysroot }
    }

    /// Runs the script with only the fake tools and the system's own
    /// directories (for sh, grep, dirname) on PATH.
    fn run(&self) -> Output {
        Command::new(script())
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.bin.path().display()),
            )
            .output()
            .unwrap()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.bin.path().join("calls")).unwrap_or_default()
    }
}

/// Whether a real rustup sits in the system directories the fake PATH keeps:
/// then "rustup is absent" cannot be staged.
fn system_rustup() -> bool {
    ["/usr/bin/rustup", "/bin/rustup"]
        .iter()
        .any(|p| Path::new(p).exists())
}

#[test]
fn a_missing_target_is_added_through_rustup() {
    let fake = Fake::new(Some("x86_64-unknown-linux-gnu\\n"));
    let out = fake.run();
    assert!(out.status.success(), "{out:?}");
    assert!(
        fake.calls()
            .lines()
            .any(|l| l == "target add wasm32-wasip2"),
        "{}",
        fake.calls()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Adding the wasm32-wasip2 target"));
}

#[test]
fn an_installed_target_is_left_alone() {
    let fake = Fake::new(Some("wasm32-wasip2\\nx86_64-unknown-linux-gnu\\n"));
    let out = fake.run();
    assert!(out.status.success(), "{out:?}");
    assert!(!fake.calls().contains("target add"), "{}", fake.calls());
}

#[test]
fn without_rustup_a_missing_target_is_a_clear_error_and_a_present_one_passes() {
    if system_rustup() {
        eprintln!("skipped: rustup is installed in a system directory");
        return;
    }
    let fake = Fake::new(None);
    let out = fake.run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wasm32-wasip2") && err.contains("rustup"),
        "{err}"
    );
    std::fs::create_dir_all(fake.sysroot.path().join("lib/rustlib/wasm32-wasip2")).unwrap();
    let out = fake.run();
    assert!(out.status.success(), "{out:?}");
}
