//! Runs the bundled kv-store through the engine: an LMDB store in a temp
//! dir, the wasmtime runtime and the executor, with no node around them.
//!
//! `cargo run -p mero-executor --example kv -- [KEY VALUE]...`

use std::sync::Arc;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use mero_executor::{Executor, NewContext};
use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::{Store, StoreConfig};
use sha2::{Digest, Sha256};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pairs: Vec<String> = std::env::args().skip(1).collect();
    let pairs = if pairs.is_empty() {
        vec!["greeting".into(), "hello".into()]
    } else {
        pairs
    };
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("db"), &StoreConfig::default())?;
    let runtime: Arc<Runtime> = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("compiled")),
        ..Default::default()
    })?;
    let exec = Executor::spawn(
        runtime.clone(),
        store.clone(),
        SigningKey::from_bytes(&rand::random()),
    )?;

    let bytes = std::fs::read(mero_fixtures::KV_STORE).context("the kv-store component")?;
    let blob: [u8; 32] = Sha256::digest(&bytes).into();
    let app = runtime.load(&bytes).await?;
    println!(
        "loaded kv-store ({} bytes): {:?}",
        bytes.len(),
        app.description().methods
    );
    let mut w = store.write()?;
    w.put_blob(&blob, &bytes)?;
    w.commit()?;

    let ctx = exec
        .create_context(NewContext {
            id: ContextId(rand::random()),
            application: blob,
            blob,
            app_version: "0.1.0".into(),
            group: None,
            name: None,
            init_args: String::new(),
        })
        .await?
        .id;
    println!("context {}", hex::encode(ctx.0));
    for kv in pairs.chunks(2) {
        let (k, v) = (&kv[0], kv.get(1).map_or("", String::as_str));
        let out = exec
            .call(
                &ctx,
                "set",
                serde_json::json!({"key": k, "value": v}).to_string(),
            )
            .await?;
        println!(
            "set {k}={v}: events {:?}, root {}",
            out.events.iter().map(|e| &e.kind).collect::<Vec<_>>(),
            hex::encode(out.root_hash)
        );
    }
    let out = exec.call(&ctx, "entries", "{}".into()).await?;
    println!("entries: {}", out.output);
    Ok(())
}
