//! Login and token routes, in upstream's shapes (snake_case, answers wrapped
//! in `{"data": ..., "error": null}`): `POST /auth/token`, `POST
//! /auth/refresh`, and this node's token administration under
//! `/admin-api/auth/*`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /auth/token`: log in with a provider (this node offers
/// `user_password`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The provider: `user_password`.
    pub auth_method: String,
    /// The client's public key (recorded, not checked).
    #[serde(default)]
    pub public_key: String,
    /// The client's name (upstream puts the node URL here).
    #[serde(default)]
    pub client_name: String,
    /// Permissions asked for; at most what the user has. All of them if absent.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    /// Seconds since the epoch, as the client saw it.
    #[serde(default)]
    pub timestamp: u64,
    /// `{"username": ..., "password": ...}` for `user_password`.
    #[serde(default)]
    pub provider_data: Value,
}

/// A token pair.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    /// Bearer token for requests.
    pub access_token: String,
    /// Single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
    /// Always null on success (upstream's field).
    #[serde(default)]
    pub error: Option<String>,
}

/// `{"data": T, "error": null}` or `{"data": null, "error": "..."}`, as
/// upstream's auth routes answer.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthAnswer<T> {
    /// The payload.
    pub data: Option<T>,
    /// What went wrong.
    pub error: Option<String>,
}

/// `POST /auth/refresh`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The access token of the pair (expired or not).
    pub access_token: String,
    /// Its refresh token, which this spends.
    pub refresh_token: String,
}

/// `POST /admin-api/auth/tokens`: mint a token for an app or a script.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// Permissions, each covered by the caller's own, e.g.
    /// `context:execute[<ctx>]`, `application:list`.
    pub permissions: Vec<String>,
    /// Lifetime in seconds.
    pub expires_in_secs: u64,
    /// A label, recorded as the token's audience.
    #[serde(default)]
    pub name: Option<String>,
}

/// A minted token.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer token.
    pub access_token: String,
    /// Its id, for revocation.
    pub jti: String,
    /// Seconds since the epoch after which it is refused.
    pub expires_at: u64,
    /// What it may do.
    pub permissions: Vec<String>,
}

/// `POST /admin-api/auth/revoke`: a token (any of a pair) or a token id.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// A token; its whole session (access and refresh) is revoked.
    #[serde(default)]
    pub token: Option<String>,
    /// A token id (`jti`).
    #[serde(default)]
    pub jti: Option<String>,
}

/// `POST /admin-api/auth/rotate-keys`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RotateKeysRequest {
    /// Also stop accepting tokens signed with earlier keys (every token
    /// but the root credential stops working).
    #[serde(default)]
    pub retire_previous: bool,
}

/// The signing keys after a rotation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyRotation {
    /// Id (`kid`) of the key new tokens are signed with.
    pub current: String,
    /// Ids of earlier keys still accepted.
    pub accepted: Vec<String>,
}

/// `GET /admin-api/is-authed`: whether the request carried a valid token.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct IsAuthed {
    /// `authed` or `unauthed`.
    pub status: String,
    /// The token's permissions, when authed.
    #[serde(default)]
    pub permissions: Vec<String>,
}
