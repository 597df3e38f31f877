//! `/admin-dashboard`: the node dashboard, a single-page app whose sources
//! are in `dashboard/` (Vite + TypeScript) and whose built output is
//! committed in `host/server/dashboard-dist/` and embedded here at compile
//! time, so that building merod needs no Node. CI rebuilds it and fails if
//! the committed output differs from the sources (`dashboard/scripts/ci`).
//!
//! This module owns serving those files, and nothing else: `/admin-dashboard`
//! redirects to `/admin-dashboard/` (so the page's relative asset URLs
//! resolve), which serves `index.html`; `/admin-dashboard/<file>` serves the
//! other files; anything else under it is 404.
//!
//! Access: the files are the same public code in every merod and hold no
//! secret, so they are served to anyone who may reach the port, as the
//! login page is (a browser cannot put a bearer token on a navigation).
//! Everything the page shows it reads from `/admin-api`, `/jsonrpc` and
//! `/sse` with a bearer token, checked like any other client's: one it gets
//! from the node's own login flow (`/auth/login` with this page as the
//! callback, the tokens in the URL fragment), or one pasted in. The token
//! lives in the tab's `sessionStorage` only. The answers forbid framing and
//! set a content security policy that allows nothing but this origin.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// Where the dashboard is served.
pub(crate) const PREFIX: &str = "/admin-dashboard";

/// One embedded file: name under the prefix, media type, bytes.
struct File {
    name: &'static str,
    media: &'static str,
    bytes: &'static [u8],
}

macro_rules! dist {
    ($name:literal, $media:literal) => {
        File {
            name: $name,
            media: $media,
            bytes: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/dashboard-dist/",
                $name
            )),
        }
    };
}

/// The built dashboard. Vite writes these names without content hashes
/// (`dashboard/vite.config.ts`), so this list changes only with the build's
/// shape; ETags make browsers revalidate.
const FILES: &[File] = &[
    dist!("index.html", "text/html; charset=utf-8"),
    dist!("app.js", "text/javascript; charset=utf-8"),
    dist!("app.css", "text/css; charset=utf-8"),
];

/// Only this origin, no inline code, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

fn etag(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("\"{}\"", hex::encode(&digest.as_ref()[..12]))
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(file) = FILES.iter().find(|f| f.name == name) else {
        return (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let tag = etag(file.bytes);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(file.media))],
            file.bytes,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `GET /admin-dashboard`: to the page, with the slash.
pub(crate) async fn redirect() -> Redirect {
    Redirect::permanent("/admin-dashboard/")
}

/// `GET /admin-dashboard/`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /admin-dashboard/{*file}`: one of its files.
pub(crate) async fn file(
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&name, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_files_served_beside_it() {
        let index = std::str::from_utf8(FILES[0].bytes).unwrap_or_default();
        for f in &FILES[1..] {
            assert!(
                index.contains(&format!("./{}", f.name)),
                "index.html loads {}",
                f.name
            );
        }
        assert!(!index.contains("<script>"), "no inline script: {index}");
        assert_eq!(serve("nope.js", &HeaderMap::new()).status(), 404);
        let ok = serve("app.js", &HeaderMap::new());
        assert_eq!(ok.status(), 200);
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, ok.headers()[header::ETAG].clone());
        assert_eq!(serve("app.js", &again).status(), 304);
    }
}
