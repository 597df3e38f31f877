//! Who this node is: `GET /admin-api/identity`,
//! `POST /admin-api/identity/context` and `GET /admin-api/network/status`,
//! in upstream's shapes, and `GET /admin-api/node-info` (our own: uptime,
//! peers, disk use). The node has one Ed25519 key: its peer id, the key it
//! is a member as and signs with, and its own account root.

use axum::Json;
use axum::extract::State;
use mero_api::Data;
use mero_api::ids::{b58, hex32};
use mero_api::inspect::NodeInfo;
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

/// The node at a glance, for its operator: version, keys, uptime, listen
/// addresses, connected peers and disk use. Our own route (the dashboard's
/// node page); upstream has none.
#[utoipa::path(get, path = "/admin-api/node-info", tag = "admin",
    responses((status = 200, body = Data<NodeInfo>)))]
pub(crate) async fn node_info(
    State(node): State<Node>,
    State(auth): State<crate::auth::Auth>,
) -> Json<Data<NodeInfo>> {
    let key = node.public_key();
    let stats = node.stats().await;
    let now = crate::now_millis();
    let started = stats.started_at_millis;
    Json(Data::new(NodeInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        public_key: b58(&key),
        account_id: hex32(&key),
        peer_id: node.config().identity.peer_id.clone(),
        started_at: started,
        uptime_secs: now.saturating_sub(started) / 1000,
        listen_addrs: node.listen_addrs().await,
        peers: stats.peers,
        store_bytes: stats.store_bytes,
        blob_bytes: stats.blob_bytes,
        missed_event_commits: stats.missed_event_commits,
        refused_gossip: stats.refused_gossip,
        auth_mode: match auth.mode() {
            mero_config::AuthMode::Embedded => "embedded",
            mero_config::AuthMode::Proxy => "proxy",
        }
        .into(),
    }))
}
