//! The `blobs` host functions through a real guest (the task board's
//! attachments) over a blob store of the test's own: what a call reads and
//! makes, and their bounds. Nothing a guest passes can trap the host: an
//! unknown blob is `null`, a bad offset or an unavailable blob a storage
//! error, a read past the budget fails the call, and a fetch that does not
//! finish gives up before the call's deadline.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mero_crdt::ContextId;
use mero_runtime::{BlobError, BlobFuture, Blobs, CallError, MAX_BLOB_READ, RuntimeConfig};
use mero_testkit::engine::{CALL_TIMEOUT_MS, Engine, call_err, engine, engine_with_runtime};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Blobs in memory; `SLOW` never arrives (as a fetch from a member that
/// does not answer), after waiting as long as the call lets it.
#[derive(Default)]
struct Memory {
    blobs: Mutex<HashMap<[u8; 32], Vec<u8>>>,
    /// The longest wait a call was given.
    waited: Mutex<Duration>,
}

const SLOW: [u8; 32] = [9; 32];

impl Memory {
    fn put(&self, bytes: &[u8]) -> [u8; 32] {
        let id: [u8; 32] = Sha256::digest(bytes).into();
        self.blobs.lock().unwrap().insert(id, bytes.to_vec());
        id
    }

    async fn fetch(&self, id: [u8; 32], wait: Duration) -> Result<Option<Vec<u8>>, BlobError> {
        if id == SLOW {
            *self.waited.lock().unwrap() = wait;
            tokio::time::sleep(wait).await;
            return Err(BlobError::Unavailable("still being fetched".into()));
        }
        Ok(self.blobs.lock().unwrap().get(&id).cloned())
    }
}

impl Blobs for Memory {
    fn size(&self, _: ContextId, id: [u8; 32], wait: Duration) -> BlobFuture<'_, Option<u64>> {
        Box::pin(async move { Ok(self.fetch(id, wait).await?.map(|b| b.len() as u64)) })
    }

    fn read(
        &self,
        _: ContextId,
        id: [u8; 32],
        offset: u64,
        len: u32,
        wait: Duration,
    ) -> BlobFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let Some(bytes) = self.fetch(id, wait).await? else {
                return Ok(None);
            };
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            if start > bytes.len() {
                return Err(BlobError::OutOfRange(format!(
                    "offset {offset} past the end"
                )));
            }
            let end = bytes.len().min(start + len as usize);
            Ok(Some(bytes[start..end].to_vec()))
        })
    }

    fn create(&self, _: ContextId, data: Vec<u8>) -> BlobFuture<'_, [u8; 32]> {
        Box::pin(async move { Ok(self.put(&data)) })
    }
}

fn b58(id: &[u8; 32]) -> String {
    bs58::encode(id).into_string()
}

async fn board(e: &Engine, blobs: Option<Arc<Memory>>) -> ContextId {
    if let Some(b) = blobs {
        assert!(e.runtime.offer_blobs(b));
    }
    let app = e.install(mero_fixtures::TASK_BOARD).await;
    let ctx = e.create(app, 1, r#"{"title":"b"}"#).await.unwrap();
    e.ok(
        &ctx,
        "add_task",
        json!({"id": "t1", "title": "x", "column": "todo"}),
    )
    .await;
    ctx
}

#[tokio::test]
async fn a_call_reads_and_makes_blobs_within_bounds() {
    let e = engine(61);
    let blobs = Arc::new(Memory::default());
    let ctx = board(&e, Some(blobs.clone())).await;

    // Made by a mutating call: stored, its id (base58) in the state.
    let id = e
        .ok(
            &ctx,
            "attach_text",
            json!({"id": "t1", "text": "hello blob"}),
        )
        .await;
    let raw: [u8; 32] = Sha256::digest(b"hello blob").into();
    assert_eq!(id, json!(b58(&raw)));
    assert_eq!(blobs.blobs.lock().unwrap()[&raw], b"hello blob");
    let got = e.ok(&ctx, "attachment", json!({"id": "t1"})).await;
    assert_eq!(
        got,
        json!({"blob": b58(&raw), "size": 10, "text": "hello blob"})
    );

    // Larger than one read: read_all reads on; one read is capped.
    let big: Vec<u8> = (0..(MAX_BLOB_READ as usize * 2 + 100))
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let big_id = blobs.put(&big);
    e.ok(&ctx, "attach", json!({"id": "t1", "blob": b58(&big_id)}))
        .await;
    let got = e.ok(&ctx, "attachment", json!({"id": "t1"})).await;
    assert_eq!(got["size"], big.len());
    assert!(got["text"].as_str().unwrap().as_bytes() == big.as_slice());
    let one = e
        .ok(
            &ctx,
            "read_blob",
            json!({"blob": b58(&big_id), "offset": 0, "len": u32::MAX}),
        )
        .await;
    assert_eq!(one.as_array().unwrap().len(), MAX_BLOB_READ as usize);
    // At the end: nothing left; past it: out of range, not a trap.
    let end = big.len() as u64;
    let none = e
        .ok(
            &ctx,
            "read_blob",
            json!({"blob": b58(&big_id), "offset": end, "len": 10}),
        )
        .await;
    assert_eq!(none, json!([]));
    let err = call_err(
        e.call(
            &ctx,
            "read_blob",
            json!({"blob": b58(&big_id), "offset": end + 1, "len": 10}),
        )
        .await,
    );
    assert!(matches!(&err, CallError::OutOfRange(_)), "{err:?}");

    // Unknown: null, for size and read.
    let unknown = b58(&[1; 32]);
    assert_eq!(
        e.ok(&ctx, "blob_size", json!({"blob": unknown})).await,
        json!(null)
    );
    assert_eq!(
        e.ok(
            &ctx,
            "read_blob",
            json!({"blob": unknown, "offset": 0, "len": 1})
        )
        .await,
        json!(null)
    );
    // Not an id: refused as arguments.
    let err = call_err(e.call(&ctx, "blob_size", json!({"blob": "0OIl"})).await);
    assert!(matches!(&err, CallError::InvalidArguments(_)), "{err:?}");
    let err = call_err(e.call(&ctx, "blob_size", json!({"blob": "abc"})).await);
    assert!(
        matches!(&err, CallError::InvalidArguments(m) if m.contains("32 bytes")),
        "{err:?}"
    );

    // A fetch that does not finish: the call gets an error before its
    // deadline, and was never given longer than it has.
    let t = Instant::now();
    let err = call_err(e.call(&ctx, "blob_size", json!({"blob": b58(&SLOW)})).await);
    assert!(
        matches!(&err, CallError::Storage(m) if m.contains("being fetched")),
        "{err:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(CALL_TIMEOUT_MS),
        "{:?}",
        t.elapsed()
    );
    let waited = *blobs.waited.lock().unwrap();
    assert!(
        waited > Duration::ZERO && waited < Duration::from_millis(CALL_TIMEOUT_MS),
        "{waited:?}"
    );
}

#[tokio::test]
async fn reads_past_the_budget_fail_the_call() {
    let e = engine_with_runtime(62, |r| RuntimeConfig {
        max_blob_bytes_read_per_call: 1000,
        ..r
    });
    let blobs = Arc::new(Memory::default());
    let ctx = board(&e, Some(blobs.clone())).await;
    let small = blobs.put(&[b'x'; 600]);
    e.ok(&ctx, "attach", json!({"id": "t1", "blob": b58(&small)}))
        .await;
    // One read of 600: within.
    e.ok(&ctx, "attachment", json!({"id": "t1"})).await;
    let big = blobs.put(&[b'y'; 1500]);
    e.ok(&ctx, "attach", json!({"id": "t1", "blob": b58(&big)}))
        .await;
    let err = call_err(e.call(&ctx, "attachment", json!({"id": "t1"})).await);
    assert!(
        matches!(&err, CallError::LimitExceeded(m) if m.contains("blob bytes read")),
        "{err:?}"
    );
}

#[tokio::test]
async fn without_a_blob_store_calls_get_an_error_not_a_trap() {
    let e = engine(63);
    let ctx = board(&e, None).await;
    let err = call_err(
        e.call(&ctx, "attach_text", json!({"id": "t1", "text": "x"}))
            .await,
    );
    assert!(
        matches!(&err, CallError::Storage(m) if m.contains("no blob store")),
        "{err:?}"
    );
    let err = call_err(
        e.call(&ctx, "blob_size", json!({"blob": b58(&[1; 32])}))
            .await,
    );
    assert!(matches!(&err, CallError::Storage(_)), "{err:?}");
}
