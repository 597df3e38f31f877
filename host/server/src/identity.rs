//! Who this node is: `GET /admin-api/identity`,
//! `POST /admin-api/identity/context` and `GET /admin-api/network/status`,
//! in upstream's shapes. The node has one Ed25519 key: its peer id, the
//! key it is a member as and signs with, and its own account root.

use axum::Json;
use axum::extract::State;
use mero_api::Data;
use mero_api::ids::{b58, hex32};
use mero_api::node::{AutonatStatus, GeneratedIdentity, NetworkStatus, NodeIdentity};
use mero_node::Node;

/// This node's account, key and account root.
#[utoipa::path(get, path = "/admin-api/identity", tag = "admin",
    responses((status = 200, body = Data<NodeIdentity>)))]
pub(crate) async fn identity(State(node): State<Node>) -> Json<Data<NodeIdentity>> {
    let key = node.public_key();
    Json(Data::new(NodeIdentity {
        account_id: hex32(&key),
        device_id: None,
        public_key: b58(&key),
        account_root_public_key: hex32(&key),
    }))
}

/// The key this node acts as in contexts. Upstream mints a keypair here;
/// this node acts as its one key in every context, so that is the answer
/// (a caller cannot choose the executor on either).
#[utoipa::path(post, path = "/admin-api/identity/context", tag = "admin",
    responses((status = 200, body = Data<GeneratedIdentity>)))]
pub(crate) async fn context_identity(State(node): State<Node>) -> Json<Data<GeneratedIdentity>> {
    Json(Data::new(GeneratedIdentity {
        public_key: b58(&node.public_key()),
    }))
}

/// The swarm as this node sees it: its peer id and listen addresses. It
/// uses no relays, rendezvous, hole punching or AutoNAT, so those are empty
/// and reachability `unknown`.
#[utoipa::path(get, path = "/admin-api/network/status", tag = "admin",
    responses((status = 200, body = NetworkStatus)))]
pub(crate) async fn network_status(State(node): State<Node>) -> Json<NetworkStatus> {
    Json(NetworkStatus {
        local_peer_id: node.config().identity.peer_id.clone(),
        listen_addrs: node.listen_addrs().await,
        external_addrs: Vec::new(),
        relays: Vec::new(),
        rendezvous: Vec::new(),
        direct_upgrades: Vec::new(),
        autonat: AutonatStatus {
            reachability: "unknown".into(),
            last_test_addr: None,
            last_test_result: None,
            last_test_reason: None,
            last_test_observed_addr: None,
            last_test_at: None,
        },
    })
}
