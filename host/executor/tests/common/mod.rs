//! A node's engine in-process: store, runtime and executor over a temp dir.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mero_crdt::{ContextId, Hash};
use mero_executor::{CallOutcome, ExecError, Executor, NewContext};
use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::{ApplicationRecord, Store, StoreConfig};
use sha2::{Digest, Sha256};

pub struct Engine {
    _tmp: Option<tempfile::TempDir>,
    pub dir: std::path::PathBuf,
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub exec: Executor,
}

/// The calls' deadline: generous, so that on a loaded machine only a guest
/// that never returns meets it (a 10 MiB value or 6,000 writes took over
/// 500 ms under load).
pub const CALL_TIMEOUT_MS: u64 = 3_000;

pub fn config(dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(dir.join("compiled")),
        call_timeout: Duration::from_millis(CALL_TIMEOUT_MS),
        max_memory_bytes: 48 << 20,
        max_ops_per_call: 10_000,
        ..RuntimeConfig::default()
    }
}

/// An engine over the data in `dir`, which outlives it.
pub fn engine_at(dir: &Path, seed: u8) -> Engine {
    engine_configured(dir, seed, config(dir))
}

/// An engine over a fresh temp dir whose runtime pools only `n` instances.
#[allow(dead_code, reason = "not every test binary uses it")]
pub fn engine_with_instances(seed: u8, n: u32) -> Engine {
    let tmp = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        max_instances: n,
        ..config(tmp.path())
    };
    let mut e = engine_configured(tmp.path(), seed, config);
    e._tmp = Some(tmp);
    e
}

fn engine_configured(dir: &Path, seed: u8, config: RuntimeConfig) -> Engine {
    let store = Store::open(
        &dir.join("db"),
        &StoreConfig {
            map_size: 1 << 30,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let runtime = Runtime::new(config).unwrap();
    let exec = Executor::spawn(
        runtime.clone(),
        store.clone(),
        SigningKey::from_bytes(&[seed; 32]),
    )
    .unwrap();
    Engine {
        _tmp: None,
        dir: dir.to_path_buf(),
        store,
        runtime,
        exec,
    }
}

/// An engine over a fresh temp dir.
pub fn engine(seed: u8) -> Engine {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = engine_at(tmp.path(), seed);
    e._tmp = Some(tmp);
    e
}

impl Engine {
    /// Stores a component and an application record for it.
    pub async fn install(&self, path: &str) -> Hash {
        let bytes = std::fs::read(path).unwrap();
        let hash: Hash = Sha256::digest(&bytes).into();
        let app = self.runtime.load(&bytes).await.unwrap();
        let mut w = self.store.write().unwrap();
        w.put_blob(&hash, &bytes).unwrap();
        w.put_application(&ApplicationRecord {
            id: hash,
            blob: hash,
            size: bytes.len() as u64,
            source: path.into(),
            metadata: vec![],
            package: "test".into(),
            version: "1.0.0".into(),
            state_version: app.description().state_version,
            installed_at_millis: 0,
        })
        .unwrap();
        w.commit().unwrap();
        hash
    }

    pub async fn create(
        &self,
        blob: Hash,
        id: u8,
        init_args: &str,
    ) -> Result<ContextId, ExecError> {
        let created = self
            .exec
            .create_context(NewContext {
                id: ContextId([id; 32]),
                application: blob,
                blob,
                app_version: "1.0.0".into(),
                group: None,
                name: None,
                init_args: init_args.into(),
            })
            .await?;
        Ok(created.id)
    }

    pub async fn call(
        &self,
        ctx: &ContextId,
        method: &str,
        args: serde_json::Value,
    ) -> Result<CallOutcome, ExecError> {
        self.exec.call(ctx, method, args.to_string()).await
    }

    pub async fn ok(
        &self,
        ctx: &ContextId,
        method: &str,
        args: serde_json::Value,
    ) -> serde_json::Value {
        match self.call(ctx, method, args).await {
            Ok(o) => o.output,
            Err(e) => panic!("{method} failed: {e:?}"),
        }
    }

    pub fn root(&self, ctx: &ContextId) -> Hash {
        self.store.snapshot().unwrap().root_hash(ctx).unwrap()
    }
}
