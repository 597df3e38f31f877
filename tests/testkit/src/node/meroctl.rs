//! Running the real `meroctl` against a node, and the flows the tests build
//! on it: install and create a namespace, invite, join.

use std::process::Output;

use serde_json::Value;

use super::{TestNode, bin};

impl TestNode {
    /// `meroctl --home <home> --node <name>`, to add arguments to.
    pub fn meroctl(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(bin("meroctl"));
        c.arg("--home")
            .arg(self.home.path())
            .args(["--node", &self.name]);
        c
    }

    fn meroctl_output(&self, json: bool, args: &[&str]) -> Output {
        let mut c = self.meroctl();
        if json {
            c.args(["--output-format", "json"]);
        }
        c.args(args).output().unwrap()
    }

    /// Runs meroctl, which must succeed (else its stderr is shown); returns
    /// its stdout.
    fn meroctl_stdout(&self, json: bool, args: &[&str]) -> Vec<u8> {
        let out = self.meroctl_output(json, args);
        assert!(
            out.status.success(),
            "meroctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs meroctl, expects success, returns what it printed.
    pub fn meroctl_ok(&self, args: &[&str]) -> String {
        String::from_utf8(self.meroctl_stdout(false, args)).unwrap()
    }

    /// Runs meroctl with `--output-format json`, expects success, returns
    /// the JSON it printed.
    pub fn meroctl_json(&self, args: &[&str]) -> Value {
        serde_json::from_slice(&self.meroctl_stdout(true, args)).unwrap()
    }

    /// Runs meroctl, expects it to fail with `needle` in its stderr; prints
    /// what it printed if not. Returns the stderr.
    pub fn meroctl_fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.meroctl_output(false, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && stderr.contains(needle),
            "meroctl {args:?} should fail saying {needle:?}; it exited with {}\n\
             --- stdout:\n{}\n--- stderr:\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
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

    /// `meroctl namespace invite`, exactly as printed.
    pub fn invite(&self, ns: &str, extra: &[&str]) -> String {
        self.meroctl_ok(&[&["namespace", "invite", ns][..], extra].concat())
    }

    /// `meroctl namespace join` then `group join-context`; returns the
    /// member's key (hex), as `join` printed it.
    pub fn join(&self, ns: &str, invitation: &str, ctx: &str) -> String {
        let joined = self.meroctl_json(&["namespace", "join", ns, invitation]);
        self.meroctl_ok(&["group", "join-context", ctx]);
        joined["memberAccount"].as_str().unwrap().to_string()
    }
}
