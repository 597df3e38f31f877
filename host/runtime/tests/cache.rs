//! The compile cache: a component is compiled once, and a fresh runtime
//! over the same directory (a restarted node) loads the artifact instead of
//! compiling again; an unusable artifact is replaced.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::path::{Path, PathBuf};

use mero_runtime::Runtime;
use mero_testkit::engine::Limits;

fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_component_is_compiled_once_then_loaded_from_its_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = mero_fixtures::KV_STORE_BYTES;

    let first = Runtime::new(Limits::Defaults.runtime(tmp.path())).unwrap();
    let cold = first.load(bytes).await.unwrap();
    let written = artifacts(tmp.path());
    assert_eq!(written.len(), 1, "one artifact per component: {written:?}");
    let modified = std::fs::metadata(&written[0]).unwrap().modified().unwrap();

    // A restarted node: a new runtime over the same directory.
    let second = Runtime::new(Limits::Defaults.runtime(tmp.path())).unwrap();
    let cached = second.load(bytes).await.unwrap();
    assert_eq!(cached.description(), cold.description());
    assert_eq!(artifacts(tmp.path()), written, "nothing compiled again");
    assert_eq!(
        std::fs::metadata(&written[0]).unwrap().modified().unwrap(),
        modified,
        "the artifact was read, not rewritten"
    );

    // An artifact that does not load is discarded and the component
    // compiled again. (Replaced by a rename, as the cache writes: the
    // runtimes above still map the old file, and truncating a mapped file
    // under them would fault.)
    let described = cold.description().clone();
    drop((cold, cached, first, second));
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, b"not an artifact").unwrap();
    std::fs::rename(&bad, &written[0]).unwrap();
    let third = Runtime::new(Limits::Defaults.runtime(tmp.path())).unwrap();
    let recompiled = third.load(bytes).await.unwrap();
    assert_eq!(recompiled.description(), &described);
    assert!(std::fs::metadata(&written[0]).unwrap().len() > 1000);
}
