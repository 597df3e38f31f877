//! The node's HTTP API on one listener: `/admin-api/*` (REST), `/jsonrpc`,
//! events over `/ws` (WebSocket) and `/sse` (server-sent events), and the
//! OpenAPI document at `/admin-api/openapi.json` (also checked in as
//! `host/server/openapi.json`), and the node dashboard at `/admin-dashboard`
//! ([`dashboard`]). Handlers are thin: they decode the wire
//! format, call [`mero_node::Node`] and encode the answer.
//!
//! Around the handlers, in this order: [`listen`] accepts connections
//! within limits; [`browser`] refuses what a web page on this machine must
//! not do (foreign `Host` or `Origin`, non-JSON bodies) and answers CORS;
//! [`auth`] checks the bearer token and each route's permission (or trusts
//! a proxy, in `proxy` mode) and serves the login routes. [`install`] reads
//! components by path for `install-dev-application`.
//!
//! It may use only [`mero_node`] (and the engine types it re-exports),
//! [`mero_api`] and [`mero_config`]: no store, runtime, executor or crdt
//! crate, and no decision of who may do what beyond the token's
//! permissions (governance answers that, in the node).

mod admin;
pub mod auth;
mod blobs;
mod browser;
mod chains;
mod contexts;
mod dashboard;
mod error;
mod groups;
mod identity;
mod install;
mod jsonrpc;
mod listen;
mod metadata;
mod relayer;
mod sse;
mod upgrade;
mod ws;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use mero_config::{AuthMode, ConfigFile};
use mero_node::Node;
use tokio::net::TcpListener;
use utoipa::OpenApi;

pub use auth::{Auth, AuthError};
pub use browser::WebPolicy;
pub use error::ApiError;
pub use listen::Limits;

/// Largest request body: a component upload.
const MAX_BODY: usize = mero_node::MAX_COMPONENT_BYTES + (1 << 20);

/// The OpenAPI document of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mero node API",
        description = "Admin REST and JSON-RPC of a context node, in the upstream wire format."
    ),
    paths(
        admin::health,
        admin::install_dev_application,
        admin::install_application,
        admin::list_applications,
        admin::get_application,
        admin::delete_application,
        admin::create_namespace,
        admin::list_namespaces,
        admin::get_namespace,
        admin::delete_namespace,
        metadata::get_group,
        metadata::set_group,
        metadata::get_member,
        metadata::set_member,
        metadata::get_context,
        metadata::set_context,
        admin::create_context,
        admin::list_contexts,
        admin::get_context,
        admin::delete_context,
        admin::create_context_alias,
        admin::lookup_context_alias,
        admin::delete_context_alias,
        admin::list_context_aliases,
        admin::peers,
        admin::invite,
        admin::join_namespace,
        admin::join_context,
        admin::group_members,
        admin::group_contexts,
        admin::set_member_role,
        admin::set_member_capabilities,
        admin::get_member_capabilities,
        admin::remove_members,
        admin::create_group,
        admin::leave_namespace,
        admin::list_groups,
        admin::add_group_members,
        admin::set_group_visibility,
        admin::sync_context,
        admin::sync_all,
        groups::set_auto_follow,
        groups::get_group,
        groups::list_subgroups,
        groups::namespaces_for_application,
        chains::challenge,
        chains::prove,
        chains::list,
        chains::set_namespace_protocol,
        chains::set_context_protocol,
        chains::protocols,
        relayer::balance,
        relayer::attest,
        relayer::verify,
        relayer::list,
        contexts::identities,
        contexts::identities_owned,
        contexts::storage,
        contexts::state,
        contexts::leave,
        identity::identity,
        identity::context_identity,
        identity::network_status,
        identity::node_info,
        blobs::upload,
        blobs::list,
        blobs::download,
        blobs::info,
        blobs::delete,
        upgrade::upgrade_group,
        upgrade::upgrade_status,
        upgrade::retry_upgrade,
        upgrade::cascade_status,
        upgrade::migration_status,
        upgrade::abort_migration,
        upgrade::resync_context,
        upgrade::application_versions,
        jsonrpc::handle,
        auth::login::token,
        auth::login::refresh,
        auth::manage::create,
        auth::manage::revoke,
        auth::manage::rotate,
        auth::manage::is_authed,
        openapi,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Documents the bearer scheme every route but the public ones needs.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An HS256 JWT from `POST /auth/token`, `meroctl token create` or the \
                         node's root credential (`<node>/credential.json`). WebSocket and SSE \
                         also take it as `?token=`. Public routes: health, is-authed, /auth/*.",
                    ))
                    .build(),
            ),
        );
        // Public routes need no token: an empty requirement overrides the
        // document's default.
        for (_, path, need) in auth::routes::TABLE {
            if *need != auth::routes::Need::Public {
                continue;
            }
            if let Some(item) = doc.paths.paths.get_mut(*path) {
                for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                    op.security = Some(vec![
                        utoipa::openapi::security::SecurityRequirement::default(),
                    ]);
                }
            }
        }
    }
}

/// The OpenAPI document as pretty JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// This document; any valid token may read it.
#[utoipa::path(get, path = "/admin-api/openapi.json", tag = "admin",
    responses((status = 200, description = "This document, as JSON")))]
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found("RouteNotFound", format!("no route {}", uri.path()))
}

/// How the server guards and limits itself, from the node's configuration.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Token checks (or none, in proxy mode).
    pub auth: Auth,
    /// Browser defences.
    pub web: WebPolicy,
    /// Connection limits.
    pub limits: Limits,
    /// Where path installs may read, if confined.
    pub install_root: Option<PathBuf>,
    /// `execute` calls one WebSocket may have running.
    pub ws_max_in_flight: usize,
}

impl ServerOptions {
    /// The options of the node in `node_dir` with `config`; opens (and on
    /// first use makes) its auth keys in embedded mode.
    pub fn from_config(node_dir: &Path, config: &ConfigFile) -> Result<ServerOptions, AuthError> {
        let s = &config.server;
        let auth = Auth::open(s.auth_mode, node_dir, s.auth.clone())?;
        let mut hosts = s.allowed_hosts.clone();
        for addr in config.server_addrs().unwrap_or_default() {
            if !addr.ip().is_unspecified() {
                hosts.push(addr.ip().to_string());
            }
        }
        Ok(ServerOptions {
            auth,
            web: WebPolicy::new(&hosts, &s.allowed_origins),
            limits: Limits {
                max_connections: s.limits.max_connections.max(1),
                header_read_timeout: Duration::from_millis(s.limits.header_read_timeout_ms.max(1)),
            },
            install_root: s.install_root.clone(),
            ws_max_in_flight: s.limits.ws_max_in_flight.max(1),
        })
    }

    /// Whether the node checks no credentials itself.
    pub fn is_proxy(&self) -> bool {
        self.auth.mode() == AuthMode::Proxy
    }
}

/// What handlers share: the node, the SSE sessions, auth and options.
#[derive(Clone)]
struct AppState {
    node: Node,
    sessions: sse::Sessions,
    auth: Auth,
    install_root: Option<PathBuf>,
    ws_max_in_flight: usize,
}

impl axum::extract::FromRef<AppState> for Auth {
    fn from_ref(s: &AppState) -> Auth {
        s.auth.clone()
    }
}

impl axum::extract::FromRef<AppState> for Node {
    fn from_ref(s: &AppState) -> Node {
        s.node.clone()
    }
}

impl axum::extract::FromRef<AppState> for sse::Sessions {
    fn from_ref(s: &AppState) -> sse::Sessions {
        s.sessions.clone()
    }
}

/// Unix milliseconds now.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Every route, over `node`, guarded as `options` say.
pub fn router(node: Node, options: &ServerOptions) -> Router {
    Router::new()
        .route("/admin-api/health", get(admin::health))
        .route("/admin-api/is-authed", get(auth::manage::is_authed))
        .route("/auth/token", post(auth::login::token))
        .route("/auth/refresh", post(auth::login::refresh))
        .route(
            "/auth/login",
            get(auth::login::login_page).post(auth::login::login_submit),
        )
        .route("/admin-api/auth/tokens", post(auth::manage::create))
        .route("/admin-api/auth/revoke", post(auth::manage::revoke))
        .route("/admin-api/auth/rotate-keys", post(auth::manage::rotate))
        .route("/admin-api/openapi.json", get(openapi))
        .route(
            "/admin-api/install-dev-application",
            post(admin::install_dev_application),
        )
        .route(
            "/admin-api/install-application",
            post(admin::install_application),
        )
        .route("/admin-api/applications", get(admin::list_applications))
        .route(
            "/admin-api/applications/{id}",
            get(admin::get_application).delete(admin::delete_application),
        )
        .route(
            "/admin-api/namespaces",
            post(admin::create_namespace).get(admin::list_namespaces),
        )
        .route(
            "/admin-api/namespaces/{id}",
            get(admin::get_namespace).delete(admin::delete_namespace),
        )
        .route(
            "/admin-api/contexts",
            post(admin::create_context).get(admin::list_contexts),
        )
        .route(
            "/admin-api/contexts/{id}",
            get(admin::get_context).delete(admin::delete_context),
        )
        .route(
            "/admin-api/alias/create/context",
            post(admin::create_context_alias),
        )
        .route(
            "/admin-api/alias/lookup/context/{name}",
            post(admin::lookup_context_alias),
        )
        .route(
            "/admin-api/alias/delete/context/{name}",
            post(admin::delete_context_alias),
        )
        .route(
            "/admin-api/alias/list/context",
            get(admin::list_context_aliases),
        )
        .route(
            "/admin-api/groups/{id}/metadata",
            get(metadata::get_group).put(metadata::set_group),
        )
        .route(
            "/admin-api/groups/{id}/members/{account}/metadata",
            get(metadata::get_member).put(metadata::set_member),
        )
        .route(
            "/admin-api/groups/{id}/contexts/{context}/metadata",
            get(metadata::get_context).put(metadata::set_context),
        )
        .route("/admin-api/peers", get(admin::peers))
        .route("/admin-api/namespaces/{id}/invite", post(admin::invite))
        .route(
            "/admin-api/namespaces/{id}/join",
            post(admin::join_namespace),
        )
        .route("/admin-api/contexts/{id}/join", post(admin::join_context))
        .route("/admin-api/contexts/sync/{id}", post(admin::sync_context))
        .route("/admin-api/contexts/sync", post(admin::sync_all))
        .route(
            "/admin-api/groups/{id}/contexts",
            get(admin::group_contexts),
        )
        .route(
            "/admin-api/groups/{id}/members/{account}/role",
            axum::routing::put(admin::set_member_role),
        )
        .route(
            "/admin-api/groups/{id}/members/{account}/capabilities",
            axum::routing::put(admin::set_member_capabilities).get(admin::get_member_capabilities),
        )
        .route("/admin-api/groups/{id}", get(groups::get_group))
        .route(
            "/admin-api/groups/{id}/subgroups",
            get(groups::list_subgroups),
        )
        .route(
            "/admin-api/namespaces/for-application/{app}",
            get(groups::namespaces_for_application),
        )
        .route(
            "/admin-api/contexts/{id}/identities",
            get(contexts::identities),
        )
        .route(
            "/admin-api/contexts/{id}/identities-owned",
            get(contexts::identities_owned),
        )
        .route("/admin-api/contexts/{id}/storage", get(contexts::storage))
        .route("/admin-api/contexts/{id}/state", get(contexts::state))
        .route("/admin-api/contexts/{id}/leave", post(contexts::leave))
        .route("/admin-api/identity", get(identity::identity))
        .route(
            "/admin-api/identity/context",
            post(identity::context_identity),
        )
        .route("/admin-api/network/status", get(identity::network_status))
        .route("/admin-api/node-info", get(identity::node_info))
        .route(dashboard::PREFIX, get(dashboard::redirect))
        .route("/admin-dashboard/", get(dashboard::index))
        .route("/admin-dashboard/{*file}", get(dashboard::file))
        .route(
            "/admin-api/blobs",
            axum::routing::put(blobs::upload).get(blobs::list),
        )
        .route(
            "/admin-api/blobs/{id}",
            get(blobs::download).head(blobs::info).delete(blobs::delete),
        )
        .route(
            "/admin-api/groups/{id}/members/{account}/auto-follow",
            axum::routing::put(groups::set_auto_follow),
        )
        .route(
            "/admin-api/groups/{id}/members/remove",
            post(admin::remove_members),
        )
        .route(
            "/admin-api/namespaces/{id}/leave",
            post(admin::leave_namespace),
        )
        .route(
            "/admin-api/namespaces/{id}/chain-challenge",
            post(chains::challenge),
        )
        .route(
            "/admin-api/namespaces/{id}/chain-identities",
            post(chains::prove).get(chains::list),
        )
        .route(
            "/admin-api/namespaces/{id}/protocol",
            axum::routing::put(chains::set_namespace_protocol),
        )
        .route(
            "/admin-api/contexts/{id}/protocol",
            axum::routing::put(chains::set_context_protocol),
        )
        .route("/admin-api/protocols", get(chains::protocols))
        .route("/admin-api/chains/{chain}/balance", post(relayer::balance))
        .route("/admin-api/chains/{chain}/attest", post(relayer::attest))
        .route("/admin-api/attestations/verify", post(relayer::verify))
        .route(
            "/admin-api/namespaces/{id}/attestations",
            get(relayer::list),
        )
        .route(
            "/admin-api/namespaces/{id}/groups",
            post(admin::create_group).get(admin::list_groups),
        )
        .route(
            "/admin-api/groups/{id}/members",
            get(admin::group_members).post(admin::add_group_members),
        )
        .route(
            "/admin-api/groups/{id}/settings/subgroup-visibility",
            axum::routing::put(admin::set_group_visibility),
        )
        .route(
            "/admin-api/groups/{id}/upgrade",
            post(upgrade::upgrade_group),
        )
        .route(
            "/admin-api/groups/{id}/upgrade/status",
            get(upgrade::upgrade_status),
        )
        .route(
            "/admin-api/groups/{id}/upgrade/retry",
            post(upgrade::retry_upgrade),
        )
        .route(
            "/admin-api/groups/{id}/cascade-status",
            get(upgrade::cascade_status),
        )
        .route(
            "/admin-api/groups/{id}/migration-status",
            get(upgrade::migration_status),
        )
        .route(
            "/admin-api/groups/{id}/migration/abort",
            post(upgrade::abort_migration),
        )
        .route(
            "/admin-api/contexts/{id}/resync",
            post(upgrade::resync_context),
        )
        .route(
            "/admin-api/applications/{id}/versions",
            get(upgrade::application_versions),
        )
        .route("/jsonrpc", post(jsonrpc::handle))
        .route("/ws", get(ws::handle))
        .route("/sse", get(sse::open))
        .route("/sse/subscription", post(sse::change))
        .fallback(not_found)
        // The last layer runs first: browser defences, then auth.
        .layer(from_fn_with_state(
            options.auth.clone(),
            auth::routes::check,
        ))
        .layer(from_fn_with_state(options.web.clone(), browser::guard))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState {
            node,
            sessions: sse::Sessions::default(),
            auth: options.auth.clone(),
            install_root: options.install_root.clone(),
            ws_max_in_flight: options.ws_max_in_flight,
        })
}

/// Serves `node` on every listener until `shutdown` resolves; requests in
/// flight then finish.
pub async fn serve(
    node: Node,
    listeners: Vec<TcpListener>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(node, &options);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for listener in listeners {
        tasks.push(tokio::spawn(listen::serve(
            listener,
            app.clone(),
            options.limits,
            rx.clone(),
        )));
    }
    shutdown.await;
    let _ = tx.send(true);
    for t in tasks {
        t.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
