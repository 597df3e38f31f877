//! A namespace made by one key, and contexts registered in it, over the
//! node's real governance fold: what the node's sync simulator and its
//! receive bench start from.

use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use mero_node::governance::{AppInfo, Body, Namespace, SignedOp, caps, scoped_id};

/// A namespace that `creator` creates at `millis` for `app`, with the
/// default capabilities; returns it (its creation applied) and the
/// creation op.
pub fn create_namespace(
    creator: &SigningKey,
    millis: u64,
    nonce: [u8; 32],
    app: AppInfo,
) -> (Namespace, SignedOp) {
    let body = Body::Create {
        nonce,
        name: None,
        app,
        default_capabilities: caps::DEFAULT,
        addrs: vec![],
    };
    let (mut ns, create) = Namespace::create(creator, millis, body).unwrap();
    ns.apply(&create).unwrap();
    (ns, create)
}

/// Registers in `ns`'s root group the context that `creator` makes with
/// `salt`, at `millis`; returns the context and the (applied) op.
pub fn register_context(
    ns: &mut Namespace,
    creator: &SigningKey,
    millis: u64,
    salt: [u8; 32],
) -> (ContextId, SignedOp) {
    let ctx = ContextId(scoped_id(
        &ns.id,
        &creator.verifying_key().to_bytes(),
        &salt,
    ));
    let body = Body::ContextRegistered {
        context: ctx.0,
        name: None,
        group: ns.id,
        salt,
    };
    let register = ns.make(creator, millis, body).unwrap();
    ns.apply(&register).unwrap();
    (ctx, register)
}
