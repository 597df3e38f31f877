//! Token administration: minting scoped tokens for apps and scripts,
//! revoking, rotating the signing keys, and `is-authed`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use mero_api::Data;
use mero_api::auth::{
    CreateTokenRequest, CreatedToken, IsAuthed, KeyRotation, RevokeRequest, RotateKeysRequest,
};
use mero_config::AuthMode;

use super::{Auth, AuthError, Grants, permissions};

/// Longest lifetime of a minted token: a year.
const MAX_MINT_SECS: u64 = 365 * 24 * 3_600;

fn json<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, AuthError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| AuthError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Mints an access token with the permissions asked for, each covered by
/// the caller's own.
#[utoipa::path(post, path = "/admin-api/auth/tokens", tag = "auth",
    request_body = CreateTokenRequest,
    responses((status = 200, body = Data<CreatedToken>),
        (status = 400, body = mero_api::ErrorBody), (status = 403, body = mero_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(auth): State<Auth>,
    Extension(grants): Extension<Grants>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let req: CreateTokenRequest = json(&body)?;
        if req.permissions.is_empty() {
            return Err(AuthError::BadRequest("name at least one permission".into()));
        }
        if req.expires_in_secs == 0 || req.expires_in_secs > MAX_MINT_SECS {
            return Err(AuthError::BadRequest(format!(
                "expires_in_secs must be between 1 and {MAX_MINT_SECS}"
            )));
        }
        let wanted = permissions::parse_all(&req.permissions)
            .map_err(|e| AuthError::BadRequest(e.to_string()))?;
        if !grants.allows_all(&wanted) {
            return Err(AuthError::Forbidden(req.permissions.join(",")));
        }
        let name = req.name.unwrap_or_else(|| "token".into());
        let (token, claims) = auth.mint(&name, &req.permissions, req.expires_in_secs)?;
        Ok(CreatedToken {
            access_token: token,
            jti: claims.jti,
            expires_at: claims.exp,
            permissions: claims.permissions,
        })
    })();
    match result {
        Ok(t) => Json(Data::new(t)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Revokes a token's session (by the token) or a token id.
#[utoipa::path(post, path = "/admin-api/auth/revoke", tag = "auth",
    request_body = RevokeRequest,
    responses((status = 200, description = "Revoked: `{\"data\": {}}`"),
        (status = 400, body = mero_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke(State(auth): State<Auth>, body: Bytes) -> Response {
    let result = json::<RevokeRequest>(&body).and_then(|req| match (req.token, req.jti) {
        (Some(t), _) => auth.revoke_token(&t),
        (None, Some(j)) => auth.revoke_id(&j),
        (None, None) => Err(AuthError::BadRequest("give `token` or `jti`".into())),
    });
    match result {
        Ok(()) => Json(Data::new(serde_json::json!({}))).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Starts signing with a new key; with `retire_previous`, only tokens it
/// signs (and the root credential) are accepted from now on.
#[utoipa::path(post, path = "/admin-api/auth/rotate-keys", tag = "auth",
    request_body = RotateKeysRequest,
    responses((status = 200, body = Data<KeyRotation>)),
    security(("bearer" = [])))]
pub(crate) async fn rotate(State(auth): State<Auth>, body: Bytes) -> Response {
    match json::<RotateKeysRequest>(&body).and_then(|r| auth.rotate(r.retire_previous)) {
        Ok((current, accepted)) => {
            Json(Data::new(KeyRotation { current, accepted })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Whether the request's bearer token is valid, and what it may do.
#[utoipa::path(get, path = "/admin-api/is-authed", tag = "auth",
    responses((status = 200, body = Data<IsAuthed>)))]
pub(crate) async fn is_authed(
    State(auth): State<Auth>,
    headers: HeaderMap,
) -> Json<Data<IsAuthed>> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.strip_prefix("Bearer "));
    let grants = match (auth.mode(), token) {
        (AuthMode::Proxy, _) => Some(Grants::admin("proxy")),
        (_, Some(t)) => auth.authenticate(t.trim()).ok(),
        (_, None) => None,
    };
    Json(Data::new(match grants {
        Some(g) => IsAuthed {
            status: "authed".into(),
            permissions: g.permissions.iter().map(ToString::to_string).collect(),
        },
        None => IsAuthed {
            status: "unauthed".into(),
            permissions: Vec::new(),
        },
    }))
}
