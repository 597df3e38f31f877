//! `meroctl`: drives one context node over its HTTP API and WebSocket, and
//! renders the answers as tables for people or JSON for scripts.
//!
//! It owns the command line and the rendering, nothing of the node: it talks
//! to the node only through the wire types of `mero-api` and finds a local
//! node through `mero-config`, and may depend on no other crate of the
//! workspace.
//!
//! Layout: [`cli`] parses the command line and has one module per noun
//! (`cli/app.rs`, `namespace.rs`, `context.rs`, `group.rs` with
//! `group/members.rs`, `call.rs`, `peers.rs`), each with its clap enum, the
//! code that runs it and the [`output::Report`]s of what it prints;
//! [`output`] prints a verb's typed answer as JSON or a table; [`client`]
//! sends requests and decodes answers; [`socket`] runs the WebSocket
//! commands (`context watch`, `call -i`); [`workflow`] runs workflow files
//! (merobox's format) on nodes it starts. Unit tests sit beside the code;
//! `tests/cli.rs` runs the binary without a node, and `tests/e2e` drives it
//! against real nodes.

mod cli;
mod client;
mod output;
mod socket;
mod workflow;

use std::error::Error;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Box::new(e) as Box<dyn Error>)
        .and_then(|rt| {
            rt.block_on(cli.run())
                .map_err(|e| Box::new(e) as Box<dyn Error>)
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

/// Prints `e` and every error that caused it, one a line, on stderr.
fn report(e: &dyn Error) {
    let mut text = format!("error: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!("\n  caused by: {c}"));
        cause = c.source();
    }
    // Nothing is left to tell if stderr itself is gone.
    let _ = writeln!(std::io::stderr(), "{text}");
}
