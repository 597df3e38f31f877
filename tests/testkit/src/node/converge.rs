//! Several nodes: the settings that make them sync quickly, and waiting
//! until they hold a context at one root hash.

use std::time::Duration;

use super::TestNode;
use crate::poll::poll;

/// Config for nodes of multi-node tests: anti-entropy every 300 ms.
pub const FAST_SYNC: &[&str] = &["sync.frequency_ms=300"];

/// How long nodes get to agree, or to learn of a change.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// Polls until every node has the same root hash for `ctx`, within
/// [`CONVERGE`]; returns it.
pub fn assert_converged(nodes: &[&TestNode], ctx: &str) -> String {
    assert_converged_within(nodes, ctx, CONVERGE)
}

/// Polls until every node has the same root hash for `ctx`; returns it.
/// After `timeout`, panics naming each node's root, with the first node's
/// log.
pub fn assert_converged_within(nodes: &[&TestNode], ctx: &str, timeout: Duration) -> String {
    assert!(!nodes.is_empty(), "converged among no nodes");
    let mut roots = Vec::new();
    let agreed = poll(timeout, || {
        roots = nodes.iter().map(|n| n.root(ctx)).collect::<Vec<_>>();
        let first = roots[0].clone()?;
        roots
            .iter()
            .all(|r| r.as_deref() == Some(first.as_str()))
            .then_some(first)
    });
    if let Some(root) = agreed {
        return root;
    }
    let named: Vec<String> = nodes
        .iter()
        .zip(&roots)
        .map(|(n, r)| {
            format!(
                "{}: {}",
                n.name,
                r.as_deref().unwrap_or("(no such context)")
            )
        })
        .collect();
    let logs: Vec<String> = nodes
        .iter()
        .map(|n| format!("--- {} log:\n{}", n.name, n.log()))
        .collect();
    panic!(
        "no convergence on {ctx} after {timeout:?}:\n{}\n{}",
        named.join("\n"),
        logs.join("\n")
    );
}
