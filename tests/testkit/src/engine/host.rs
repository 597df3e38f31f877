//! A store and a runtime over one directory, and installing components
//! into them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use mero_crdt::Hash;
use mero_executor::{Executor, Standing};
use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::{ApplicationRecord, Store, StoreConfig};
use sha2::{Digest, Sha256};

use super::{Engine, Limits};

/// A store in `dir/db` and a runtime caching in `dir/compiled`.
pub struct Host {
    /// The directory holding both.
    pub dir: PathBuf,
    pub store: Store,
    pub runtime: Arc<Runtime>,
    /// The temp dir, if this host made it: deleted with the last owner.
    pub(super) tmp: Option<tempfile::TempDir>,
}

impl Host {
    /// A host over a fresh temp dir.
    pub fn temp(limits: Limits) -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let mut host = Host::at(tmp.path(), limits);
        host.tmp = Some(tmp);
        host
    }

    /// A host over the data in `dir`, which outlives it.
    pub fn at(dir: &Path, limits: Limits) -> Host {
        Host::open(dir, limits.runtime(dir), &limits.store())
    }

    /// A host over `dir` with settings of the caller's own.
    pub fn open(dir: &Path, runtime: RuntimeConfig, store: &StoreConfig) -> Host {
        Host {
            dir: dir.to_path_buf(),
            store: Store::open(&dir.join("db"), store).unwrap(),
            runtime: Runtime::new(runtime).unwrap(),
            tmp: None,
        }
    }

    /// Installs the component at `path` (a fixture's); returns its hash.
    pub async fn install(&self, path: &str) -> Hash {
        self.install_bytes(&std::fs::read(path).unwrap(), path)
            .await
    }

    /// Installs a component given by its bytes.
    pub async fn install_bytes(&self, bytes: &[u8], source: &str) -> Hash {
        install(&self.store, &self.runtime, bytes, source).await
    }

    /// Starts an executor signing with `key`.
    pub fn spawn(self, key: SigningKey) -> Engine {
        let exec = Executor::spawn(self.runtime.clone(), self.store.clone(), key).unwrap();
        Engine::new(self, exec)
    }

    /// Starts an executor signing with `key` whose deltas name the
    /// governance heads `standing` gives.
    pub fn spawn_governed(self, key: SigningKey, standing: Standing) -> Engine {
        let exec =
            Executor::spawn_governed(self.runtime.clone(), self.store.clone(), key, standing)
                .unwrap();
        Engine::new(self, exec)
    }
}

/// Loads `bytes` on `runtime` and stores them with an application record,
/// as installing an application does; returns the component's hash (the
/// application's id and its blob's).
pub(super) async fn install(
    store: &Store,
    runtime: &Arc<Runtime>,
    bytes: &[u8],
    source: &str,
) -> Hash {
    let hash: Hash = Sha256::digest(bytes).into();
    let app = runtime.load(bytes).await.unwrap();
    let mut w = store.write().unwrap();
    w.put_blob(&hash, bytes).unwrap();
    w.put_application(&ApplicationRecord {
        id: hash,
        blob: hash,
        size: bytes.len() as u64,
        source: source.into(),
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
