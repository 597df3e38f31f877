//! The engine, the component cache and running one call.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash as _, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mero_crdt::Hash;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder,
    Trap, UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::bindings::{self, AppError, ContextApp, ContextAppPre, StorageError};
use crate::config::{EPOCH_TICK, RuntimeConfig};
use crate::error::{CallError, LoadError};
use crate::host::{CallEnv, HostState, Mode};

const STDERR_CAPTURE: usize = 16 << 10;

/// Whether a method may write. Declared by the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// A view.
    ReadOnly,
    /// Changes state.
    Mutating,
}

/// One field of an app's state: its root name and declared collection type.
pub type Field = (String, String);

/// A migration an app can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The state version it reads.
    pub from_version: u32,
    /// The method that runs it.
    pub method: String,
    /// The layout of the state it reads.
    pub reads: Vec<Field>,
    /// Whether the app checks it with `check-migration`.
    pub checked: bool,
}

/// What an app says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppDescription {
    /// The package every version of the app shares.
    pub package: String,
    /// This build's version.
    pub version: String,
    /// Methods and their intent.
    pub methods: BTreeMap<String, Intent>,
    /// The state layout version the app reads and writes.
    pub state_version: u32,
    /// That layout, field by field, in declaration order.
    pub schema: Vec<Field>,
    /// Migrations it can run.
    pub migrations: Vec<Migration>,
}

impl AppDescription {
    /// The migration from state version `from`, if the app has one.
    pub fn migration_from(&self, from: u32) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.from_version == from)
    }
}

/// A loaded app: a validated, compiled component ready to instantiate.
pub struct App {
    hash: Hash,
    pre: ContextAppPre<HostState>,
    description: AppDescription,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("hash", &hex::encode(self.hash))
            .field("description", &self.description)
            .finish()
    }
}

impl App {
    /// SHA-256 of the component bytes.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// What the app declares.
    pub fn description(&self) -> &AppDescription {
        &self.description
    }

    /// The declared intent of `method`, if the app has it.
    pub fn intent(&self, method: &str) -> Option<Intent> {
        self.description.methods.get(method).copied()
    }
}

enum Invoke {
    Describe,
    Init(String),
    Call(String, String),
    Migrate(u32),
    CheckMigration(u32),
}

enum Raw {
    Info(bindings::AppInfo),
    Output(String),
    Done,
}

/// Stops the epoch thread when the runtime goes away.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The wasm engine with everything needed to load apps and run calls.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: Arc<RuntimeConfig>,
    compat: String,
    apps: Mutex<HashMap<Hash, Arc<App>>>,
    instances: Arc<Semaphore>,
    /// The blob store calls read blobs through, once the node offers one.
    blobs: std::sync::OnceLock<Arc<dyn crate::host::Blobs>>,
    chain_identities: std::sync::OnceLock<Arc<dyn crate::host::ChainIdentities>>,
    _ticker: Ticker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Bytes of each pooled slot kept mapped between calls (see above).
const KEEP_RESIDENT: usize = 2 << 20;

fn chain(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}

impl Runtime {
    /// A runtime with `config`.
    pub fn new(config: RuntimeConfig) -> Result<Arc<Runtime>, LoadError> {
        let host = |e: wasmtime::Error| LoadError::Host(chain(&e));
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 4)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memory_size(config.max_memory_bytes)
            // Reset a finished instance by zeroing the pages it touched
            // rather than unmapping them: no page faults on the next call
            // and no TLB shootdowns across the worker threads.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 16)
            .async_stack_keep_resident(KEEP_RESIDENT / 4);
        let mut cfg = Config::new();
        cfg.wasm_component_model(true)
            .epoch_interruption(config.fuel.is_none())
            .consume_fuel(config.fuel.is_some())
            .cranelift_nan_canonicalization(config.fuel.is_some())
            .max_wasm_stack(config.max_stack_bytes)
            .async_stack_size(config.max_stack_bytes + (1 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg).map_err(host)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(host)?;
        ContextApp::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(host)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = format!("{:016x}", hasher.finish());

        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| LoadError::Host(format!("{}: {e}", dir.display())))?;
        }

        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        // A fuel-metered runtime has no deadlines to tick.
        let thread = if config.fuel.is_some() {
            None
        } else {
            let thread = std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        match weak.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| LoadError::Host(format!("epoch thread: {e}")))?;
            Some(thread)
        };

        Ok(Arc::new(Runtime {
            engine,
            linker,
            instances: Arc::new(Semaphore::new(n as usize)),
            config: Arc::new(config),
            compat,
            apps: Mutex::new(HashMap::new()),
            blobs: std::sync::OnceLock::new(),
            chain_identities: std::sync::OnceLock::new(),
            _ticker: Ticker { stop, thread },
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Offers `blobs` to the apps' calls (the `blobs` interface); until
    /// then, and on a runtime never offered one, its functions fail with a
    /// storage error. Set once: false if a store was offered already.
    pub fn offer_blobs(&self, blobs: Arc<dyn crate::host::Blobs>) -> bool {
        self.blobs.set(blobs).is_ok()
    }

    /// Offers the members' chain identities to the apps' calls
    /// (`context.chain-identities`); until then they read an empty list.
    /// Set once: false if a source was offered already.
    pub fn offer_chain_identities(&self, source: Arc<dyn crate::host::ChainIdentities>) -> bool {
        self.chain_identities.set(source).is_ok()
    }

    /// A loaded app by content hash, if it is loaded.
    pub fn loaded(&self, hash: &Hash) -> Option<Arc<App>> {
        self.apps.lock().ok().and_then(|m| m.get(hash).cloned())
    }

    /// Validates, compiles (or loads the cached artifact of) and describes a
    /// component. Loading the same bytes again is free.
    pub async fn load(self: &Arc<Self>, bytes: &[u8]) -> Result<Arc<App>, LoadError> {
        let hash: Hash = Sha256::digest(bytes).into();
        if let Some(app) = self.loaded(&hash) {
            return Ok(app);
        }
        let this = self.clone();
        let owned = bytes.to_vec();
        let component = tokio::task::spawn_blocking(move || this.compile(&hash, &owned))
            .await
            .map_err(|e| LoadError::Host(e.to_string()))??;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Invalid(chain(&e)))?;
        let pre = ContextAppPre::new(pre).map_err(|e| {
            LoadError::Invalid(format!(
                "it does not export calimero:context/app@0.1.0: {}",
                chain(&e)
            ))
        })?;
        let mut app = App {
            hash,
            pre,
            description: AppDescription::default(),
        };
        let (_, described) = self
            .run(&app, CallEnv::describe(), Mode::Describe, Invoke::Describe)
            .await;
        let info = match described {
            Ok(Raw::Info(info)) => info,
            Ok(_) => return Err(LoadError::Host("describe returned no description".into())),
            Err(e) => return Err(LoadError::Invalid(format!("describe failed: {e}"))),
        };
        let fields = |fs: Vec<bindings::FieldInfo>| -> Vec<Field> {
            fs.into_iter().map(|f| (f.name, f.kind)).collect()
        };
        app.description = AppDescription {
            package: info.package,
            version: info.version,
            schema: fields(info.schema),
            methods: info
                .methods
                .into_iter()
                .map(|m| {
                    let intent = match m.intent {
                        bindings::Intent::ReadOnly => Intent::ReadOnly,
                        bindings::Intent::Mutating => Intent::Mutating,
                    };
                    (m.name, intent)
                })
                .collect(),
            state_version: info.state_version,
            migrations: info
                .migrations
                .into_iter()
                .map(|m| Migration {
                    from_version: m.from_version,
                    method: m.method,
                    reads: fields(m.reads),
                    checked: m.checked,
                })
                .collect(),
        };
        let app = Arc::new(app);
        if let Ok(mut apps) = self.apps.lock() {
            apps.insert(hash, app.clone());
        }
        Ok(app)
    }

    fn cache_path(&self, dir: &Path, hash: &Hash) -> PathBuf {
        dir.join(format!("{}-{}.cwasm", hex::encode(hash), self.compat))
    }

    fn compile(&self, hash: &Hash, bytes: &[u8]) -> Result<Component, LoadError> {
        let dir = self.config.cache_dir.clone();
        if let Some(dir) = &dir {
            let path = self.cache_path(dir, hash);
            if path.exists() {
                // SAFETY: the artifact was produced by `Component::serialize`
                // of this engine configuration (its file name carries the
                // engine's compatibility hash) and lives in the node's own
                // data directory.
                #[allow(unsafe_code)]
                match unsafe { Component::deserialize_file(&self.engine, &path) } {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %chain(&e), "discarding unusable compiled component");
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        let mut component =
            Component::new(&self.engine, bytes).map_err(|e| LoadError::Invalid(chain(&e)))?;
        if let Some(dir) = &dir {
            let path = self.cache_path(dir, hash);
            let stored = component
                .serialize()
                .map_err(|e| e.to_string())
                .and_then(|art| {
                    // A file of its own per writer, renamed into place
                    // whole: a runtime maps the artifact it loads, and a
                    // mapped file must never change under it (two loads of
                    // the same bytes may race here).
                    static SEQ: AtomicU64 = AtomicU64::new(0);
                    let n = SEQ.fetch_add(1, Ordering::Relaxed);
                    let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
                    std::fs::write(&tmp, art)
                        .and_then(|()| std::fs::rename(&tmp, &path))
                        .map_err(|e| e.to_string())
                });
            match stored {
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot cache compiled component");
                }
                // Run from the artifact just written, as a restarted node
                // does: its code is then mapped from the file (shared with
                // the page cache) instead of held in private memory.
                // SAFETY: as above; this engine serialized it just now.
                #[allow(unsafe_code)]
                Ok(()) => match unsafe { Component::deserialize_file(&self.engine, &path) } {
                    Ok(c) => component = c,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %chain(&e), "cannot reload compiled component");
                    }
                },
            }
        }
        // Cranelift's scratch memory (some 300 MiB for an 18 MB Python
        // component) would otherwise stay in the compile threads' arenas.
        mero_store::release_free_memory();
        Ok(component)
    }

    /// Runs `init(args_json)` on `env`.
    pub async fn init(
        &self,
        app: &App,
        env: CallEnv,
        args_json: String,
    ) -> (CallEnv, Result<(), CallError>) {
        let (env, r) = self
            .run(app, env, Mode::Mutating, Invoke::Init(args_json))
            .await;
        (env, r.map(|_| ()))
    }

    /// Runs `migrate(from_version)` on `env`: the app's code against state
    /// written by another version. Nothing is committed here; the caller
    /// decides what to do with the overlay, which must have been empty
    /// (frozen handles read the layer under it).
    pub async fn migrate(
        &self,
        app: &App,
        env: CallEnv,
        from_version: u32,
    ) -> (CallEnv, Result<(), CallError>) {
        let (env, r) = self
            .run(app, env, Mode::Mutating, Invoke::Migrate(from_version))
            .await;
        (env, r.map(|_| ()))
    }

    /// Runs `check-migration(from_version)` read-only on the `env` a
    /// [`migrate`](Self::migrate) handed back: the app compares the staged
    /// state with the frozen one. An error means the migration is refused.
    pub async fn check_migration(
        &self,
        app: &App,
        env: CallEnv,
        from_version: u32,
    ) -> (CallEnv, Result<(), CallError>) {
        let mode = Mode::ReadOnly("check-migration".into());
        let (env, r) = self
            .run(app, env, mode, Invoke::CheckMigration(from_version))
            .await;
        (env, r.map(|_| ()))
    }

    /// Runs `method` with `args_json` on `env`, read-only if the app declares
    /// the method a view. Returns the method's JSON result.
    pub async fn call(
        &self,
        app: &App,
        env: CallEnv,
        method: &str,
        args_json: String,
    ) -> (CallEnv, Result<serde_json::Value, CallError>) {
        let mode = match app.intent(method) {
            None => return (env, Err(CallError::UnknownMethod(method.to_string()))),
            Some(Intent::ReadOnly) => Mode::ReadOnly(method.to_string()),
            Some(Intent::Mutating) => Mode::Mutating,
        };
        let (env, r) = self
            .run(app, env, mode, Invoke::Call(method.to_string(), args_json))
            .await;
        let r = r.and_then(|raw| match raw {
            Raw::Output(json) => {
                serde_json::from_str(&json).map_err(|e| CallError::InvalidOutput(e.to_string()))
            }
            _ => Ok(serde_json::Value::Null),
        });
        (env, r)
    }

    /// Instantiates `app` in a fresh store and drops it: the fixed cost of a
    /// call, for benchmarks.
    #[doc(hidden)]
    pub async fn instantiate_only(&self, app: &App) -> Result<(), CallError> {
        let wasi = WasiCtxBuilder::new().build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().build(),
            env: CallEnv::describe(),
            mode: Mode::Describe,
            migration: false,
            state_version: 0,
            config: self.config.clone(),
            blobs: None,
            chain_identities: None,
            blob_read: 0,
            deadline: None,
        };
        let mut store = Store::new(&self.engine, state);
        arm(&mut store, &self.config, 1000)?;
        app.pre
            .instantiate_async(&mut store)
            .await
            .map(drop)
            .map_err(|e| CallError::Host(chain(&e)))
    }

    async fn run(
        &self,
        app: &App,
        env: CallEnv,
        mode: Mode,
        invoke: Invoke,
    ) -> (CallEnv, Result<Raw, CallError>) {
        let Ok(permit) = self.instances.clone().acquire_owned().await else {
            return (env, Err(CallError::Host("runtime is shutting down".into())));
        };
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        if self.config.fuel.is_some() {
            deterministic_wasi(&mut wasi, &env);
        }
        let wasi = wasi.build();
        let migration = matches!(invoke, Invoke::Migrate(_) | Invoke::CheckMigration(_));
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.config.max_memory_bytes)
            .table_elements(1 << 20)
            .trap_on_grow_failure(true)
            .build();
        let method = match &invoke {
            Invoke::Call(m, _) => m.clone(),
            Invoke::Init(_) => "init".into(),
            Invoke::Migrate(_) => "migrate".into(),
            Invoke::CheckMigration(_) => "check-migration".into(),
            Invoke::Describe => "describe".into(),
        };
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            env,
            mode,
            migration,
            state_version: app.description.state_version,
            config: self.config.clone(),
            blobs: self.blobs.get().cloned(),
            chain_identities: self.chain_identities.get().cloned(),
            blob_read: 0,
            // None past the end of time (a huge configured timeout).
            deadline: match self.config.fuel {
                Some(_) => None,
                None => std::time::Instant::now().checked_add(self.config.call_timeout),
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let timeout = self.config.call_timeout;
        let ticks = (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        if let Err(e) = arm(&mut store, &self.config, ticks) {
            let env = std::mem::replace(&mut store.data_mut().env, CallEnv::describe());
            retire(store, permit);
            return (env, Err(e));
        }

        let outcome = invoke_app(&app.pre, &mut store, invoke).await;
        let mut env = std::mem::replace(&mut store.data_mut().env, CallEnv::describe());
        retire(store, permit);
        let result = match outcome {
            Err(e) => Err(classify(
                &e,
                &stderr.contents(),
                timeout.as_millis() as u64,
                self.config.fuel,
                env.host_failure.take(),
            )),
            Ok(Err(app_error)) => Err(from_app_error(app_error, &method)),
            Ok(Ok(raw)) => Ok(raw),
        };
        // A write from a view or a blown budget fails the call even if the
        // app swallowed the error it got.
        match env.sticky.take() {
            Some(violation) => (env, Err(violation)),
            None => (env, result),
        }
    }
}

/// Drops a finished call's store, which returns its instance to the pool.
/// That reset (a page-table scan and zeroing what the guest dirtied) costs
/// several µs, so on a runtime it runs as a task of its own: after the
/// current one yields, i.e. once the caller has its answer. The permit goes
/// with it, so the pool is never asked for more instances than it has.
fn retire(store: Store<HostState>, permit: OwnedSemaphorePermit) {
    let reset = move || {
        drop(store);
        drop(permit);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn(async move { reset() })),
        Err(_) => reset(),
    }
}

async fn invoke_app(
    pre: &ContextAppPre<HostState>,
    store: &mut Store<HostState>,
    invoke: Invoke,
) -> wasmtime::Result<Result<Raw, AppError>> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let app = instance.calimero_context_app();
    Ok(match invoke {
        Invoke::Describe => Ok(Raw::Info(app.call_describe(&mut *store).await?)),
        Invoke::Init(args) => app.call_init(&mut *store, &args).await?.map(|()| Raw::Done),
        Invoke::Call(method, args) => app
            .call_call(&mut *store, &method, &args)
            .await?
            .map(Raw::Output),
        Invoke::Migrate(from) => app
            .call_migrate(&mut *store, from)
            .await?
            .map(|()| Raw::Done),
        Invoke::CheckMigration(from) => app
            .call_check_migration(&mut *store, from)
            .await?
            .map(|()| Raw::Done),
    })
}

/// Arms a store's budget: fuel on a deterministic runtime, else an epoch
/// deadline of `ticks`. A call still running at a tick yields to the
/// async runtime there, so a guest that loops until its deadline holds no
/// runtime thread (nor the tasks queued on it) for longer than a tick.
fn arm(store: &mut Store<HostState>, config: &RuntimeConfig, ticks: u64) -> Result<(), CallError> {
    match config.fuel {
        Some(fuel) => store.set_fuel(fuel).map_err(|e| CallError::Host(chain(&e))),
        None => {
            let mut left = ticks;
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                left = left.saturating_sub(1);
                if left == 0 {
                    Err(Trap::Interrupt.into())
                } else {
                    Ok(UpdateDeadline::Yield(1))
                }
            });
            Ok(())
        }
    }
}

/// A clock stopped at one instant: what a deterministic call reads.
struct Stopped(std::time::Duration);

impl wasmtime_wasi::HostWallClock for Stopped {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }
    fn now(&self) -> std::time::Duration {
        self.0
    }
}

impl wasmtime_wasi::HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.0.as_nanos() as u64
    }
}

/// WASI that reads the same on every node for the same call: clocks at the
/// call's time, randomness seeded from the context and that time.
fn deterministic_wasi(wasi: &mut WasiCtxBuilder, env: &CallEnv) {
    let at = std::time::Duration::from_millis(env.wall_millis);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&env.ctx.0[..8]);
    let seed = u64::from_le_bytes(seed) ^ env.wall_millis;
    wasi.wall_clock(Stopped(at))
        .monotonic_clock(Stopped(at))
        .secure_random(rand_pcg::Pcg32::new(seed, 1))
        .insecure_random(rand_pcg::Pcg32::new(seed, 2))
        .insecure_random_seed(u128::from(seed));
}

fn from_app_error(e: AppError, method: &str) -> CallError {
    match e {
        AppError::UnknownMethod(m) => CallError::UnknownMethod(m),
        AppError::InvalidArguments(m) => CallError::InvalidArguments(m),
        AppError::Failed(json) => {
            CallError::App(serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json)))
        }
        AppError::Storage(s) => match s {
            StorageError::ReadOnly => CallError::ReadOnly(method.to_string()),
            StorageError::TooLarge(m) => CallError::TooLarge(m),
            StorageError::LimitExceeded(m) => CallError::LimitExceeded(m),
            StorageError::OutOfRange(m) => CallError::OutOfRange(m),
            StorageError::NotOwner(m) => CallError::NotOwner(m),
            StorageError::Other(m) => CallError::Storage(m),
        },
    }
}

/// Names a trap for humans, using what the guest wrote to stderr.
fn classify(
    e: &wasmtime::Error,
    stderr: &[u8],
    timeout_ms: u64,
    fuel: Option<u64>,
    host_failure: Option<String>,
) -> CallError {
    if let Some(h) = host_failure {
        return CallError::Host(h);
    }
    let guest_said = String::from_utf8_lossy(stderr);
    let trap = e.downcast_ref::<Trap>();
    match trap {
        Some(Trap::Interrupt) => return CallError::DeadlineExceeded(timeout_ms),
        Some(Trap::OutOfFuel) => return CallError::OutOfFuel(fuel.unwrap_or_default()),
        Some(Trap::StackOverflow) => return CallError::Trapped("stack overflow".into()),
        _ => {}
    }
    let root = e.root_cause().to_string();
    if let Some(at) = root.find("forcing trap when growing memory to ") {
        let wanted = root[at..].trim_start_matches("forcing trap when growing memory to ");
        return CallError::OutOfMemory(format!("it tried to grow its memory to {wanted}"));
    }
    if let Some(line) = guest_said
        .lines()
        .find(|l| l.contains("memory allocation of"))
    {
        return CallError::OutOfMemory(line.trim().to_string());
    }
    if let Some(at) = guest_said.find("panicked at") {
        let mut lines = guest_said[at..].lines();
        let place = lines.next().unwrap_or_default().trim_end_matches(':');
        let message = lines.next().unwrap_or_default();
        return CallError::Trapped(format!("{place}: {message}"));
    }
    match trap {
        Some(t) => CallError::Trapped(t.to_string()),
        None => CallError::Trapped(root),
    }
}
