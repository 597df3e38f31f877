//! Which permission each route needs, and the layer that checks it.
//!
//! [`TABLE`] names every route with its method and permission template
//! (`{id}` is the route's parameter). A route missing from it needs
//! `admin`, so a new route is never open by mistake; a test checks every
//! route of `openapi.json` against it. `/jsonrpc`, `/ws` and `/sse` need a
//! valid token here and check each call's or subscription's context
//! themselves; `/admin-api/openapi.json` needs any valid token (the map of
//! the API is for its users, not for whoever can reach the port).

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mero_config::AuthMode;

use super::{Auth, AuthError, Grants, Permission};

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Nothing: answered to anyone.
    Public,
    /// A valid token; the handler checks the rest.
    Token,
    /// A token covering this permission (`{name}` filled from the path).
    Perm(&'static str),
}

/// Every route: method, path as the router names it, what it needs.
#[rustfmt::skip]
pub(crate) const TABLE: &[(&str, &str, Need)] = &[
    ("GET", "/admin-api/health", Need::Public),
    ("GET", "/admin-api/is-authed", Need::Public),
    ("GET", "/admin-api/openapi.json", Need::Token),
    ("POST", "/auth/token", Need::Public),
    ("POST", "/auth/refresh", Need::Public),
    ("GET", "/auth/login", Need::Public),
    ("POST", "/auth/login", Need::Public),
    // The dashboard's files: public code, no secrets; what it shows comes
    // from the routes below, with a token (see `dashboard`).
    ("GET", "/admin-dashboard", Need::Public),
    ("GET", "/admin-dashboard/", Need::Public),
    ("GET", "/admin-dashboard/{*file}", Need::Public),
    ("POST", "/admin-api/auth/tokens", Need::Perm("keys:create")),
    ("POST", "/admin-api/auth/revoke", Need::Perm("keys:delete")),
    ("POST", "/admin-api/auth/rotate-keys", Need::Perm("keys:rotate")),
    ("POST", "/admin-api/install-dev-application", Need::Perm("application:install")),
    ("POST", "/admin-api/install-application", Need::Perm("application:install")),
    ("GET", "/admin-api/applications", Need::Perm("application:list")),
    ("GET", "/admin-api/applications/{id}", Need::Perm("application:list[{id}]")),
    ("DELETE", "/admin-api/applications/{id}", Need::Perm("application:uninstall[{id}]")),
    ("POST", "/admin-api/namespaces", Need::Perm("namespace:create")),
    ("GET", "/admin-api/namespaces", Need::Perm("namespace:list")),
    ("GET", "/admin-api/namespaces/{id}", Need::Perm("namespace:list[{id}]")),
    ("DELETE", "/admin-api/namespaces/{id}", Need::Perm("namespace:delete[{id}]")),
    ("POST", "/admin-api/namespaces/{id}/invite", Need::Perm("namespace:invite[{id}]")),
    ("POST", "/admin-api/namespaces/{id}/join", Need::Perm("namespace:join[{id}]")),
    ("POST", "/admin-api/namespaces/{id}/leave", Need::Perm("namespace:leave[{id}]")),
    ("POST", "/admin-api/namespaces/{id}/chain-challenge", Need::Perm("namespace:chain[{id}]")),
    ("POST", "/admin-api/namespaces/{id}/chain-identities", Need::Perm("namespace:chain[{id}]")),
    ("GET", "/admin-api/namespaces/{id}/chain-identities", Need::Perm("namespace:list[{id}]")),
    ("PUT", "/admin-api/namespaces/{id}/protocol", Need::Perm("namespace:protocol[{id}]")),
    ("PUT", "/admin-api/contexts/{id}/protocol", Need::Perm("context:protocol[{id}]")),
    ("GET", "/admin-api/protocols", Need::Perm("context:list")),
    // The operator's RPC endpoint answers and the node's key signs.
    ("POST", "/admin-api/chains/{chain}/balance", Need::Perm("admin")),
    ("POST", "/admin-api/chains/{chain}/attest", Need::Perm("admin")),
    ("POST", "/admin-api/attestations/verify", Need::Perm("admin")),
    ("GET", "/admin-api/namespaces/{id}/attestations", Need::Perm("namespace:list[{id}]")),
    ("POST", "/admin-api/namespaces/{id}/groups", Need::Perm("group:create[{id}]")),
    ("GET", "/admin-api/namespaces/{id}/groups", Need::Perm("group:list[{id}]")),
    ("POST", "/admin-api/contexts", Need::Perm("context:create")),
    ("GET", "/admin-api/contexts", Need::Perm("context:list")),
    ("GET", "/admin-api/contexts/{id}", Need::Perm("context:list[{id}]")),
    ("DELETE", "/admin-api/contexts/{id}", Need::Perm("context:delete[{id}]")),
    ("POST", "/admin-api/contexts/{id}/join", Need::Perm("context:join[{id}]")),
    ("POST", "/admin-api/contexts/sync/{id}", Need::Perm("context:sync[{id}]")),
    ("POST", "/admin-api/contexts/sync", Need::Perm("context:sync")),
    ("POST", "/admin-api/alias/create/context", Need::Perm("context:alias:create")),
    ("POST", "/admin-api/alias/lookup/context/{name}", Need::Perm("context:alias:lookup")),
    ("POST", "/admin-api/alias/delete/context/{name}", Need::Perm("context:alias:delete")),
    ("GET", "/admin-api/alias/list/context", Need::Perm("context:alias:list")),
    ("GET", "/admin-api/peers", Need::Perm("network:peers")),
    ("GET", "/admin-api/groups/{id}/metadata", Need::Perm("group:list[{id}]")),
    ("PUT", "/admin-api/groups/{id}/metadata", Need::Perm("group:manage[{id}]")),
    ("GET", "/admin-api/groups/{id}/members/{account}/metadata", Need::Perm("group:list[{id}]")),
    ("PUT", "/admin-api/groups/{id}/members/{account}/metadata", Need::Perm("group:manage[{id}]")),
    ("GET", "/admin-api/groups/{id}/contexts/{context}/metadata", Need::Perm("group:list[{id}]")),
    ("PUT", "/admin-api/groups/{id}/contexts/{context}/metadata", Need::Perm("group:manage[{id}]")),
    ("GET", "/admin-api/groups/{id}/contexts", Need::Perm("group:list[{id}]")),
    ("GET", "/admin-api/groups/{id}/members", Need::Perm("group:list[{id}]")),
    ("POST", "/admin-api/groups/{id}/members", Need::Perm("group:manage[{id}]")),
    ("POST", "/admin-api/groups/{id}/members/remove", Need::Perm("group:manage[{id}]")),
    ("PUT", "/admin-api/groups/{id}/members/{account}/role", Need::Perm("group:manage[{id}]")),
    ("PUT", "/admin-api/groups/{id}/members/{account}/capabilities", Need::Perm("group:manage[{id}]")),
    ("GET", "/admin-api/groups/{id}/members/{account}/capabilities", Need::Perm("group:list[{id}]")),
    ("PUT", "/admin-api/groups/{id}/members/{account}/auto-follow", Need::Perm("group:manage[{id}]")),
    ("GET", "/admin-api/groups/{id}", Need::Perm("group:list[{id}]")),
    ("GET", "/admin-api/groups/{id}/subgroups", Need::Perm("group:list[{id}]")),
    ("GET", "/admin-api/namespaces/for-application/{app}", Need::Perm("namespace:list")),
    ("GET", "/admin-api/contexts/{id}/identities", Need::Perm("context:list[{id}]")),
    ("GET", "/admin-api/contexts/{id}/identities-owned", Need::Perm("context:list[{id}]")),
    ("GET", "/admin-api/contexts/{id}/storage", Need::Perm("context:list[{id}]")),
    // Reading the whole state is as much as calling every method.
    ("GET", "/admin-api/contexts/{id}/state", Need::Perm("context:execute[{id}]")),
    ("POST", "/admin-api/contexts/{id}/leave", Need::Perm("context:leave[{id}]")),
    ("GET", "/admin-api/identity", Need::Perm("namespace:list")),
    ("POST", "/admin-api/identity/context", Need::Perm("context:execute")),
    // Upstream keeps the swarm's view to the node's operator.
    ("GET", "/admin-api/network/status", Need::Perm("admin")),
    ("GET", "/admin-api/node-info", Need::Perm("admin")),
    ("PUT", "/admin-api/blobs", Need::Perm("blob:add:stream")),
    ("GET", "/admin-api/blobs", Need::Perm("blob:list")),
    ("GET", "/admin-api/blobs/{id}", Need::Perm("blob:get[{id}]")),
    ("HEAD", "/admin-api/blobs/{id}", Need::Perm("blob:get[{id}]")),
    ("DELETE", "/admin-api/blobs/{id}", Need::Perm("blob:remove[{id}]")),
    ("PUT", "/admin-api/groups/{id}/settings/subgroup-visibility", Need::Perm("group:manage[{id}]")),
    ("POST", "/admin-api/groups/{id}/upgrade", Need::Perm("group:upgrade[{id}]")),
    ("GET", "/admin-api/groups/{id}/upgrade/status", Need::Perm("group:list[{id}]")),
    ("POST", "/admin-api/groups/{id}/upgrade/retry", Need::Perm("group:upgrade[{id}]")),
    ("GET", "/admin-api/groups/{id}/cascade-status", Need::Perm("group:list[{id}]")),
    ("GET", "/admin-api/groups/{id}/migration-status", Need::Perm("group:list[{id}]")),
    ("POST", "/admin-api/groups/{id}/migration/abort", Need::Perm("group:upgrade[{id}]")),
    ("POST", "/admin-api/contexts/{id}/resync", Need::Perm("context:sync[{id}]")),
    ("GET", "/admin-api/applications/{id}/versions", Need::Perm("application:list[{id}]")),
    ("POST", "/jsonrpc", Need::Token),
    ("GET", "/ws", Need::Token),
    ("GET", "/sse", Need::Token),
    ("POST", "/sse/subscription", Need::Token),
];

/// What `method` on the route `matched` needs; unlisted routes need admin.
pub(crate) fn need(method: &Method, matched: &str) -> Need {
    TABLE
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == matched)
        .map_or(Need::Perm("admin"), |(_, _, n)| *n)
}

/// The permission a template names for a request to `path` on route
/// `matched`: each `{name}` of the template takes the path segment that
/// stands where the route has `{name}`.
pub(crate) fn instantiate(template: &str, matched: &str, path: &str) -> Permission {
    let mut filled = template.to_string();
    for (pattern, actual) in matched.split('/').zip(path.split('/')) {
        if pattern.starts_with('{') && pattern.ends_with('}') {
            filled = filled.replace(pattern, actual);
        }
    }
    // The template is ours and well formed; a path segment with `[`, `]` or
    // `,` in it cannot name a resource, so it fails closed to admin.
    Permission::parse(&filled).unwrap_or_else(|_| Permission::admin())
}

/// The bearer token of a request: `Authorization: Bearer`, or `?token=` on
/// the event routes (browsers cannot set headers on a WebSocket or an
/// EventSource).
fn bearer(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get(axum::http::header::AUTHORIZATION) {
        return v
            .to_str()
            .ok()
            .and_then(|s| {
                s.strip_prefix("Bearer ")
                    .or_else(|| s.strip_prefix("bearer "))
            })
            .map(|s| s.trim().to_string());
    }
    let path = req.uri().path();
    if path == "/ws" || path == "/sse" {
        return req.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        });
    }
    None
}

/// The layer: authenticates the request, checks its route's permission and
/// hands the grants on to the handler (as an extension).
pub(crate) async fn check(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    if auth.mode() == AuthMode::Proxy {
        req.extensions_mut().insert(Grants::admin("proxy"));
        return next.run(req).await;
    }
    // An unknown path needs a token too, so that 404s tell strangers nothing.
    let need = matched
        .as_deref()
        .map_or(Need::Token, |m| need(req.method(), m));
    if need == Need::Public {
        return next.run(req).await;
    }
    let grants = match bearer(&req) {
        None => return AuthError::Missing.into_response(),
        Some(t) => match auth.authenticate(&t) {
            Ok(g) => g,
            Err(e) => return e.into_response(),
        },
    };
    if let (Need::Perm(template), Some(m)) = (need, matched.as_deref()) {
        let required = instantiate(template, m, req.uri().path());
        if !grants.allows(&required) {
            return AuthError::Forbidden(required.to_string()).into_response();
        }
    }
    req.extensions_mut().insert(grants);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_their_route_parameters() {
        let p = instantiate(
            "group:manage[{id}]",
            "/admin-api/groups/{id}/members/{account}/role",
            "/admin-api/groups/abc/members/def/role",
        );
        assert_eq!(p.to_string(), "group:manage[abc]");
        assert_eq!(
            need(&Method::GET, "/admin-api/unlisted"),
            Need::Perm("admin")
        );
        assert_eq!(need(&Method::GET, "/admin-api/health"), Need::Public);
        assert_eq!(
            instantiate("context:list[{id}]", "/a/{id}", "/a/x]y").to_string(),
            "admin"
        );
    }

    /// Upstream's clients refresh on `x-auth-error: token_expired`: an
    /// expired access token gets it (with 401 and `WWW-Authenticate`), and
    /// the same claims unexpired pass.
    #[tokio::test]
    async fn an_expired_token_is_refused_with_the_header_clients_refresh_on() {
        use axum::body::Body;
        use tower::ServiceExt as _;

        use crate::auth::token::TokenType;

        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::open(AuthMode::Embedded, dir.path(), Default::default()).unwrap();
        let app = axum::Router::new()
            .route(
                "/admin-api/contexts",
                axum::routing::get(|| async { "listed" }),
            )
            .layer(axum::middleware::from_fn_with_state(auth.clone(), check));
        let now = crate::auth::now();
        let mut claims = auth.claims("t", "t", &["admin".into()], 60, "", TokenType::Access);
        let send = |token: String| {
            app.clone().oneshot(
                axum::http::Request::get("/admin-api/contexts")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
        };
        let live = auth.sign_with_current(&claims).unwrap();
        assert_eq!(send(live).await.unwrap().status(), 200);
        claims.iat = now - 7_200;
        claims.exp = now - 3_600;
        let expired = auth.sign_with_current(&claims).unwrap();
        let resp = send(expired).await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["x-auth-error"], "token_expired");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "TokenExpired", "{body}");
    }

    /// Every route the API documents has a row: a new route is never left
    /// to the admin-only default by oversight.
    #[test]
    fn every_documented_route_is_in_the_table() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let method = method.to_uppercase();
                if !TABLE.iter().any(|(m, p, _)| *m == method && p == path) {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "routes without a permission row: {missing:?}"
        );
    }

    /// And every row is documented, but for the few routes that are not
    /// JSON APIs (the login page, the dashboard's files, the event
    /// streams): the route tests are generated from the document, so an
    /// undocumented route goes untested.
    #[test]
    fn every_route_in_the_table_is_documented_or_named_here() {
        const UNDOCUMENTED: &[(&str, &str)] = &[
            ("GET", "/auth/login"),
            ("POST", "/auth/login"),
            ("GET", "/admin-dashboard"),
            ("GET", "/admin-dashboard/"),
            ("GET", "/admin-dashboard/{*file}"),
            ("GET", "/ws"),
            ("GET", "/sse"),
            ("POST", "/sse/subscription"),
        ];
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let undocumented: Vec<(&str, &str)> = TABLE
            .iter()
            .filter(|(m, p, _)| doc["paths"][*p].get(m.to_lowercase()).is_none())
            .map(|(m, p, _)| (*m, *p))
            .collect();
        assert_eq!(undocumented, UNDOCUMENTED);
    }
}
