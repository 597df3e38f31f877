//! `calimero:context/context`: facts about the call, and logging.

use super::HostState;
use crate::bindings::calimero::context::context::{self, LogLevel};

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
