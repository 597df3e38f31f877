//! Loading components: what the runtime refuses, and why. Calls on loaded
//! components, through the executor, are tested in `mero-executor`.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_runtime::{LoadError, Runtime};
use mero_testkit::engine::Limits;

#[tokio::test]
async fn invalid_components_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Limits::Defaults.runtime(tmp.path())).unwrap();
    let garbage = runtime.load(b"definitely not wasm").await.unwrap_err();
    assert!(matches!(garbage, LoadError::Invalid(_)), "{garbage:?}");
    // A core module, not a component.
    let core = runtime.load(b"\0asm\x01\0\0\0").await.unwrap_err();
    assert!(matches!(core, LoadError::Invalid(_)), "{core:?}");
    // An empty component: valid, but implements nothing of ours.
    let empty = runtime.load(b"\0asm\x0d\0\x01\0").await.unwrap_err();
    assert!(
        matches!(&empty, LoadError::Invalid(m) if m.contains("calimero:context/app")),
        "{empty:?}"
    );
}
