//! Browser defences, in every auth mode: a web page open on this machine
//! must not be able to drive the node.
//!
//! - `Host` must be 127.0.0.1, localhost, [::1], a listen address or a
//!   configured name (else 421): DNS rebinding gets nowhere.
//! - An `Origin` must be the node's own (the same scheme, host and port as
//!   `Host`) or configured (else 403). Configured origins get CORS answers,
//!   preflights included, so browser apps can be served from them.
//!   WebSocket upgrades follow the same rule; one without an `Origin` is not
//!   a browser's and still needs a token.
//! - A request with a body must say `Content-Type: application/json`
//!   (else 415), so the "simple" cross-site `text/plain` POST that needs no
//!   preflight is refused; the routes that take other bodies (component
//!   uploads, the login form, blob uploads by PUT) name theirs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Who may call, as far as browsers are concerned.
#[derive(Clone, Debug)]
pub struct WebPolicy(Arc<PolicyInner>);

#[derive(Debug)]
struct PolicyInner {
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// Headers an allowed cross-origin page may send, and read back.
const ALLOW_HEADERS: &str = "authorization, content-type, x-sse-session-id, last-event-id";
const EXPOSE_HEADERS: &str = "x-auth-error, x-auth-user, x-auth-permissions, x-sse-session-id";
const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";

impl WebPolicy {
    /// Loopback names and `hosts` (e.g. listen addresses, configured names)
    /// as `Host`s; `origins` as CORS origins.
    pub fn new(hosts: &[String], origins: &[String]) -> WebPolicy {
        let mut all: Vec<String> = ["127.0.0.1", "localhost", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.extend(hosts.iter().map(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        }));
        WebPolicy(Arc::new(PolicyInner {
            hosts: all,
            origins: origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        self.0.hosts.iter().any(|h| h == &name)
    }

    fn listed(&self, origin: &str) -> bool {
        let o = origin.to_ascii_lowercase();
        self.0.origins.iter().any(|a| a == &o)
    }
}

/// The name part of a `Host` value (no port, no brackets), lowercased.
fn host_name(host: &str) -> String {
    let h = host.trim();
    let name = if let Some(v6) = h.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        h.rsplit_once(':').map_or(h, |(n, _)| n)
    };
    name.to_ascii_lowercase()
}

fn header(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `origin` is the node's own page: `http(s)://<Host>`.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let o = origin.to_ascii_lowercase();
    let h = host.to_ascii_lowercase();
    o == format!("http://{h}") || o == format!("https://{h}")
}

/// Body types a route takes besides JSON.
fn other_bodies(path: &str) -> &'static [&'static str] {
    match path {
        "/admin-api/install-application" => &["application/wasm", "application/octet-stream"],
        "/auth/login" => &["application/x-www-form-urlencoded"],
        // Blob bytes of any type, or none given (upstream's clients send no
        // Content-Type); a PUT is never a cross-site simple request.
        "/admin-api/blobs" => &["*"],
        _ => &[],
    }
}

fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(header::CONTENT_TYPE)
        || h.contains_key(header::TRANSFER_ENCODING)
        || header(h, header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0")
}

fn media_type(h: &HeaderMap) -> String {
    header(h, header::CONTENT_TYPE)
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn cors_headers(resp: &mut Response, origin: &str) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

/// The layer.
pub(crate) async fn guard(State(policy): State<WebPolicy>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = header(headers, header::HOST);
    // No Host at all is no browser's (every browser sends one).
    if let Some(h) = host
        && !policy.host_allowed(h)
    {
        return ApiError::status(
            StatusCode::MISDIRECTED_REQUEST,
            "ForeignHost",
            format!("this node does not answer to the name `{}`", host_name(h)),
        )
        .into_response();
    }
    let origin = header(headers, header::ORIGIN).map(str::to_string);
    let mut listed = false;
    if let Some(o) = &origin {
        listed = policy.listed(o);
        if !listed && !same_origin(o, host) {
            return ApiError::forbidden(
                "ForeignOrigin",
                format!("pages from `{o}` may not call this node (see server.allowed_origins)"),
            )
            .into_response();
        }
    }
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Some(o) = origin.as_deref().filter(|_| listed) {
            cors_headers(&mut resp, o);
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return resp;
    }
    let takes_body = !matches!(*req.method(), Method::GET | Method::HEAD);
    if takes_body && has_body(&req) {
        let media = media_type(req.headers());
        let others = other_bodies(req.uri().path());
        if media != "application/json"
            && !others.contains(&media.as_str())
            && !others.contains(&"*")
        {
            return ApiError::status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "a request body must be JSON (Content-Type: application/json), not `{media}`"
                ),
            )
            .into_response();
        }
    }
    let mut resp = next.run(req).await;
    if let Some(o) = origin.as_deref().filter(|_| listed) {
        cors_headers(&mut resp, o);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_by_name_without_port() {
        let p = WebPolicy::new(&["node.example".into(), "[fd00::1]".into()], &[]);
        for ok in [
            "127.0.0.1:2528",
            "localhost",
            "[::1]:80",
            "NODE.example:1",
            "[fd00::1]:9",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in ["attacker.example:2528", "127.0.0.1.nip.io", "[::2]:1", ""] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        assert!(same_origin("http://127.0.0.1:2528", Some("127.0.0.1:2528")));
        assert!(!same_origin(
            "http://127.0.0.1:3000",
            Some("127.0.0.1:2528")
        ));
        assert!(!same_origin("null", Some("127.0.0.1:2528")));
    }
}
