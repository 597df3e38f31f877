//! An engine: a [`Host`] with an executor, and the calls tests make on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ed25519_dalek::SigningKey;
use mero_crdt::collections::Mutator;
use mero_crdt::overlay::Overlay;
use mero_crdt::{Author, Clock, ContextId, Delta, Hash, Hlc, NodeId, SignedDelta};
use mero_executor::{CallOutcome, ExecError, Executor, NewContext};
use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::Store;

use super::{Host, Limits};

/// A store, a runtime and an executor over one directory.
pub struct Engine {
    /// The directory holding the store and the compiled components.
    pub dir: PathBuf,
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub exec: Executor,
    _tmp: Option<tempfile::TempDir>,
}

/// An engine with test limits over a fresh temp dir, signing with
/// `[seed; 32]`.
pub fn engine(seed: u8) -> Engine {
    Host::temp(Limits::Test).spawn(key(seed))
}

/// An engine with test limits over the data in `dir`, which outlives it.
pub fn engine_at(dir: &Path, seed: u8) -> Engine {
    Host::at(dir, Limits::Test).spawn(key(seed))
}

/// An engine over a fresh temp dir whose runtime pools only `n` instances.
pub fn engine_with_instances(seed: u8, n: u32) -> Engine {
    engine_with_runtime(seed, |r| RuntimeConfig {
        max_instances: n,
        ..r
    })
}

/// An engine over a fresh temp dir whose runtime settings are the test
/// limits changed by `change` (a smaller budget, say).
pub fn engine_with_runtime(
    seed: u8,
    change: impl FnOnce(RuntimeConfig) -> RuntimeConfig,
) -> Engine {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = change(Limits::Test.runtime(tmp.path()));
    let mut host = Host::open(tmp.path(), runtime, &Limits::Test.store());
    host.tmp = Some(tmp);
    host.spawn(key(seed))
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

impl Engine {
    pub(super) fn new(host: Host, exec: Executor) -> Engine {
        Engine {
            dir: host.dir,
            store: host.store,
            runtime: host.runtime,
            exec,
            _tmp: host.tmp,
        }
    }

    /// Installs the component at `path` (a fixture's); returns its hash.
    pub async fn install(&self, path: &str) -> Hash {
        self.install_bytes(&std::fs::read(path).unwrap(), path)
            .await
    }

    /// Installs a component given by its bytes.
    pub async fn install_bytes(&self, bytes: &[u8], source: &str) -> Hash {
        super::host::install(&self.store, &self.runtime, bytes, source).await
    }

    /// Creates context `[id; 32]` running the installed component `blob`.
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

    /// Calls `method` of `ctx` with `args`.
    pub async fn call(
        &self,
        ctx: &ContextId,
        method: &str,
        args: serde_json::Value,
    ) -> Result<CallOutcome, ExecError> {
        self.exec.call(ctx, method, args.to_string()).await
    }

    /// Calls `method`, which must succeed; returns its output.
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

    /// `ctx`'s root hash in the store.
    pub fn root(&self, ctx: &ContextId) -> Hash {
        self.store.snapshot().unwrap().root_hash(ctx).unwrap()
    }

    /// How many write transactions the executor has committed.
    pub fn commits(&self) -> u64 {
        self.exec.stats().commits.load(Ordering::Relaxed)
    }

    /// Fills the map at the root under `field` of `ctx` with `n` keys
    /// `key-00000000`, `key-00000001`, ... whose registers hold `value(i)`
    /// (JSON), through signed deltas of another author: far faster than
    /// `n` calls, for benches over large states.
    pub async fn prefill(&self, ctx: ContextId, field: &str, n: usize, value: fn(usize) -> String) {
        let key = SigningKey::from_bytes(&[9; 32]);
        let author = Author(key.verifying_key().to_bytes());
        let mut clock = Clock::starting_after(Hlc {
            millis: mero_crdt::hlc::wall_millis(),
            counter: 0,
        });
        let mut done = 0;
        while done < n {
            let snap = self.store.snapshot().unwrap();
            // Ops are written under the layout the context runs.
            let layout = snap.context_meta(&ctx).unwrap().unwrap().state_version;
            let mut overlay = Overlay::new(snap.context(ctx));
            let mut ops = Vec::new();
            let mut m = Mutator::new(
                &mut overlay,
                author,
                &mut clock,
                mero_crdt::hlc::wall_millis(),
                &mut ops,
            );
            let end = (done + 20_000).min(n);
            for i in done..end {
                m.put_register(
                    &NodeId::root(field),
                    prefill_key(i).as_bytes(),
                    value(i).into_bytes(),
                )
                .unwrap();
            }
            let delta = Delta {
                version: 1,
                context: ctx,
                author,
                parents: snap.heads(&ctx).unwrap(),
                governance: Vec::new(),
                layout,
                hlc: clock.tick(mero_crdt::hlc::wall_millis()),
                ops,
                events: vec![],
            };
            drop(snap);
            self.exec
                .apply_delta(SignedDelta::sign(delta, &key))
                .await
                .unwrap();
            done = end;
        }
    }
}

/// The `i`th key [`Engine::prefill`] writes.
pub fn prefill_key(i: usize) -> String {
    format!("key-{i:08}")
}
