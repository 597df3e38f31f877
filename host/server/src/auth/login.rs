//! Upstream's login routes, so that its clients log in unchanged:
//! `POST /auth/token` (the `user_password` provider, as calimero-client-py
//! and merobox use it), `POST /auth/refresh`, and the browser flow upstream's
//! meroctl opens: `GET /auth/login?callback-url=…&permissions=…` serves a
//! login page; its form posts back to `/auth/login`, which sends the
//! browser to the callback URL with `#access_token=…&refresh_token=…`
//! (the callback URL's own query, e.g. meroctl's `state`, is kept). Callback
//! URLs must be on this machine: a login never sends tokens elsewhere.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mero_api::auth::{AuthAnswer, RefreshRequest, TokenPair, TokenRequest};
use serde::Deserialize;
use std::collections::HashMap;

use super::{Auth, AuthError, Grants, permissions};

/// Upstream's answer shape: `{"data": …, "error": null}` or the reverse.
fn answer(result: Result<super::Pair, AuthError>) -> Response {
    match result {
        Ok(pair) => Json(AuthAnswer {
            data: Some(TokenPair {
                access_token: pair.access,
                refresh_token: pair.refresh,
                error: None,
            }),
            error: None,
        })
        .into_response(),
        Err(e) => {
            let status = e.status();
            let mut resp = (
                status,
                Json(AuthAnswer::<TokenPair> {
                    data: None,
                    error: Some(e.to_string()),
                }),
            )
                .into_response();
            if let Some(code) = e.code() {
                resp.headers_mut()
                    .insert("x-auth-error", HeaderValue::from_static(code));
            }
            resp
        }
    }
}

#[derive(Deserialize)]
struct UserPassword {
    username: String,
    password: String,
}

/// The permissions a login asks for, at most what `user_perms` grant:
/// all of the user's when it names none.
fn granted(user_perms: &[String], asked: Option<Vec<String>>) -> Result<Vec<String>, AuthError> {
    let Some(asked) = asked.filter(|a| !a.is_empty()) else {
        return Ok(user_perms.to_vec());
    };
    let user = Grants {
        subject: String::new(),
        permissions: permissions::parse_all(user_perms).map_err(|_| AuthError::BadCredentials)?,
        bearer: None,
    };
    let wanted =
        permissions::parse_all(&asked).map_err(|e| AuthError::BadRequest(e.to_string()))?;
    if !user.allows_all(&wanted) {
        return Err(AuthError::Forbidden(asked.join(",")));
    }
    Ok(asked)
}

/// Checks a user's password and issues a pair with `asked` permissions.
fn login(
    auth: &Auth,
    user: &str,
    password: &str,
    client: &str,
    asked: Option<Vec<String>>,
) -> Result<super::Pair, AuthError> {
    auth.check_lockout(user)?;
    let users = auth.users()?;
    let found = users.check(user, password);
    auth.record_login(user, found.is_some());
    let found = found.ok_or_else(|| {
        tracing::warn!(user = %user.chars().take(64).collect::<String>(), "failed login");
        AuthError::BadCredentials
    })?;
    let perms = granted(&found.permissions, asked)?;
    auth.issue_pair(user, client, &perms, None)
}

/// Logs in with a provider; answers a token pair.
#[utoipa::path(post, path = "/auth/token", tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, body = AuthAnswer<TokenPair>),
        (status = 401, description = "Wrong user or password", body = AuthAnswer<TokenPair>)))]
pub(crate) async fn token(State(auth): State<Auth>, body: Bytes) -> Response {
    let result = serde_json::from_slice::<TokenRequest>(&body)
        .map_err(|e| AuthError::BadRequest(format!("invalid token request: {e}")))
        .and_then(|req| {
            if req.auth_method != "user_password" {
                return Err(AuthError::BadRequest(format!(
                    "unknown auth_method `{}`: this node offers user_password",
                    req.auth_method
                )));
            }
            let up: UserPassword = serde_json::from_value(req.provider_data).map_err(|e| {
                AuthError::BadRequest(format!("provider_data needs username and password: {e}"))
            })?;
            let client = if req.client_name.is_empty() {
                "client"
            } else {
                req.client_name.as_str()
            };
            login(&auth, &up.username, &up.password, client, req.permissions)
        });
    answer(result)
}

/// Spends a refresh token for a new pair.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = AuthAnswer<TokenPair>),
        (status = 401, description = "Invalid, spent or revoked refresh token", body = AuthAnswer<TokenPair>)))]
pub(crate) async fn refresh(State(auth): State<Auth>, body: Bytes) -> Response {
    let result = serde_json::from_slice::<RefreshRequest>(&body)
        .map_err(|e| AuthError::BadRequest(format!("invalid refresh request: {e}")))
        .and_then(|r| auth.refresh(&r.access_token, &r.refresh_token));
    answer(result)
}

/// Whether `url` may receive tokens: http(s) on this machine.
fn local_callback(url: &str) -> Option<url::Url> {
    let u = url::Url::parse(url).ok()?;
    let local = match u.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    (matches!(u.scheme(), "http" | "https") && local).then_some(u)
}

/// `s` safe inside an HTML attribute or text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page that no other site may frame (clickjacking) and no cache keeps.
fn page(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn form(callback: &str, perms: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="error">{}</p>"#, escape(e))
    });
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to this node</title>
<style>body{{font-family:sans-serif;max-width:24rem;margin:4rem auto}}label,input,button{{display:block;width:100%;margin:.4rem 0}}.error{{color:#b00}}</style>
</head><body>
<h1>Sign in to this node</h1>
<p>Permissions asked for: <code>{perms_text}</code></p>
{error}
<form method="post" action="/auth/login">
<input type="hidden" name="callback-url" value="{callback}">
<input type="hidden" name="permissions" value="{perms}">
<label>User <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>"#,
        perms_text = escape(perms),
        callback = escape(callback),
        perms = escape(perms),
    )
}

/// Permissions as the login URL writes them: comma-separated (`admin`, or
/// upstream meroctl's `application,package,context,blob`).
fn split_perms(s: &str) -> Option<Vec<String>> {
    let v: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The login page of the browser flow.
pub(crate) async fn login_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let callback = q
        .get("callback-url")
        .map(String::as_str)
        .unwrap_or_default();
    if local_callback(callback).is_none() {
        return page(
            StatusCode::BAD_REQUEST,
            "<!DOCTYPE html><p>This login needs a <code>callback-url</code> on this machine (http://127.0.0.1:…).</p>".into(),
        );
    }
    let perms = q.get("permissions").map_or("admin", String::as_str);
    page(StatusCode::OK, form(callback, perms, None))
}

/// The login form's post: on success, a redirect to the callback with the
/// tokens in the fragment.
pub(crate) async fn login_submit(State(auth): State<Auth>, body: Bytes) -> Response {
    let fields: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    let callback = field("callback-url");
    let Some(mut target) = local_callback(callback) else {
        return page(
            StatusCode::BAD_REQUEST,
            "<!DOCTYPE html><p>The callback URL must be on this machine.</p>".into(),
        );
    };
    let perms = field("permissions");
    match login(
        &auth,
        field("username"),
        field("password"),
        "browser",
        split_perms(perms),
    ) {
        Ok(pair) => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("access_token", &pair.access)
                .append_pair("refresh_token", &pair.refresh)
                .finish();
            target.set_fragment(Some(&fragment));
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(target.as_str()) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => page(e.status(), form(callback, perms, Some(&e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_callbacks_on_this_machine_receive_tokens() {
        assert!(local_callback("http://127.0.0.1:9080/callback?state=x").is_some());
        assert!(local_callback("http://localhost:9080/callback").is_some());
        assert!(local_callback("http://[::1]:9080/callback").is_some());
        assert!(local_callback("https://evil.example/callback").is_none());
        assert!(local_callback("javascript:alert(1)").is_none());
        assert!(local_callback("http://127.0.0.1.evil.example/").is_none());
        assert!(local_callback("").is_none());
    }

    #[test]
    fn logins_get_at_most_what_the_user_has() {
        let user = vec!["context".to_string(), "application:list".to_string()];
        assert_eq!(granted(&user, None).unwrap(), user);
        assert!(granted(&user, Some(vec!["context:execute[C]".into()])).is_ok());
        assert!(matches!(
            granted(&user, Some(vec!["admin".into()])),
            Err(AuthError::Forbidden(_))
        ));
        assert_eq!(
            escape(r#"<a href="x">'"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;"
        );
    }
}
