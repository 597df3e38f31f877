//! Upstream's tools read our `config.toml`: the file `merod init` writes
//! (`ConfigFile::generate`, then `save`) parses with a type that mirrors
//! every field upstream's `calimero_config::ConfigFile` requires (no
//! defaults where upstream has none, the same shapes: multiaddr strings,
//! `{secs, nanos}` durations, snake_case auth modes, an identity whose peer
//! id matches its keypair). And files we wrote before those keys still load.

#![allow(clippy::unwrap_used, reason = "tests fail fast")]

use std::time::Duration;

use mero_config::{CONFIG_FILE, ConfigFile};
use serde::Deserialize;

/// Upstream's `ConfigFile`, as far as it requires anything.
#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Upstream {
    identity: Identity,
    swarm: Listen,
    server: Server,
    #[serde(default)]
    bootstrap: Option<Bootstrap>,
    #[serde(default)]
    discovery: Option<Discovery>,
    sync: Sync,
    datastore: Path,
    blobstore: Path,
    context: Context,
    #[serde(default)]
    runtime: Option<Runtime>,
}

#[derive(Deserialize)]
struct Identity {
    peer_id: String,
    keypair: String,
}

#[derive(Deserialize)]
struct Listen {
    listen: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum AuthMode {
    Proxy,
    Embedded,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Server {
    listen: Vec<String>,
    #[serde(default)]
    auth_mode: Option<AuthMode>,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Bootstrap {
    #[serde(default)]
    nodes: Vec<String>,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Discovery {
    #[serde(default)]
    mdns: Option<bool>,
    advertise_address: bool,
    #[serde(default)]
    external_address: Vec<String>,
    rendezvous: Rendezvous,
    relay: Relay,
    autonat: Autonat,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Rendezvous {
    namespace: String,
    discovery_rpm: f32,
    discovery_interval: Duration,
    registrations_limit: usize,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Relay {
    registrations_limit: usize,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Autonat {
    max_candidates: usize,
    probe_interval: Duration,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Sync {
    timeout_ms: u64,
    #[serde(default)]
    session_deadline_ms: Option<u64>,
    interval_ms: u64,
    frequency_ms: u64,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Path {
    path: String,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Context {
    #[serde(default)]
    migration_v2: Option<bool>,
}

/// Upstream's `[runtime]`: only `limits`, optional; our keys are ignored.
#[derive(Deserialize)]
#[allow(dead_code, reason = "parsing is the test")]
struct Runtime {
    #[serde(default)]
    limits: Option<toml::Table>,
}

#[test]
fn the_generated_config_parses_as_upstreams() {
    let dir = tempfile::tempdir().unwrap();
    let path = ConfigFile::generate(2528, 2428)
        .unwrap()
        .save(dir.path())
        .unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let up: Upstream = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // Upstream checks the peer id against the keypair.
    let bytes = bs58::decode(&up.identity.keypair).into_vec().unwrap();
    let keypair = libp2p_identity::Keypair::from_protobuf_encoding(&bytes).unwrap();
    assert_eq!(
        keypair.public().to_peer_id().to_base58(),
        up.identity.peer_id
    );
    // meroctl connects to the first server address.
    assert_eq!(up.server.listen[0], "/ip4/127.0.0.1/tcp/2528");
    assert!(matches!(up.server.auth_mode, Some(AuthMode::Embedded)));
    assert_eq!(up.swarm.listen, ["/ip4/127.0.0.1/tcp/2428"]);
    let d = up.discovery.unwrap();
    assert_eq!(d.mdns, Some(false));
    assert_eq!(d.rendezvous.discovery_interval, Duration::from_secs(15));
    assert_eq!(d.autonat.probe_interval, Duration::from_secs(10));
    assert_eq!(up.context.migration_v2, Some(true));
    assert_eq!(up.sync.frequency_ms, 10_000);
}

#[test]
fn a_config_written_before_upstreams_keys_still_loads() {
    // What `merod init` wrote before this change, its identity aside.
    let dir = tempfile::tempdir().unwrap();
    let fresh = ConfigFile::generate(2528, 2428).unwrap();
    let old = format!(
        r#"[identity]
peer_id = "{}"
keypair = "{}"

[swarm]
listen = ["/ip4/127.0.0.1/tcp/2428"]

[server]
listen = ["/ip4/127.0.0.1/tcp/2528"]
auth_mode = "embedded"

[server.auth]
access_ttl_secs = 3600
refresh_ttl_secs = 2592000
rotate_after_secs = 86400

[server.limits]
max_connections = 256
header_read_timeout_ms = 10000
ws_max_in_flight = 8

[bootstrap]
nodes = []

[discovery]
mdns = false

[discovery.rendezvous]
namespace = "/calimero/devnet/global"

[sync]
timeout_ms = 30000
interval_ms = 5000
frequency_ms = 10000

[datastore]
path = "data"

[blobstore]
path = "blobs"

[runtime]
call_timeout_ms = 2000
max_memory_mib = 64
max_instances = 32
"#,
        fresh.identity.peer_id, fresh.identity.keypair
    );
    std::fs::write(dir.path().join(CONFIG_FILE), old).unwrap();
    let cfg = ConfigFile::load(dir.path()).unwrap();
    assert_eq!(cfg.sync.frequency_ms, 10_000);
    assert_eq!(
        cfg.discovery.rendezvous.namespace,
        "/calimero/devnet/global"
    );
    assert_eq!(cfg.discovery.rendezvous.registrations_limit, 3);
    assert!(cfg.context.migration_v2);
    assert_eq!(cfg.presence.ttl_ms, 7_000);
    assert_eq!(
        cfg.signing_key().unwrap().to_bytes(),
        fresh.signing_key().unwrap().to_bytes()
    );
    // Saved again, it carries upstream's keys.
    cfg.save(dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
    toml::from_str::<Upstream>(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}
