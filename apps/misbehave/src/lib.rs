//! A hostile app for tests: it loops, allocates without bound, panics,
//! recurses, writes from views and swallows the errors. The node must fail
//! each such call cleanly and go on.

#![allow(clippy::panic, reason = "panicking on purpose is this fixture's job")]

use mero_sdk::app;
use mero_sdk::bindings::calimero::context::{events, storage};
use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap};

#[app::state]
pub struct Misbehave {
    values: UnorderedMap<String, LwwRegister<String>>,
    calls: Counter,
}

#[app::logic]
impl Misbehave {
    #[app::init]
    pub fn init() -> Misbehave {
        Misbehave {
            values: UnorderedMap::new(),
            calls: Counter::new(),
        }
    }

    /// A well-behaved write, to check the node still works afterwards.
    pub fn set(&mut self, key: String, value: String) -> app::Result<()> {
        self.values.insert_value(key, value)?;
        self.calls.increment(1)?;
        Ok(())
    }

    pub fn get(&self, key: &str) -> app::Result<Option<String>> {
        self.values.get_value(key)
    }

    /// Writes, then loops forever.
    pub fn spin(&mut self) -> app::Result<()> {
        self.values.insert_value("spin".into(), "started".into())?;
        let mut x: u64 = 1;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    /// Writes, then allocates `mib` MiB and touches it.
    pub fn alloc(&mut self, mib: u64) -> app::Result<u64> {
        self.values.insert_value("alloc".into(), "started".into())?;
        let mut v: Vec<u8> = Vec::new();
        let len = usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        v.resize(len, 7);
        Ok(v.iter().map(|b| u64::from(*b)).sum())
    }

    /// Writes, then panics.
    pub fn panic(&mut self, message: String) -> app::Result<()> {
        self.values.insert_value("panic".into(), "started".into())?;
        panic!("{message}");
    }

    /// Writes, then overflows the stack.
    pub fn recurse(&mut self, depth: u64) -> app::Result<u64> {
        self.values
            .insert_value("recurse".into(), "started".into())?;
        Ok(deep(depth))
    }

    /// Writes, then returns an error: the write must not land.
    pub fn fail(&mut self) -> app::Result<()> {
        self.values.insert_value("fail".into(), "started".into())?;
        app::bail!("failing on purpose")
    }

    /// A view that writes through the raw bindings and ignores the error.
    pub fn sneaky_write(&self) -> app::Result<String> {
        let _ = storage::Register::open("sneaky").set(b"1");
        Ok("wrote nothing, hopefully".into())
    }

    /// A view that emits an event and ignores the error.
    pub fn sneaky_emit(&self) -> app::Result<String> {
        let _ = events::emit("Sneaky", b"{}");
        Ok("emitted nothing, hopefully".into())
    }

    /// Writes, then emits `times` events through the raw binding, ignoring
    /// every error: a refused event must still fail the call.
    pub fn emit_raw(&mut self, kind: String, data: String, times: u64) -> app::Result<u64> {
        self.values.insert_value("emit".into(), "started".into())?;
        for _ in 0..times {
            let _ = events::emit(&kind, data.as_bytes());
        }
        Ok(times)
    }

    /// Handler of `Spin` events (`emit_raw` emits them), run by the nodes
    /// that receive them: it loops forever, as a hostile app's may.
    pub fn on_spin(&mut self) -> app::Result<()> {
        self.spin()
    }

    /// Logs `n` lines of `len` bytes each.
    pub fn log_many(&mut self, n: u64, len: u64) -> app::Result<u64> {
        let line = "l".repeat(usize::try_from(len).unwrap_or(usize::MAX));
        for _ in 0..n {
            mero_sdk::env::log(&line);
        }
        Ok(n)
    }

    /// Reads `from` and writes what it read to `to`: a mutating read, which
    /// sees the writes of the calls before it in its batch.
    pub fn copy(&mut self, from: String, to: String) -> app::Result<Option<String>> {
        let v = self.values.get_value(&from)?;
        self.values
            .insert_value(to, v.clone().unwrap_or_default())?;
        Ok(v)
    }

    /// Writes `n` keys in one call.
    pub fn write_many(&mut self, n: u64) -> app::Result<u64> {
        for i in 0..n {
            self.values.insert_value(format!("k{i}"), "v".into())?;
        }
        Ok(n)
    }

    /// Stores a value of `bytes` bytes.
    pub fn big_value(&mut self, bytes: u64) -> app::Result<()> {
        let v = "x".repeat(usize::try_from(bytes).unwrap_or(usize::MAX));
        self.values.insert_value("big".into(), v)?;
        Ok(())
    }
}

fn deep(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let pad = std::hint::black_box([n; 64]);
    deep(n - 1).wrapping_add(pad[(n % 64) as usize])
}
