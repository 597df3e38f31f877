//! The node's HTTP API on one listener: `/admin-api/*` (REST), `/jsonrpc`,
//! events over `/ws` (WebSocket) and `/sse` (server-sent events), and the
//! OpenAPI document at `/admin-api/openapi.json` (also checked in as
//! `host/server/openapi.json`). Handlers are thin: they decode the wire
//! format, call [`mero_node::Node`] and encode the answer.

mod admin;
mod error;
mod jsonrpc;
mod sse;
mod upgrade;
mod ws;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use mero_node::Node;
use tokio::net::TcpListener;
use utoipa::OpenApi;

pub use error::ApiError;

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
        upgrade::upgrade_group,
        upgrade::upgrade_status,
        upgrade::retry_upgrade,
        upgrade::application_versions,
        jsonrpc::handle,
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found("RouteNotFound", format!("no route {}", uri.path()))
}

/// What handlers share: the node, and the SSE sessions.
#[derive(Clone)]
struct AppState {
    node: Node,
    sessions: sse::Sessions,
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

/// Every route, over `node`.
pub fn router(node: Node) -> Router {
    Router::new()
        .route("/admin-api/health", get(admin::health))
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
        .route(
            "/admin-api/groups/{id}/members/remove",
            post(admin::remove_members),
        )
        .route(
            "/admin-api/namespaces/{id}/leave",
            post(admin::leave_namespace),
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
            "/admin-api/applications/{id}/versions",
            get(upgrade::application_versions),
        )
        .route("/jsonrpc", post(jsonrpc::handle))
        .route("/ws", get(ws::handle))
        .route("/sse", get(sse::open))
        .route("/sse/subscription", post(sse::change))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState {
            node,
            sessions: sse::Sessions::default(),
        })
}

/// Serves `node` on every listener until `shutdown` resolves; requests in
/// flight then finish.
pub async fn serve(
    node: Node,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(node);
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for listener in listeners {
        let mut rx = tx.subscribe();
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.recv().await;
                })
                .await
        }));
    }
    shutdown.await;
    let _ = tx.send(());
    for t in tasks {
        t.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
