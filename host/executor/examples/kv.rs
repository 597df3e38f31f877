//! Runs the bundled kv-store through the engine: an LMDB store in a temp
//! dir, the wasmtime runtime and the executor, with no node around them,
//! set up as the executor's tests set theirs up (`mero_testkit::engine`),
//! with the runtime's default limits.
//!
//! `cargo run -p mero-executor --example kv -- [KEY VALUE]...`

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use mero_testkit::engine::{Host, Limits};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pairs: Vec<String> = std::env::args().skip(1).collect();
    let pairs = if pairs.is_empty() {
        vec!["greeting".into(), "hello".into()]
    } else {
        pairs
    };
    let engine = Host::temp(Limits::Defaults).spawn(SigningKey::from_bytes(&rand::random()));
    let blob = engine.install(mero_fixtures::KV_STORE).await;
    let app = engine
        .runtime
        .loaded(&blob)
        .context("the kv-store component was not loaded")?;
    println!(
        "loaded kv-store ({} bytes): {:?}",
        mero_fixtures::KV_STORE_BYTES.len(),
        app.description().methods
    );

    let ctx = engine.create(blob, 1, "").await?;
    println!("context {}", hex::encode(ctx.0));
    for kv in pairs.chunks(2) {
        let (k, v) = (&kv[0], kv.get(1).map_or("", String::as_str));
        let out = engine
            .call(&ctx, "set", serde_json::json!({"key": k, "value": v}))
            .await?;
        println!(
            "set {k}={v}: events {:?}, root {}",
            out.events.iter().map(|e| &e.kind).collect::<Vec<_>>(),
            hex::encode(out.root_hash)
        );
    }
    let out = engine.call(&ctx, "entries", serde_json::json!({})).await?;
    println!("entries: {}", out.output);
    Ok(())
}
