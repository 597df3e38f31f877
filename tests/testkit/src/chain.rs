//! A real Ethereum chain on 127.0.0.1 for the relayer's tests: Hardhat
//! Network (`npx hardhat node`, from `tests/chain`'s npm package, installed
//! with `npm ci` there, as `.ci/run` does) on a free port, its twenty
//! funded accounts unlocked, and a test ERC-20 (`tests/chain/contracts`)
//! compiled by solc from npm and deployed by the test. The process is
//! killed when the [`LocalChain`] drops.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::node::free_port;
use crate::wait_for;

/// `keccak256("transfer(address,uint256)")[..4]`.
const TRANSFER: &str = "a9059cbb";

/// A running Hardhat node.
pub struct LocalChain {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    http: reqwest::blocking::Client,
}

impl Drop for LocalChain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/chain`.
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chain")
}

fn word(hex_digits: &str) -> String {
    format!("{hex_digits:0>64}")
}

impl LocalChain {
    /// Starts Hardhat Network on a free 127.0.0.1 port and waits for it.
    pub fn start() -> LocalChain {
        let dir = package_dir();
        let hardhat = dir.join("node_modules/.bin/hardhat");
        // One `npm ci` at a time: a test binary's tests start chains at once.
        static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _installing = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        if !hardhat.exists() {
            // A fresh clone: what .ci/run does first.
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "`npm ci` in {} failed",
                dir.display()
            );
        }
        assert!(
            hardhat.exists(),
            "{} is missing: run `npm ci` in {} (.ci/run does)",
            hardhat.display(),
            dir.display()
        );
        drop(_installing);
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("hardhat-{port}.log")))
            .unwrap();
        let child = Command::new(hardhat)
            .args([
                "node",
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .current_dir(&dir)
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let chain = LocalChain {
            url: format!("http://127.0.0.1:{port}"),
            child,
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        wait_for("the local chain", Duration::from_secs(60), || {
            chain.try_call("eth_chainId", json!([])).ok()
        });
        chain
    }

    fn try_call(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let v: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| e.to_string())?;
        match v.get("result") {
            Some(r) => Ok(r.clone()),
            None => Err(v.to_string()),
        }
    }

    /// A JSON-RPC call, which must succeed.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// The funded, unlocked accounts (lower-case hex).
    pub fn accounts(&self) -> Vec<String> {
        self.call("eth_accounts", json!([]))
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    /// Sends a transaction from an unlocked account (mined at once) and
    /// returns its receipt, which must show success.
    pub fn send(&self, from: &str, to: Option<&str>, data: &str, value: u128) -> Value {
        let mut tx = json!({"from": from, "data": data, "value": format!("0x{value:x}")});
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        let hash = self.call("eth_sendTransaction", json!([tx]));
        let receipt = self.call("eth_getTransactionReceipt", json!([hash]));
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        receipt
    }

    /// Compiles the test ERC-20 with solc from npm and deploys it from
    /// `from`, who gets all `supply` base units. Returns its address.
    pub fn deploy_token(&self, from: &str, supply: u128) -> String {
        let out = Command::new("node")
            .arg("compile.mjs")
            .current_dir(package_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "compile.mjs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let compiled: Value = serde_json::from_slice(&out.stdout).unwrap();
        let bytecode = compiled["bytecode"].as_str().unwrap();
        let data = format!("{bytecode}{}", word(&format!("{supply:x}")));
        let receipt = self.send(from, None, &data, 0);
        receipt["contractAddress"].as_str().unwrap().to_owned()
    }

    /// `token.transfer(to, amount)` from `from`.
    pub fn transfer_token(&self, token: &str, from: &str, to: &str, amount: u128) {
        let to = to.trim_start_matches("0x");
        let data = format!(
            "0x{TRANSFER}{}{}",
            word(&to.to_lowercase()),
            word(&format!("{amount:x}"))
        );
        self.send(from, Some(token), &data, 0);
    }
}
