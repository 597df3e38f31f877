//! `calimero:context/context`: facts about the call, and logging.

use mero_crdt::{Author, ContextId};

use super::HostState;
use crate::bindings::calimero::context::context::{self, ChainIdentity, LogLevel};

/// A chain account a member proved it holds (issue #23), as apps read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainAccount {
    /// `near`, `ethereum`, `icp` or `stellar`.
    pub chain: String,
    /// The account, canonical.
    pub account: String,
    /// Bound to the proving key by the chain's rules alone.
    pub verified_on_chain: bool,
}

/// Where a call's `chain-identities` come from: the node's governance,
/// which this crate only sees as this trait (the runtime must not depend
/// on the node). Asked with the call's context and executing member when
/// the app asks.
pub trait ChainIdentities: Send + Sync + 'static {
    /// `member`'s proven chain accounts in the namespace of `ctx`.
    fn chain_identities(&self, ctx: ContextId, member: Author) -> Vec<ChainAccount>;

    /// The attestations recorded in the namespace of `ctx` about
    /// `member`'s proven accounts (none unless the node says).
    fn chain_attestations(&self, _ctx: ContextId, _member: Author) -> Vec<ChainAttestation> {
        Vec::new()
    }
}

/// A node's signed claim about a chain, recorded in governance, as apps
/// read it (the WIT's `chain-attestation`).
pub type ChainAttestation = context::ChainAttestation;

const MAX_LOG_LINE: usize = 16 << 10;

impl context::Host for HostState {
    fn context_id(&mut self) -> wasmtime::Result<Vec<u8>> {
        Ok(self.env.ctx.0.to_vec())
    }

    fn executor_id(&mut self) -> wasmtime::Result<Vec<u8>> {
        Ok(self.env.executor.0.to_vec())
    }

    fn app_version(&mut self) -> wasmtime::Result<String> {
        Ok(self.env.app_version.clone())
    }

    fn chain_identities(&mut self) -> wasmtime::Result<Vec<ChainIdentity>> {
        // A migration runs alike on every node; what a node has folded of
        // its namespace's governance need not be alike, so it sees none.
        if self.migration || matches!(self.mode, super::Mode::Describe) {
            return Ok(Vec::new());
        }
        let Some(source) = &self.chain_identities else {
            return Ok(Vec::new());
        };
        Ok(source
            .chain_identities(self.env.ctx, self.env.executor)
            .into_iter()
            .map(|a| ChainIdentity {
                chain: a.chain,
                account: a.account,
                verified_on_chain: a.verified_on_chain,
            })
            .collect())
    }

    fn chain_attestations(&mut self) -> wasmtime::Result<Vec<context::ChainAttestation>> {
        // As chain-identities: a migration runs alike on every node.
        if self.migration || matches!(self.mode, super::Mode::Describe) {
            return Ok(Vec::new());
        }
        let Some(source) = &self.chain_identities else {
            return Ok(Vec::new());
        };
        Ok(source.chain_attestations(self.env.ctx, self.env.executor))
    }

    fn now_millis(&mut self) -> wasmtime::Result<u64> {
        Ok(self.env.clock.last().millis.max(self.env.wall_millis))
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        if self.env.logs.len() >= self.config.max_log_lines_per_call {
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let ctx = hex::encode(&self.env.ctx.0[..8]);
        match level {
            LogLevel::Trace => tracing::trace!(target: "app", context = %ctx, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "app", context = %ctx, "{message}"),
            LogLevel::Info => tracing::info!(target: "app", context = %ctx, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "app", context = %ctx, "{message}"),
            LogLevel::Error => tracing::error!(target: "app", context = %ctx, "{message}"),
        }
        self.env.logs.push(message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use std::sync::Arc;

    use wasmtime::StoreLimitsBuilder;
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::WasiCtxBuilder;

    use super::*;
    use crate::config::RuntimeConfig;
    use crate::host::{CallEnv, Mode};

    /// Knows one member's account, in one context.
    struct One;

    impl ChainIdentities for One {
        fn chain_identities(&self, ctx: ContextId, member: Author) -> Vec<ChainAccount> {
            if ctx != ContextId([1; 32]) || member != Author([2; 32]) {
                return Vec::new();
            }
            vec![ChainAccount {
                chain: "ethereum".into(),
                account: "0x995f97cB4BC73C0EC00FE3a38d9e72EE874Befcd".into(),
                verified_on_chain: true,
            }]
        }
    }

    fn state(mode: Mode, migration: bool, source: bool, member: u8) -> HostState {
        let mut env = CallEnv::describe();
        env.ctx = ContextId([1; 32]);
        env.executor = Author([member; 32]);
        HostState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().build(),
            env,
            mode,
            migration,
            state_version: 0,
            config: Arc::new(RuntimeConfig::default()),
            blobs: None,
            chain_identities: source.then(|| Arc::new(One) as Arc<dyn ChainIdentities>),
            blob_read: 0,
            deadline: None,
        }
    }

    #[test]
    fn a_call_reads_its_executors_identities_and_a_migration_none() {
        let got = |mut s: HostState| context::Host::chain_identities(&mut s).unwrap();
        let seen = got(state(Mode::Mutating, false, true, 2));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].chain, "ethereum");
        assert!(seen[0].verified_on_chain);
        // A view reads them as well.
        assert_eq!(
            got(state(Mode::ReadOnly("v".into()), false, true, 2)).len(),
            1
        );
        // Another member's call: its own (none).
        assert!(got(state(Mode::Mutating, false, true, 3)).is_empty());
        // A migration and its check run alike everywhere: none.
        assert!(got(state(Mode::Mutating, true, true, 2)).is_empty());
        // A runtime the node offered no source to: none.
        assert!(got(state(Mode::Mutating, false, false, 2)).is_empty());
    }

    /// Says one attestation to every call.
    struct Attested;

    impl ChainIdentities for Attested {
        fn chain_identities(&self, _: ContextId, _: Author) -> Vec<ChainAccount> {
            Vec::new()
        }

        fn chain_attestations(&self, _: ContextId, _: Author) -> Vec<ChainAttestation> {
            vec![ChainAttestation {
                chain: "ethereum".into(),
                network: "eip155:31337".into(),
                block_number: 7,
                block_hash: format!("0x{}", "ab".repeat(32)),
                kind: "token-balance".into(),
                account: "0x995f97cB4BC73C0EC00FE3a38d9e72EE874Befcd".into(),
                token: Some("0x5FbDB2315678afecb367f032d93F642f64180aa3".into()),
                at_least: Some("100".into()),
                observed: "250".into(),
                holds: true,
                attested_by: vec![9; 32],
                at_millis: 1,
            }]
        }
    }

    #[test]
    fn a_call_reads_attestations_and_a_migration_none() {
        let got = |mode, migration, source: Option<Arc<dyn ChainIdentities>>| {
            let mut s = state(mode, migration, false, 2);
            s.chain_identities = source;
            context::Host::chain_attestations(&mut s).unwrap()
        };
        let attested = || Some(Arc::new(Attested) as Arc<dyn ChainIdentities>);
        let seen = got(Mode::Mutating, false, attested());
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].observed, "250");
        assert_eq!(got(Mode::ReadOnly("v".into()), false, attested()).len(), 1);
        assert!(got(Mode::Mutating, true, attested()).is_empty());
        assert!(got(Mode::Mutating, false, None).is_empty());
        // A source that says nothing of attestations: none.
        assert!(got(Mode::Mutating, false, Some(Arc::new(One))).is_empty());
    }
}
