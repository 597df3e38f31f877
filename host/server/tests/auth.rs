//! The API is locked: every route of `openapi.json` answers 401 without a
//! token, 403 with one lacking its permission and 2xx to a valid request
//! with one that has it; browser defences hold in every mode; upstream's
//! login flows work as its clients speak them; revocation and key rotation
//! take effect; path installs refuse FIFOs and leak no bytes. In process,
//! over the router; the WebSocket and SSE tests serve it on a loopback port
//! (an upgrade needs a real connection).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail fast"
)]

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mero_config::{AuthMode, ConfigFile};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    node: mero_node::Node,
    app: axum::Router,
    options: mero_server::ServerOptions,
    root: String,
    auth: mero_server::Auth,
    ids: Ids,
}

struct Ids {
    app: String,
    ns: String,
    ctx: String,
    account: String,
    raw_app: [u8; 32],
    raw_ns: [u8; 32],
    blob: String,
}

async fn fixture(mode: AuthMode, edit: impl FnOnce(&mut ConfigFile)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // Swarm on a free loopback port, for the tests that start networking.
    let mut config = ConfigFile::generate(1, 0).unwrap();
    config.server.auth_mode = mode;
    edit(&mut config);
    let node = mero_node::Node::start(mero_node::NodeOptions {
        dir: dir.path().into(),
        config: config.clone(),
    })
    .unwrap();
    let root = if mode == AuthMode::Embedded {
        let path = mero_server::auth::provision(dir.path(), false).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    } else {
        String::new()
    };
    let options = mero_server::ServerOptions::from_config(dir.path(), &config).unwrap();
    let app_id = node
        .install_application(
            mero_node::InstallSource::Bytes(mero_fixtures::KV_STORE_BYTES.to_vec()),
            Vec::new(),
            None,
            None,
        )
        .await
        .unwrap();
    let (ns, ctx) = node
        .create_namespace(&app_id, None, None, Vec::new())
        .await
        .unwrap();
    let blob = node
        .add_blob(
            futures::stream::iter([Ok::<_, std::io::Error>(b"a blob".to_vec())]),
            None,
            None,
        )
        .await
        .unwrap();
    let ids = Ids {
        blob: bs58::encode(blob.id).into_string(),
        app: bs58::encode(app_id).into_string(),
        ns: hex::encode(ns),
        ctx: bs58::encode(ctx.0).into_string(),
        account: hex::encode(node.public_key()),
        raw_app: app_id,
        raw_ns: ns,
    };
    Fixture {
        app: mero_server::router(node.clone(), &options),
        auth: options.auth.clone(),
        options,
        node,
        root,
        ids,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Answer {
    /// Whether header `name` is there and contains `needle`.
    fn header_has(&self, name: &str, needle: &str) -> bool {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(needle))
    }
}

impl Fixture {
    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:2528");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    fn token(&self, perms: &[&str]) -> String {
        let perms: Vec<String> = perms.iter().map(|s| s.to_string()).collect();
        self.auth.mint_token("test", &perms, 600).unwrap()
    }

    /// `path` with its parameters filled by the fixture's ids.
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/admin-api/applications/") {
            &self.ids.app
        } else if path.starts_with("/admin-api/blobs/") {
            &self.ids.blob
        } else if path.starts_with("/admin-api/contexts/") {
            &self.ids.ctx
        } else {
            &self.ids.ns
        };
        path.replace("{id}", id)
            .replace("{account}", &self.ids.account)
            .replace("{name}", "alias1")
            .replace("{context}", &self.ids.ctx)
            .replace("{app}", &self.ids.app)
    }
}

/// Every (method, path) of the checked-in OpenAPI document.
fn documented_routes() -> Vec<(String, String, bool)> {
    let doc: Value = serde_json::from_str(&mero_server::openapi_json()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // An empty requirement in `security` marks a public route.
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            out.push((method.to_uppercase(), path.clone(), public));
        }
    }
    assert!(out.len() > 30, "{out:?}");
    out
}

/// A request body.
#[derive(Clone, Debug)]
enum Payload {
    None,
    Json(Value),
    /// Component bytes, uploaded as `meroctl app install --path` does.
    Wasm(&'static [u8]),
}

impl Fixture {
    async fn request(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: &Payload,
    ) -> Answer {
        match body {
            Payload::None => self.call(method, url, token, None).await,
            Payload::Json(v) => self.call(method, url, token, Some(v.clone())).await,
            Payload::Wasm(bytes) => {
                let mut req = Request::builder()
                    .method(method)
                    .uri(url)
                    .header("host", "127.0.0.1:2528")
                    .header("content-type", "application/wasm");
                if let Some(t) = token {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                self.send(req.body(Body::from(bytes.to_vec())).unwrap())
                    .await
            }
        }
    }
}

/// What the writes of the route test act on, beyond the base fixture: a
/// second node B on loopback (a member of the fixture's namespace, and the
/// creator of a namespace the node is invited to), a subgroup, a namespace,
/// a context and an app to delete, a group to upgrade and one whose upgrade
/// was refused, to retry.
struct World {
    b: mero_node::Node,
    _b_dir: tempfile::TempDir,
    _files: tempfile::TempDir,
    component: std::path::PathBuf,
    member: String,
    subgroup: String,
    theirs: String,
    theirs_ctx: String,
    invitation: Value,
    doomed_ns: String,
    doomed_ctx: String,
    doomed_app: String,
    to_upgrade: String,
    to_retry: String,
    v2: String,
    /// A context B holds too: resynced from B.
    shared_ctx: String,
}

async fn install(node: &mero_node::Node, bytes: &[u8]) -> [u8; 32] {
    node.install_application(
        mero_node::InstallSource::Bytes(bytes.to_vec()),
        Vec::new(),
        None,
        None,
    )
    .await
    .unwrap()
}

fn invitation_json(signed: &impl serde::Serialize) -> Value {
    serde_json::to_value(signed).unwrap()
}

async fn world(f: &Fixture) -> World {
    let a = &f.node;
    a.start_network().await.unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let b = mero_node::Node::start(mero_node::NodeOptions {
        dir: b_dir.path().into(),
        config: ConfigFile::generate(1, 0).unwrap(),
    })
    .unwrap();
    b.start_network().await.unwrap();
    let ns = f.ids.raw_ns;
    // B joins the fixture's namespace: a member to add, remove and manage.
    let (inv, _) = a
        .membership()
        .invite(&ns, 3600, mero_node::Role::Member, vec![])
        .await
        .unwrap();
    b.membership()
        .join_namespace(&ns, &invitation_json(&inv), &[])
        .await
        .unwrap();
    let member = b.public_key();
    assert!(
        a.membership()
            .group_members(&ns)
            .unwrap()
            .iter()
            .any(|(k, _)| *k == member),
        "B is a member as the node sees it"
    );
    let subgroup = a
        .membership()
        .create_group(&ns, Some("sub".into()), true)
        .await
        .unwrap();
    // A context B holds too, so that the node can resync it from B.
    let shared_ctx = a
        .create_context(&f.ids.raw_app, &ns, Vec::new(), None, None)
        .await
        .unwrap();
    b.join_context(&shared_ctx).await.unwrap();
    // B's own namespace, which the node is invited to join (and leave).
    let b_app = install(&b, mero_fixtures::KV_STORE_BYTES).await;
    let (theirs, theirs_ctx) = b
        .create_namespace(&b_app, None, None, Vec::new())
        .await
        .unwrap();
    let (invitation, _) = b
        .membership()
        .invite(&theirs, 3600, mero_node::Role::Member, vec![])
        .await
        .unwrap();
    // Things to delete.
    let (doomed_ns, _) = a
        .create_namespace(&f.ids.raw_app, None, None, Vec::new())
        .await
        .unwrap();
    let doomed_ctx = a
        .create_context(&f.ids.raw_app, &ns, Vec::new(), None, None)
        .await
        .unwrap();
    let doomed_app = install(a, mero_fixtures::MISBEHAVE_BYTES).await;
    // Two groups of a versioned app: one to upgrade (its context is empty,
    // so the migration check passes) and one whose upgrade was refused (a
    // context with an item the lossy migration drops); with that context
    // deleted here, a retry succeeds.
    let v1 = install(a, mero_fixtures::SCENARIO_MIGRATION_CHECK_FAIL_V1_BYTES).await;
    let v2 = install(a, mero_fixtures::SCENARIO_MIGRATION_CHECK_FAIL_V2_BYTES).await;
    let (to_upgrade, _) = a
        .create_namespace(&v1, None, None, Vec::new())
        .await
        .unwrap();
    let (to_retry, _) = a
        .create_namespace(&v1, None, None, Vec::new())
        .await
        .unwrap();
    let blocker = a
        .create_context(&v1, &to_retry, Vec::new(), None, None)
        .await
        .unwrap();
    let set = f
        .call(
            "POST",
            "/jsonrpc",
            Some(&f.root),
            Some(json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
                "params": {"contextId": bs58::encode(blocker.0).into_string(),
                    "method": "set_item", "argsJson": {"key": "a", "value": "1"}}})),
        )
        .await;
    assert!(
        set.status == 200 && set.body["error"].is_null(),
        "{}",
        set.body
    );
    let refused = a.upgrade_group(&to_retry, &v2, false).await;
    assert!(refused.is_err(), "the check refuses: {refused:?}");
    a.delete_context(&blocker).await.unwrap();
    let files = tempfile::tempdir().unwrap();
    let component = files.path().join("kv.wasm");
    std::fs::write(&component, mero_fixtures::TASK_BOARD_BYTES).unwrap();
    World {
        b,
        _b_dir: b_dir,
        _files: files,
        component,
        member: hex::encode(member),
        subgroup: hex::encode(subgroup),
        theirs: hex::encode(theirs),
        theirs_ctx: bs58::encode(theirs_ctx.0).into_string(),
        invitation: invitation_json(&invitation),
        doomed_ns: hex::encode(doomed_ns),
        doomed_ctx: bs58::encode(doomed_ctx.0).into_string(),
        doomed_app: bs58::encode(doomed_app).into_string(),
        to_upgrade: hex::encode(to_upgrade),
        to_retry: hex::encode(to_retry),
        v2: bs58::encode(v2).into_string(),
        shared_ctx: bs58::encode(shared_ctx.0).into_string(),
    }
}

/// One valid request per documented write.
struct Write {
    method: &'static str,
    route: &'static str,
    url: String,
    body: Payload,
    /// The permission, when the handler (not the route) decides it.
    permission: Option<String>,
}

/// A valid request to every documented route that is not a GET, in the
/// order they run (deletes and leaves last); each must answer 2xx (the
/// world is built so that every one can, joins and leaves included). A
/// documented write missing here fails the test, so a new route gets its
/// row.
fn writes(f: &Fixture, w: &World, eth: &Eth) -> Vec<Write> {
    let (app, ns, ctx) = (&f.ids.app, &f.ids.ns, &f.ids.ctx);
    let row = |method, route: &'static str, url: String, body| Write {
        method,
        route,
        url,
        body,
        permission: None,
    };
    let json = Payload::Json;
    // A Stellar account's SEP-53 proof of this hour's challenge.
    let (chains, secret) = (mero_node::mero_chains::Chain::Stellar, [42; 32]);
    let stellar = mero_node::mero_chains::signer::stellar_account(&secret);
    let challenge = f
        .node
        .membership()
        .chain_challenge(&f.ids.raw_ns, chains, &stellar)
        .unwrap();
    let signature = hex::encode(mero_node::mero_chains::signer::stellar(&secret, &challenge));
    // An attestation by some node, for the verify route.
    let attestation = {
        use mero_node::relayer::attestation::{Attestation, Claim, Statement};
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let a = Attestation::sign(
            Claim {
                chain: mero_node::mero_chains::Chain::Ethereum,
                network: "eip155:31337".into(),
                block: mero_node::relayer::BlockRef {
                    number: 1,
                    hash: format!("0x{}", "ab".repeat(32)),
                },
                statement: Statement::Balance {
                    account: eth.account.clone(),
                    at_least: mero_node::relayer::Amount::from_u128(1),
                },
                observed: "2".into(),
                holds: true,
                attested_by: key.verifying_key().to_bytes(),
                at_millis: 1,
            },
            &key,
        );
        json!({"chain": "ethereum", "network": "eip155:31337", "blockNumber": 1,
            "blockHash": a.claim.block.hash, "statement": {"kind": "balance",
            "account": eth.account, "atLeast": "1"}, "observed": "2", "holds": true,
            "attestedBy": hex::encode(a.claim.attested_by), "atMillis": 1,
            "signature": hex::encode(a.signature)})
    };
    vec![
        // The relayer's, against the real local chain the test started.
        row(
            "POST",
            "/admin-api/chains/{chain}/balance",
            "/admin-api/chains/ethereum/balance".into(),
            json(json!({"account": eth.account, "token": eth.token})),
        ),
        row(
            "POST",
            "/admin-api/chains/{chain}/attest",
            "/admin-api/chains/ethereum/attest".into(),
            json(
                json!({"statement": {"kind": "balance", "account": eth.account,
                "atLeast": "1"}}),
            ),
        ),
        row(
            "POST",
            "/admin-api/attestations/verify",
            "/admin-api/attestations/verify".into(),
            json(attestation),
        ),
        // First: B is still a member that may write (a row below makes it
        // read-only), so the node has someone to resync from.
        row(
            "POST",
            "/admin-api/contexts/{id}/resync",
            format!("/admin-api/contexts/{}/resync", w.shared_ctx),
            json(json!({"force": true})),
        ),
        Write {
            permission: Some(format!("context:execute[{ctx}]")),
            ..row(
                "POST",
                "/jsonrpc",
                "/jsonrpc".into(),
                json(json!({"jsonrpc": "2.0", "id": 1,
                "method": "execute", "params": {"contextId": ctx, "method": "set",
                "argsJson": {"key": "k", "value": "v"}}})),
            )
        },
        row(
            "POST",
            "/admin-api/install-dev-application",
            "/admin-api/install-dev-application".into(),
            json(json!({"path": w.component, "metadata": []})),
        ),
        row(
            "POST",
            "/admin-api/install-application",
            "/admin-api/install-application".into(),
            Payload::Wasm(mero_fixtures::TASK_BOARD_BYTES),
        ),
        row(
            "POST",
            "/admin-api/namespaces",
            "/admin-api/namespaces".into(),
            json(json!({"applicationId": app, "name": "another"})),
        ),
        row(
            "POST",
            "/admin-api/namespaces/{id}/chain-challenge",
            format!("/admin-api/namespaces/{ns}/chain-challenge"),
            json(json!({"chain": "stellar", "account": stellar})),
        ),
        row(
            "POST",
            "/admin-api/namespaces/{id}/chain-identities",
            format!("/admin-api/namespaces/{ns}/chain-identities"),
            json(json!({"chain": "stellar", "account": stellar, "signature": signature})),
        ),
        row(
            "PUT",
            "/admin-api/namespaces/{id}/protocol",
            format!("/admin-api/namespaces/{ns}/protocol"),
            json(json!({"protocol": "ethereum"})),
        ),
        row(
            "PUT",
            "/admin-api/contexts/{id}/protocol",
            format!("/admin-api/contexts/{ctx}/protocol"),
            json(json!({"protocol": "near"})),
        ),
        row(
            "POST",
            "/admin-api/contexts",
            "/admin-api/contexts".into(),
            json(json!({"applicationId": app, "groupId": ns, "name": "second"})),
        ),
        row(
            "POST",
            "/admin-api/alias/create/context",
            "/admin-api/alias/create/context".into(),
            json(json!({"alias": "alias1", "contextId": ctx})),
        ),
        row(
            "POST",
            "/admin-api/alias/lookup/context/{name}",
            "/admin-api/alias/lookup/context/alias1".into(),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/alias/delete/context/{name}",
            "/admin-api/alias/delete/context/alias1".into(),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/namespaces/{id}/invite",
            format!("/admin-api/namespaces/{ns}/invite"),
            json(json!({"role": "member"})),
        ),
        row(
            "POST",
            "/admin-api/namespaces/{id}/groups",
            format!("/admin-api/namespaces/{ns}/groups"),
            json(json!({"name": "made"})),
        ),
        row(
            "PUT",
            "/admin-api/groups/{id}/settings/subgroup-visibility",
            format!(
                "/admin-api/groups/{}/settings/subgroup-visibility",
                w.subgroup
            ),
            json(json!({"subgroupVisibility": "restricted"})),
        ),
        row(
            "POST",
            "/admin-api/groups/{id}/members",
            format!("/admin-api/groups/{}/members", w.subgroup),
            json(json!({"members": [{"identity": w.member}]})),
        ),
        row(
            "POST",
            "/admin-api/groups/{id}/members/remove",
            format!("/admin-api/groups/{}/members/remove", w.subgroup),
            json(json!({"members": [w.member]})),
        ),
        row(
            "PUT",
            "/admin-api/groups/{id}/metadata",
            format!("/admin-api/groups/{ns}/metadata"),
            json(json!({"name": "team", "data": {"colour": "blue"}})),
        ),
        row(
            "PUT",
            "/admin-api/groups/{id}/members/{account}/metadata",
            format!("/admin-api/groups/{ns}/members/{}/metadata", w.member),
            json(json!({"name": "bob"})),
        ),
        row(
            "PUT",
            "/admin-api/groups/{id}/contexts/{context}/metadata",
            format!("/admin-api/groups/{ns}/contexts/{ctx}/metadata"),
            json(json!({"data": {"purpose": "tests"}})),
        ),
        row(
            "PUT",
            "/admin-api/groups/{id}/members/{account}/role",
            format!("/admin-api/groups/{ns}/members/{}/role", w.member),
            json(json!({"role": "ReadOnly"})),
        ),
        row(
            "PUT",
            "/admin-api/groups/{id}/members/{account}/capabilities",
            format!("/admin-api/groups/{ns}/members/{}/capabilities", w.member),
            json(json!({"capabilities": 0})),
        ),
        row(
            "PUT",
            "/admin-api/groups/{id}/members/{account}/auto-follow",
            format!("/admin-api/groups/{ns}/members/{}/auto-follow", w.member),
            json(json!({"autoFollowContexts": false, "autoFollowSubgroups": false})),
        ),
        row(
            "POST",
            "/admin-api/identity/context",
            "/admin-api/identity/context".into(),
            Payload::None,
        ),
        row(
            "PUT",
            "/admin-api/blobs",
            format!("/admin-api/blobs?context_id={ctx}"),
            json(json!({"any": "bytes"})),
        ),
        row(
            "HEAD",
            "/admin-api/blobs/{id}",
            format!("/admin-api/blobs/{}", f.ids.blob),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/namespaces/{id}/join",
            format!("/admin-api/namespaces/{}/join", w.theirs),
            json(json!({"invitation": w.invitation})),
        ),
        row(
            "POST",
            "/admin-api/contexts/{id}/join",
            format!("/admin-api/contexts/{}/join", w.theirs_ctx),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/contexts/sync/{id}",
            format!("/admin-api/contexts/sync/{ctx}"),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/contexts/sync",
            "/admin-api/contexts/sync".into(),
            Payload::None,
        ),
        // Before the upgrade below: nothing pending yet, so `aborted: false`.
        row(
            "POST",
            "/admin-api/groups/{id}/migration/abort",
            format!("/admin-api/groups/{}/migration/abort", w.to_upgrade),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/groups/{id}/upgrade",
            format!("/admin-api/groups/{}/upgrade", w.to_upgrade),
            json(json!({"targetApplicationId": w.v2})),
        ),
        row(
            "POST",
            "/admin-api/groups/{id}/upgrade/retry",
            format!("/admin-api/groups/{}/upgrade/retry", w.to_retry),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/auth/tokens",
            "/admin-api/auth/tokens".into(),
            json(json!({"permissions": ["keys:create"], "expires_in_secs": 60})),
        ),
        row(
            "POST",
            "/admin-api/auth/revoke",
            "/admin-api/auth/revoke".into(),
            json(json!({"jti": "0f0f"})),
        ),
        row(
            "POST",
            "/admin-api/auth/rotate-keys",
            "/admin-api/auth/rotate-keys".into(),
            json(json!({"retire_previous": false})),
        ),
        row(
            "POST",
            "/admin-api/contexts/{id}/leave",
            format!("/admin-api/contexts/{}/leave", w.theirs_ctx),
            Payload::None,
        ),
        row(
            "POST",
            "/admin-api/namespaces/{id}/leave",
            format!("/admin-api/namespaces/{}/leave", w.theirs),
            Payload::None,
        ),
        row(
            "DELETE",
            "/admin-api/contexts/{id}",
            format!("/admin-api/contexts/{}", w.doomed_ctx),
            Payload::None,
        ),
        row(
            "DELETE",
            "/admin-api/namespaces/{id}",
            format!("/admin-api/namespaces/{}", w.doomed_ns),
            Payload::None,
        ),
        row(
            "DELETE",
            "/admin-api/applications/{id}",
            format!("/admin-api/applications/{}", w.doomed_app),
            Payload::None,
        ),
        row(
            "DELETE",
            "/admin-api/blobs/{id}",
            format!("/admin-api/blobs/{}", f.ids.blob),
            Payload::None,
        ),
    ]
}

/// A real Ethereum chain on 127.0.0.1 (Hardhat Network, `tests/chain`)
/// with a test ERC-20, for the relayer's routes.
struct Eth {
    chain: Option<mero_testkit::chain::LocalChain>,
    token: String,
    account: String,
}

impl Eth {
    /// Started off the runtime: the test kit's client is a blocking one.
    async fn start() -> Eth {
        tokio::task::spawn_blocking(|| {
            let chain = mero_testkit::chain::LocalChain::start();
            let account = chain.accounts()[0].clone();
            let token = chain.deploy_token(&account, 1_000);
            Eth {
                chain: Some(chain),
                token,
                account,
            }
        })
        .await
        .unwrap()
    }

    /// Stopped off the runtime too.
    async fn stop(mut self) {
        let chain = self.chain.take();
        tokio::task::spawn_blocking(move || drop(chain))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_documented_route_needs_a_token_and_its_permission() {
    let eth = Eth::start().await;
    let url = eth.chain.as_ref().unwrap().url.clone();
    let f = fixture(AuthMode::Embedded, move |c| {
        c.chains.ethereum = Some(mero_config::EthereumChainConfig {
            rpc_url: url,
            timeout_ms: None,
        });
    })
    .await;
    let w = world(&f).await;
    let routes = documented_routes();
    let public: Vec<&str> = routes
        .iter()
        .filter(|r| r.2)
        .map(|r| r.1.as_str())
        .collect();
    assert_eq!(
        public,
        [
            "/admin-api/health",
            "/admin-api/is-authed",
            "/auth/refresh",
            "/auth/token"
        ],
        "only these are public"
    );
    let writes = writes(&f, &w, &eth);
    // The table and the document name the same writes, each once.
    let documented: Vec<(&str, &str)> = routes
        .iter()
        .filter(|r| !r.2 && r.0 != "GET")
        .map(|r| (r.0.as_str(), r.1.as_str()))
        .collect();
    for (method, route) in &documented {
        let rows = writes
            .iter()
            .filter(|r| r.method == *method && r.route == *route)
            .count();
        assert_eq!(
            rows, 1,
            "{method} {route}: give it one valid request in `writes`"
        );
    }
    for r in &writes {
        assert!(
            documented.contains(&(r.method, r.route)),
            "{} {} is in `writes` but not documented",
            r.method,
            r.route
        );
    }
    // Reads with their fixture's ids; writes as the table makes them.
    let reads: Vec<(String, String, String)> = routes
        .iter()
        .filter(|r| !r.2 && r.0 == "GET")
        .map(|(m, p, _)| (m.clone(), p.clone(), f.fill(p)))
        .collect();
    let unrelated = f.token(&["network:peers"]);
    let other = f.token(&["application:list"]);
    let all = reads
        .iter()
        .map(|(m, p, u)| (m.as_str(), p.as_str(), u.as_str(), Payload::None))
        .chain(
            writes
                .iter()
                .map(|r| (r.method, r.route, r.url.as_str(), r.body.clone())),
        );
    for (method, route, url, body) in all {
        let a = f.request(method, url, None, &body).await;
        assert_eq!(
            a.status, 401,
            "{method} {route} without a token: {}",
            a.body
        );
        assert_eq!(a.headers["x-auth-error"], "missing_token");
        let a = f.request(method, url, Some("not.a.token"), &body).await;
        assert_eq!(a.status, 401, "{method} {route} with garbage: {}", a.body);
        let need = mero_server::auth::required_permission(method, route, url);
        if need.is_empty() && route != "/jsonrpc" {
            // Any valid token: checked below with one of another scope.
            continue;
        }
        let lacking = if route == "/admin-api/peers" {
            &other
        } else {
            &unrelated
        };
        let a = f.request(method, url, Some(lacking), &body).await;
        assert_eq!(
            a.status, 403,
            "{method} {route} lacking its permission: {}",
            a.body
        );
    }
    // With the permission the route names (scoped to the request's ids),
    // or any valid token where any will do: reads first, then the writes
    // in the table's order.
    for (method, route, url) in &reads {
        let need = mero_server::auth::required_permission(method, route, url);
        let t = if need.is_empty() {
            unrelated.clone()
        } else {
            f.token(&[&need])
        };
        let a = f.call(method, url, Some(&t), None).await;
        assert!(
            a.status.is_success(),
            "{method} {route} with `{need}`: {} {}",
            a.status,
            a.body
        );
    }
    for r in &writes {
        let need = r
            .permission
            .clone()
            .unwrap_or_else(|| mero_server::auth::required_permission(r.method, r.route, &r.url));
        let t = f.token(&[&need]);
        let a = f.request(r.method, &r.url, Some(&t), &r.body).await;
        assert!(
            a.status.is_success(),
            "{} {} with `{need}`: {} {}",
            r.method,
            r.route,
            a.status,
            a.body
        );
    }
    f.node.shutdown().await.unwrap();
    w.b.shutdown().await.unwrap();
    eth.stop().await;
}

#[tokio::test]
async fn calls_and_events_are_checked_per_context_and_method() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let ctx = f.ids.ctx.clone();
    let rpc = |method: &str| {
        let args = if method == "set" {
            json!({"key": "k", "value": "v"})
        } else {
            json!({"key": "k"})
        };
        json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
            "params": {"contextId": ctx, "method": method, "argsJson": args}})
    };
    let only_get = f.token(&[&format!("context:execute[{ctx},,get]")]);
    let a = f
        .call("POST", "/jsonrpc", Some(&only_get), Some(rpc("set")))
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = f
        .call("POST", "/jsonrpc", Some(&only_get), Some(rpc("get")))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.get("error").is_none(), "{}", a.body);
    let other_ctx = f.token(&["context:execute[11111111111111111111111111111111]"]);
    let a = f
        .call("POST", "/jsonrpc", Some(&other_ctx), Some(rpc("get")))
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = f
        .call("POST", "/jsonrpc", Some(&f.root), Some(rpc("set")))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // SSE subscriptions need the context's permission too.
    let a = f
        .call(
            "GET",
            &format!("/sse?contextIds={ctx}"),
            Some(&other_ctx),
            None,
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    f.node.shutdown().await.unwrap();
}

fn raw(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

async fn browser_defences_hold(mode: AuthMode) {
    let f = fixture(mode, |c| {
        c.server.allowed_origins = vec!["http://localhost:5173".into()];
        c.server.allowed_hosts = vec!["node.example".into()];
    })
    .await;
    let bearer = format!("Bearer {}", f.root);
    let auth: &[(&str, &str)] = if f.root.is_empty() {
        &[]
    } else {
        &[("authorization", &bearer)]
    };
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = auth.to_vec();
        h.extend_from_slice(extra);
        h
    };
    let invite = format!("/admin-api/namespaces/{}/invite", f.ids.ns);
    // The review's cross-site text/plain POST, to JSON-RPC and to an admin route.
    let rpc = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": f.ids.ctx, "method": "set", "argsJson": {"key": "csrf", "value": "x"}}})
    .to_string();
    for path in ["/jsonrpc", invite.as_str()] {
        let a = f
            .send(raw(
                "POST",
                path,
                &with(&[("host", "127.0.0.1:2528"), ("content-type", "text/plain")]),
                &rpc,
            ))
            .await;
        assert_eq!(a.status, 415, "{path}: {}", a.body);
        let a = f
            .send(raw(
                "POST",
                path,
                &with(&[
                    ("host", "127.0.0.1:2528"),
                    ("origin", "http://evil.example"),
                    ("content-type", "application/json"),
                ]),
                &rpc,
            ))
            .await;
        assert_eq!(a.status, 403, "{path}: {}", a.body);
        assert_eq!(a.body["type"], "ForeignOrigin");
    }
    // DNS rebinding: a foreign Host is refused; configured and loopback ones served.
    let a = f
        .send(raw(
            "GET",
            "/admin-api/contexts",
            &with(&[("host", "attacker.example:2528")]),
            "",
        ))
        .await;
    assert_eq!(a.status, 421, "{}", a.body);
    for host in ["node.example:2528", "localhost:2528", "[::1]:2528"] {
        let a = f
            .send(raw(
                "GET",
                "/admin-api/contexts",
                &with(&[("host", host)]),
                "",
            ))
            .await;
        assert_eq!(a.status, 200, "{host}: {}", a.body);
    }
    // The node's own page, and the allowed origin with CORS answers.
    let from = |origin: &'static str| {
        raw(
            "GET",
            "/admin-api/contexts",
            &with(&[("host", "127.0.0.1:2528"), ("origin", origin)]),
            "",
        )
    };
    let a = f.send(from("http://127.0.0.1:2528")).await;
    assert_eq!(a.status, 200);
    let a = f
        .send(raw(
            "OPTIONS",
            "/jsonrpc",
            &[
                ("host", "127.0.0.1:2528"),
                ("origin", "http://localhost:5173"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            "",
        ))
        .await;
    assert_eq!(a.status, 204);
    assert!(a.header_has("access-control-allow-origin", "http://localhost:5173"));
    assert!(a.header_has("access-control-allow-headers", "authorization"));
    let preflight = [
        ("host", "127.0.0.1:2528"),
        ("origin", "http://localhost:3000"),
        ("access-control-request-method", "POST"),
    ];
    let a = f.send(raw("OPTIONS", "/jsonrpc", &preflight, "")).await;
    assert_eq!(a.status, 403, "an origin not listed gets no preflight");
    let a = f.send(from("http://localhost:5173")).await;
    assert_eq!(a.status, 200);
    assert!(a.header_has("access-control-allow-origin", "http://localhost:5173"));
    assert!(a.header_has("access-control-expose-headers", "x-auth-error"));
    // A WebSocket upgrade from a foreign page.
    let a = f
        .send(raw(
            "GET",
            "/ws",
            &with(&[
                ("host", "127.0.0.1:2528"),
                ("origin", "http://evil.example"),
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ]),
            "",
        ))
        .await;
    assert_eq!(a.status, 403);
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn browser_defences_hold_with_embedded_auth() {
    browser_defences_hold(AuthMode::Embedded).await;
}

#[tokio::test]
async fn browser_defences_hold_in_proxy_mode_too() {
    browser_defences_hold(AuthMode::Proxy).await;
}

/// A client speaking upstream's flows exactly: calimero-client-py's
/// `POST /auth/token` with the user_password provider, its refresh, and
/// upstream meroctl's browser login with a callback URL carrying `state`.
#[tokio::test]
async fn upstream_clients_log_in_refresh_and_are_revoked() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let dir = f._dir.path();
    mero_server::auth::set_password(dir, "alice", "correct horse", vec!["admin".into()]).unwrap();
    // The probe upstream clients use to detect auth.
    assert_eq!(
        f.call("GET", "/admin-api/contexts", None, None)
            .await
            .status,
        401
    );
    let login = |password: &str| {
        json!({"auth_method": "user_password", "public_key": "ed25519:abc", "client_name": "http://127.0.0.1:2528",
            "permissions": ["admin"], "timestamp": 1_700_000_000u64,
            "provider_data": {"username": "alice", "password": password}})
    };
    let a = f
        .call("POST", "/auth/token", None, Some(login("wrong password")))
        .await;
    assert_eq!(a.status, 401);
    assert!(
        a.body["data"].is_null() && a.body["error"].is_string(),
        "{}",
        a.body
    );
    let a = f
        .call("POST", "/auth/token", None, Some(login("correct horse")))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["error"].is_null());
    let access = a.body["data"]["access_token"].as_str().unwrap().to_string();
    let refresh = a.body["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&access), None)
            .await
            .status,
        200
    );
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&refresh), None)
            .await
            .status,
        401,
        "a refresh token is no bearer token"
    );
    let is = f
        .call("GET", "/admin-api/is-authed", Some(&access), None)
        .await;
    assert_eq!(is.body["data"]["status"], "authed");
    // Refresh: a new pair; the refresh token is single-use.
    let body = json!({"access_token": access, "refresh_token": refresh});
    let a = f
        .call("POST", "/auth/refresh", None, Some(body.clone()))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let access2 = a.body["data"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&access2), None)
            .await
            .status,
        200
    );
    let a = f.call("POST", "/auth/refresh", None, Some(body)).await;
    assert_eq!(a.status, 401, "spent: {}", a.body);
    // Revoking the session stops its access token at once.
    let a = f
        .call(
            "POST",
            "/admin-api/auth/revoke",
            Some(&f.root),
            Some(json!({"token": access2})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = f
        .call("GET", "/admin-api/contexts", Some(&access2), None)
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.headers["x-auth-error"], "token_revoked");

    // The browser flow: the page, then its form, then the redirect.
    let callback = "http://127.0.0.1:9080/callback?state=s7a7e";
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("callback-url", callback)
        .append_pair("app-url", "http://127.0.0.1:2528")
        .append_pair("permissions", "admin")
        .finish();
    let page = f.call("GET", &format!("/auth/login?{q}"), None, None).await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    assert!(
        html.contains("name=\"password\"") && html.contains("state=s7a7e"),
        "{html}"
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("callback-url", callback)
        .append_pair("permissions", "admin")
        .append_pair("username", "alice")
        .append_pair("password", "correct horse")
        .finish();
    let a = f
        .send(raw(
            "POST",
            "/auth/login",
            &[
                ("host", "127.0.0.1:2528"),
                ("origin", "http://127.0.0.1:2528"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &form,
        ))
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let location = url::Url::parse(a.headers["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        location.query(),
        Some("state=s7a7e"),
        "the callback's state comes back"
    );
    let tokens: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        f.call(
            "GET",
            "/admin-api/contexts",
            Some(&tokens["access_token"]),
            None
        )
        .await
        .status,
        200
    );
    // Guessing is slowed: after five failures the user's logins wait.
    for _ in 0..5 {
        let a = f
            .call("POST", "/auth/token", None, Some(login("guess")))
            .await;
        assert_eq!(a.status, 401);
    }
    let a = f
        .call("POST", "/auth/token", None, Some(login("correct horse")))
        .await;
    assert_eq!(a.status, 429, "{}", a.body);
    // Tokens never go to a callback elsewhere.
    let evil = form.replace("127.0.0.1%3A9080", "evil.example");
    let a = f
        .send(raw(
            "POST",
            "/auth/login",
            &[
                ("host", "127.0.0.1:2528"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &evil,
        ))
        .await;
    assert_eq!(a.status, 400);
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn scoped_tokens_are_minted_and_key_rotation_retires_old_tokens() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let scoped = format!("context:execute[{}]", f.ids.ctx);
    let a = f
        .call(
            "POST",
            "/admin-api/auth/tokens",
            Some(&f.root),
            Some(json!({"permissions": [scoped], "expires_in_secs": 60})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let t = a.body["data"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&t), None)
            .await
            .status,
        403
    );
    // A token cannot mint more than it has.
    let a = f
        .call(
            "POST",
            "/admin-api/auth/tokens",
            Some(&t),
            Some(json!({"permissions": ["admin"], "expires_in_secs": 60})),
        )
        .await;
    assert_eq!(a.status, 403);
    let list = f.token(&["context:list"]);
    let a = f
        .call(
            "POST",
            "/admin-api/auth/rotate-keys",
            Some(&f.root),
            Some(json!({"retire_previous": false})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&list), None)
            .await
            .status,
        200
    );
    let a = f
        .call(
            "POST",
            "/admin-api/auth/rotate-keys",
            Some(&f.root),
            Some(json!({"retire_previous": true})),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&list), None)
            .await
            .status,
        401
    );
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&f.root), None)
            .await
            .status,
        200
    );
    f.node.shutdown().await.unwrap();
}

async fn install_path(f: &Fixture, path: &Path) -> Answer {
    f.call(
        "POST",
        "/admin-api/install-dev-application",
        Some(&f.root),
        Some(json!({"path": path, "metadata": []})),
    )
    .await
}

#[tokio::test]
async fn path_installs_refuse_fifos_and_never_echo_file_bytes() {
    let root = tempfile::tempdir().unwrap();
    let confined = root.path().to_path_buf();
    let f = fixture(AuthMode::Embedded, move |c| {
        c.server.install_root = Some(confined)
    })
    .await;
    let fifo = root.path().join("app.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let a = install_path(&f, &fifo).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["type"], "NotARegularFile", "{}", a.body);
    let secret = root.path().join("secret.wasm");
    std::fs::write(&secret, b"IS_SECRET=hunter2").unwrap();
    let a = install_path(&f, &secret).await;
    assert_eq!(a.body["type"], "InvalidComponent", "{}", a.body);
    let text = a.body.to_string();
    assert!(
        !text.contains("0x49") && !text.contains("IS_S") && !text.contains("hunter2"),
        "{text}"
    );
    let outside = f._dir.path().join("outside.wasm");
    std::fs::write(&outside, b"\0asm").unwrap();
    let a = install_path(&f, &outside).await;
    assert_eq!(a.status, 403, "{}", a.body);
    // Only a token with the install permission may.
    let t = f.token(&["application:list"]);
    let a = f
        .call(
            "POST",
            "/admin-api/install-dev-application",
            Some(&t),
            Some(json!({"path": secret, "metadata": []})),
        )
        .await;
    assert_eq!(a.status, 403);
    f.node.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- streams

/// The fixture's node served on a loopback port by the accept loop merod
/// runs (a WebSocket upgrade needs a real connection); it stops when this
/// is dropped.
struct Served {
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Fixture {
    async fn serve(&self) -> Served {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(mero_server::serve(
            self.node.clone(),
            vec![listener],
            self.options.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Served { addr, _stop: stop }
    }

    /// The status and headers of a request whose body (an event stream)
    /// is never read.
    async fn head(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:2528");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        let resp = self.app.clone().oneshot(req.unwrap()).await.unwrap();
        (resp.status(), resp.headers().clone())
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws{query}` on `addr` with `headers` (and no others: no
/// `Origin` unless given); the upgrade's status, and the socket if it was
/// upgraded.
async fn ws(
    addr: std::net::SocketAddr,
    query: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<Ws>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
    let mut req = format!("ws://{addr}/ws{query}")
        .into_client_request()
        .unwrap();
    assert!(req.headers().get("origin").is_none());
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, resp)) => (resp.status().as_u16(), Some(socket)),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => (resp.status().as_u16(), None),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// How long a stream may take to answer or to end: generous, never a
/// figure the test relies on.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Sends `request` and returns the reply with its id (events in between
/// are skipped).
async fn ws_ask(socket: &mut Ws, request: Value) -> Value {
    use futures::{SinkExt as _, StreamExt as _};
    let id = request["id"].clone();
    socket
        .send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("no reply in time")
            .expect("the socket ended")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                return v;
            }
        }
    }
}

/// Waits for the node to close `socket`; its close frame.
async fn ws_closed(
    socket: &mut Ws,
) -> Option<tokio_tungstenite::tungstenite::protocol::CloseFrame> {
    use futures::StreamExt as _;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the socket was not closed in time")
        {
            Some(Ok(Message::Close(frame))) => return frame,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

fn subscribe(id: u64, ctx: &str) -> Value {
    json!({"id": id, "method": "subscribe", "params": {"contextIds": [ctx]}})
}

fn ws_execute(id: u64, ctx: &str, method: &str, args: Value) -> Value {
    json!({"id": id, "method": "execute",
        "params": {"contextId": ctx, "method": method, "argsJson": args}})
}

/// An event stream read off a raw socket (`Connection: close`, so the
/// socket ends when the stream does).
struct Sse {
    socket: tokio::net::TcpStream,
    seen: String,
}

impl Sse {
    async fn open(addr: std::net::SocketAddr, query: &str) -> Sse {
        use tokio::io::AsyncWriteExt as _;
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(
                format!("GET /sse?{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut sse = Sse {
            socket,
            seen: String::new(),
        };
        sse.until(|seen, _| seen.contains("\"Session\"")).await;
        assert!(sse.seen.starts_with("HTTP/1.1 200"), "{}", sse.seen);
        sse
    }

    /// Reads until `done(all read so far, at the end)`; fails if it is not
    /// done by the end of the stream or in time.
    async fn until(&mut self, done: impl Fn(&str, bool) -> bool) {
        use tokio::io::AsyncReadExt as _;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut buf = [0u8; 4096];
        while !done(&self.seen, false) {
            let n = tokio::time::timeout_at(deadline, self.socket.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("not done in time; read: {}", self.seen))
                .unwrap_or(0);
            if n == 0 {
                assert!(done(&self.seen, true), "ended first; read: {}", self.seen);
                return;
            }
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// Waits for the stream to end, with `needle` in what it sent last.
    async fn ends_saying(&mut self, needle: &str) {
        let start = self.seen.len();
        self.until(|seen, end| end && seen[start..].contains(needle))
            .await;
    }
}

#[tokio::test]
async fn websocket_upgrades_need_a_token_and_an_allowed_or_absent_origin() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let served = f.serve().await;
    let addr = served.addr;
    let bearer = format!("Bearer {}", f.root);
    let query = format!("?token={}", f.root);
    let own = format!("http://{addr}");
    assert_eq!(ws(addr, "", &[]).await.0, 401, "no token");
    assert_eq!(ws(addr, "?token=not.a.token", &[]).await.0, 401);
    // Not a browser (no Origin), with the token in the upgrade's header or
    // in the query.
    assert_eq!(ws(addr, "", &[("authorization", &bearer)]).await.0, 101);
    assert_eq!(ws(addr, &query, &[]).await.0, 101);
    assert_eq!(
        ws(addr, &query, &[("origin", &own)]).await.0,
        101,
        "the node's own page"
    );
    let foreign = ("origin", "http://evil.example");
    let a = ws(addr, "", &[("authorization", &bearer), foreign]).await;
    assert_eq!(a.0, 403, "a foreign page, even with a token");
    assert_eq!(ws(addr, &query, &[foreign]).await.0, 403);
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn event_streams_need_a_token_in_the_header_or_the_query() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let (status, headers) = f.head("GET", "/sse", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(headers["x-auth-error"], "missing_token");
    assert_eq!(
        f.head("GET", "/sse?token=not.a.token", None, None).await.0,
        401
    );
    let (status, headers) = f.head("GET", "/sse", Some(&f.root), None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (status, headers) = f
        .head("GET", &format!("/sse?token={}", f.root), None, None)
        .await;
    assert_eq!(status, 200);
    let session = headers["x-sse-session-id"].to_str().unwrap().to_string();
    let change = json!({"sessionId": session, "contextIds": [f.ids.ctx]});
    let (status, _) = f
        .head("POST", "/sse/subscription", None, Some(change.clone()))
        .await;
    assert_eq!(status, 401);
    let (status, _) = f
        .head("POST", "/sse/subscription", Some(&f.root), Some(change))
        .await;
    assert_eq!(status, 200);
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_for_another_context_may_not_subscribe_or_call_over_ws_or_sse() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let served = f.serve().await;
    let ctx = f.ids.ctx.clone();
    let mine = f.token(&[&format!("context:execute[{ctx}]")]);
    let elsewhere = f.token(&[
        "context:execute[11111111111111111111111111111111]",
        "context:list[11111111111111111111111111111111]",
    ]);
    let (status, socket) = ws(served.addr, &format!("?token={elsewhere}"), &[]).await;
    assert_eq!(status, 101, "a valid token opens the socket");
    let mut socket = socket.unwrap();
    let a = ws_ask(&mut socket, subscribe(1, &ctx)).await;
    assert_eq!(a["error"]["type"], "Unauthorized", "{a}");
    let a = ws_ask(&mut socket, ws_execute(2, &ctx, "get", json!({"key": "k"}))).await;
    assert!(a["error"].is_object() && a.get("result").is_none(), "{a}");
    let a = ws_ask(
        &mut socket,
        ws_execute(3, &ctx, "set", json!({"key": "k", "value": "v"})),
    )
    .await;
    assert!(a["error"].is_object(), "{a}");
    // The context's own token may, on the same terms.
    let (_, socket) = ws(served.addr, &format!("?token={mine}"), &[]).await;
    let mut socket = socket.unwrap();
    let a = ws_ask(&mut socket, subscribe(1, &ctx)).await;
    assert_eq!(a["result"]["contextIds"][0], ctx.as_str(), "{a}");
    let a = ws_ask(
        &mut socket,
        ws_execute(2, &ctx, "set", json!({"key": "k", "value": "v"})),
    )
    .await;
    assert!(a["error"].is_null(), "{a}");
    // SSE: opening with the context, and adding it to a session.
    let open = format!("/sse?contextIds={ctx}");
    assert_eq!(f.head("GET", &open, Some(&elsewhere), None).await.0, 403);
    let (status, headers) = f.head("GET", &open, Some(&mine), None).await;
    assert_eq!(status, 200);
    let session = headers["x-sse-session-id"].to_str().unwrap().to_string();
    let change = json!({"sessionId": session, "contextIds": [ctx]});
    let (status, _) = f
        .head(
            "POST",
            "/sse/subscription",
            Some(&elsewhere),
            Some(change.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = f
        .head("POST", "/sse/subscription", Some(&mine), Some(change))
        .await;
    assert_eq!(status, 200);
    f.node.shutdown().await.unwrap();
}

/// A WebSocket and an event stream opened with `token` on the fixture's
/// context, each shown to be live.
async fn streams(f: &Fixture, served: &Served, token: &str) -> (Ws, Sse) {
    let (status, socket) = ws(served.addr, &format!("?token={token}"), &[]).await;
    assert_eq!(status, 101);
    let mut socket = socket.unwrap();
    let a = ws_ask(&mut socket, subscribe(1, &f.ids.ctx)).await;
    assert!(a["error"].is_null(), "{a}");
    let sse = Sse::open(
        served.addr,
        &format!("contextIds={}&token={token}", f.ids.ctx),
    )
    .await;
    (socket, sse)
}

#[tokio::test]
async fn revoking_a_token_ends_its_websocket_and_its_event_stream() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let served = f.serve().await;
    let scope = format!("context:execute[{}]", f.ids.ctx);
    let token = f.token(&[&scope]);
    let (mut socket, mut sse) = streams(&f, &served, &token).await;
    // Another token's revocation leaves them open: the socket still answers
    // and the stream still carries the context's events.
    let other = f.token(&[&scope]);
    let revoke = |t: &str| json!({"token": t});
    let a = f
        .call(
            "POST",
            "/admin-api/auth/revoke",
            Some(&f.root),
            Some(revoke(&other)),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = ws_ask(
        &mut socket,
        ws_execute(2, &f.ids.ctx, "set", json!({"key": "k", "value": "v"})),
    )
    .await;
    assert!(a["error"].is_null(), "{a}");
    sse.until(|seen, _| seen.contains("StateMutation")).await;
    // Its own revocation ends both.
    let a = f
        .call(
            "POST",
            "/admin-api/auth/revoke",
            Some(&f.root),
            Some(revoke(&token)),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let frame = ws_closed(&mut socket).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008, "policy");
    assert!(
        frame.reason.starts_with("token_revoked"),
        "{}",
        frame.reason
    );
    sse.ends_saying("token_revoked").await;
    assert_eq!(
        ws(served.addr, &format!("?token={token}"), &[]).await.0,
        401
    );
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_expiring_token_ends_its_websocket_and_its_event_stream() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let served = f.serve().await;
    let scope = format!("context:execute[{}]", f.ids.ctx);
    // Two seconds of life: enough to open both, soon over.
    let token = f.auth.mint_token("brief", &[scope], 2).unwrap();
    let (mut socket, mut sse) = streams(&f, &served, &token).await;
    let frame = ws_closed(&mut socket).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008, "policy");
    assert!(
        frame.reason.starts_with("token_expired"),
        "{}",
        frame.reason
    );
    sse.ends_saying("token_expired").await;
    f.node.shutdown().await.unwrap();
}
